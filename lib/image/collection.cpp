#include "image/collection.hpp"

#include "core/error.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/threads.hpp"
#include "formats/idx.hpp"
#include "formats/npy.hpp"
#include "formats/tsv.hpp"
#include "image/decode.hpp"
#include "image/preview.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <stdexcept>

namespace lowrank {
namespace {

// One input: an image file (one item) or an IDX file (one item per record).
struct source {
    std::string path;
    std::unique_ptr<idx_reader> idx;
    std::vector<std::int64_t> labels;  // of an IDX file, when given
    std::size_t items = 1;
    std::string broken;                // why the rest of a truncated IDX file is skipped
};

// An item on its way through the pipeline. Buffers are reused by the items of a slot.
struct item {
    std::size_t source = 0, record = 0;
    std::vector<std::byte> record_bytes;
    image_size stored;
    patch_shape shape;
    std::vector<float> patches;
    std::string failure;          // set when the item is skipped
    bool failure_reported = false;  // the failure was already reported for its file
};

std::string item_name(const source& input, const item& entry) {
    return input.idx ? fmt::format("{}: record {}", display_name(input.path), entry.record) : display_name(input.path);
}

void open_idx(source& input, bool all_idx) {
    input.idx = std::make_unique<idx_reader>(input.path);
    const auto& shape = input.idx->shape();
    bool images = shape.size() == 3 || (shape.size() == 4 && shape[3] >= 1 && shape[3] <= 4);
    if (!images)
        throw error_in(input.path, fmt::format("holds a {}-dimensional array; IDX images are (N, rows, columns) or "
                                               "(N, rows, columns, channels)",
                                               shape.size()) +
                                       (all_idx ? "" : " (read as IDX because of its name)"));
    if (input.idx->type() != dtype::u8)
        throw error_in(input.path, "IDX images must be unsigned bytes (type 0x08)");
    if (shape[1] == 0 || shape[2] == 0) throw error_in(input.path, "IDX images of size 0");
    input.items = input.idx->record_count();
}

// The image of an IDX record: rows × columns (× channels) unsigned bytes.
image idx_image(const source& input, const item& entry) {
    const auto& shape = input.idx->shape();
    image picture(shape[2], shape[1], shape.size() == 4 ? shape[3] : 1);
    std::memcpy(picture.pixels.data(), entry.record_bytes.data(), picture.pixels.size());
    return picture;
}

class collection_run {
public:
    collection_run(const std::vector<std::string>& inputs, const std::vector<std::string>& label_files,
                   const collection_settings& settings, const collection_outputs& outputs,
                   const std::function<void(const std::string&)>& warn);
    collection_summary run();

private:
    void take(item& entry);
    void work(item& entry) const;
    void deliver(item& entry);
    void start_writing(std::size_t channels, std::size_t height, std::size_t width);
    void finish();

    const collection_settings& settings_;
    const collection_outputs& outputs_;
    const std::function<void(const std::string&)>& warn_;
    std::vector<source> sources_;
    std::size_t total_ = 0;
    std::size_t next_source_ = 0, next_record_ = 0;  // the cursor of take()
    image_patchifier patchifier_;
    collection_summary summary_;

    output_stream patches_out_;
    std::optional<npy_writer> patches_;
    std::optional<patch_shape> shape_;  // of the first image written
    std::optional<output_stream> index_out_, labels_out_;
    std::optional<npy_writer> labels_;
    std::vector<float> preview_patches_;
    std::unique_ptr<progress> progress_;
};

collection_run::collection_run(const std::vector<std::string>& inputs, const std::vector<std::string>& label_files,
                               const collection_settings& settings, const collection_outputs& outputs,
                               const std::function<void(const std::string&)>& warn)
    : settings_(settings),
      outputs_(outputs),
      warn_(warn),
      patchifier_(settings),
      patches_out_(outputs.patches, output_kind::binary) {
    if (settings.skip_bad && !patches_out_.is_regular_file())
        throw usage_error("--skip-bad needs -o FILE: the row count of a .npy on a stream is written first");
    std::size_t idx_inputs = 0;
    for (const auto& path : inputs) {
        source input{path, nullptr, {}, 1, {}};
        if (settings.all_idx || looks_like_idx(path)) {
            open_idx(input, settings.all_idx);
            if (idx_inputs < label_files.size()) {
                input.labels = read_idx_labels(label_files[idx_inputs]);
                if (input.labels.size() != input.items)
                    throw error_in(label_files[idx_inputs], fmt::format("{} labels for the {} images of {}",
                                                                        input.labels.size(), input.items, path));
            }
            ++idx_inputs;
        }
        total_ += input.items;
        sources_.push_back(std::move(input));
    }
    if (!label_files.empty() && label_files.size() != idx_inputs)
        throw usage_error(fmt::format("--labels given {} time{} for {} IDX input{}", label_files.size(),
                                      label_files.size() == 1 ? "" : "s", idx_inputs, idx_inputs == 1 ? "" : "s"));
    if (!label_files.empty() && idx_inputs != sources_.size())
        throw usage_error("--labels goes with IDX inputs only: image files have no labels");
    if (label_files.empty() != outputs.labels.empty())
        throw std::invalid_argument("patchify_collection: labels need both label files and an output");
    if (!outputs.index.empty()) {
        index_out_.emplace(outputs.index, output_kind::text);
        index_out_->write("row\tfile\trecord\twidth\theight\n");
    }
    if (!outputs.labels.empty()) {
        labels_out_.emplace(outputs.labels, output_kind::binary);
        labels_.emplace(*labels_out_, dtype::i64, std::vector<std::size_t>{});
    }
    progress_ = std::make_unique<progress>("vit-patchify", "images", total_, settings.quiet);
}

void collection_run::take(item& entry) {
    while (next_record_ >= sources_[next_source_].items) ++next_source_, next_record_ = 0;
    source& input = sources_[next_source_];
    entry.source = next_source_;
    entry.record = next_record_++;
    entry.failure.clear();
    entry.failure_reported = false;
    if (!input.idx) return;
    if (!input.broken.empty()) {
        entry.failure = input.broken, entry.failure_reported = true;
        return;
    }
    entry.record_bytes.resize(input.idx->record_bytes());
    try {
        input.idx->read_record(entry.record_bytes);
    } catch (const error& failure) {
        if (!settings_.skip_bad) throw;
        entry.failure = failure.what();
        input.broken = entry.failure;
    }
}

void collection_run::work(item& entry) const {
    if (!entry.failure.empty()) return;
    const source& input = sources_[entry.source];
    try {
        if (input.idx) {
            image_part decoded;
            decoded.pixels = idx_image(input, entry);
            decoded.full = entry.stored = {decoded.pixels.width, decoded.pixels.height};
            entry.shape = patchifier_.patchify(std::move(decoded), item_name(input, entry), entry.patches);
        } else {
            entry.shape = patchifier_.patchify_file(input.path, entry.patches, &entry.stored);
        }
    } catch (const error& failure) {
        if (!settings_.skip_bad) throw;
        entry.failure = failure.what();
    }
}

void collection_run::start_writing(std::size_t channels, std::size_t height, std::size_t width) {
    shape_ = patch_shape{channels, height, width, settings_.patch};
    std::optional<std::size_t> rows;
    if (!patches_out_.is_regular_file()) rows = total_;  // a stream cannot seek back to the header
    patches_.emplace(patches_out_, dtype::f32, std::vector<std::size_t>{shape_->count(), shape_->size()}, rows);
}

void collection_run::deliver(item& entry) {
    const source& input = sources_[entry.source];
    progress_->advance();
    if (!entry.failure.empty()) {
        if (!entry.failure_reported) {
            std::string rest = input.broken.empty() || !input.idx
                                   ? ""
                                   : fmt::format(" (and the {} records after it)", input.items - entry.record - 1);
            warn_(fmt::format("skipped {}{}", entry.failure, rest));
        }
        ++summary_.skipped;
        return;
    }
    if (!shape_) {
        start_writing(entry.shape.channels, entry.shape.height, entry.shape.width);
        if (!outputs_.preview.empty()) preview_patches_ = entry.patches;
    } else if (entry.shape.height != shape_->height || entry.shape.width != shape_->width) {
        auto failure = error_in(item_name(input, entry),
                                fmt::format("the image is {} after preprocessing, but the first was {}; "
                                            "give --crop or --resize WxH to make all images one size",
                                            format_image_size({entry.shape.width, entry.shape.height}),
                                            format_image_size({shape_->width, shape_->height})));
        if (!settings_.skip_bad) throw failure;
        warn_(fmt::format("skipped {}", failure.what()));
        ++summary_.skipped;
        return;
    }
    patches_->write_rows(entry.patches.data(), 1);
    if (index_out_) {
        std::string record = input.idx ? std::to_string(entry.record) : "";
        index_out_->write(fmt::format("{}\t{}\t{}\t{}\t{}\n", summary_.written, tsv_safe(input.path), record,
                                      entry.stored.width, entry.stored.height));
    }
    if (labels_) {
        labels_->write_rows(&input.labels[entry.record], 1);
    }
    ++summary_.written;
}

void collection_run::finish() {
    progress_->finish();
    if (!patches_) {  // nothing written: an empty array, of the right row shape when it is known
        image_size size = fixed_output_size(settings_.preprocess).value_or(image_size{});
        start_writing(settings_.preprocess.channels, size.height, size.width);
    }
    patches_->finish();
    if (labels_) {
        labels_->finish();
        labels_out_->commit();
    }
    if (index_out_) index_out_->commit();
    if (!outputs_.preview.empty() && !preview_patches_.empty()) {
        output_stream preview(outputs_.preview, output_kind::binary);
        std::size_t gap = std::max<std::size_t>(1, settings_.patch / 8);
        write_png(preview, draw_patches(preview_patches_.data(), *shape_, settings_.layout, patchifier_.normalize(), gap));
        preview.commit();
    }
    patches_out_.commit();
}

collection_summary collection_run::run() {
    std::size_t slots = 4 * static_cast<std::size_t>(thread_count());
    std::vector<item> items(slots);
    ordered_parallel(
        total_, slots, [&](std::size_t, std::size_t slot) { take(items[slot]); },
        [&](std::size_t, std::size_t slot) { work(items[slot]); },
        [&](std::size_t, std::size_t slot) { deliver(items[slot]); });
    finish();
    return summary_;
}

}  // namespace

image_patchifier::image_patchifier(const collection_settings& settings)
    : settings_(settings),
      normalize_(settings.preprocess.channels, settings.preprocess.mean, settings.preprocess.std) {
    decode_.region = [&preprocess = settings_.preprocess](image_size size) {
        return preprocess_region(size, preprocess);
    };
    if (settings.draft && settings.preprocess.resize.kind != resize_rule::mode::none) {
        const resize_rule& rule = settings_.preprocess.resize;
        decode_.draft_target = [&rule](std::size_t& width, std::size_t& height) {
            image_size target = rule.output_size({width, height});
            width = target.width, height = target.height;
        };
    }
}

patch_shape image_patchifier::patchify_file(const std::string& path, std::vector<float>& patches,
                                            image_size* stored) const {
    return patchify(read_image_part(path, decode_, stored), display_name(path), patches);
}

patch_shape image_patchifier::patchify(image_part decoded, std::string_view name, std::vector<float>& patches) const {
    image pixels = prepare_pixels(std::move(decoded), settings_.preprocess, name);
    if (pixels.width % settings_.patch != 0 || pixels.height % settings_.patch != 0)
        throw error_in(name, fmt::format("the image is {} after preprocessing, not a multiple of the patch size {}",
                                         format_image_size({pixels.width, pixels.height}), settings_.patch));
    patch_shape shape{settings_.preprocess.channels, pixels.height, pixels.width, settings_.patch};
    patches.resize(shape.elements());
    patchify_pixels(pixels, normalize_, shape, settings_.layout, patches.data());
    return shape;
}

std::string labels_path_beside(const std::string& output) {
    std::string stem = output.ends_with(".npy") ? output.substr(0, output.size() - 4) : output;
    return stem + ".labels.npy";
}

collection_summary patchify_collection(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& label_files,
                                       const collection_settings& settings, const collection_outputs& outputs,
                                       const std::function<void(const std::string&)>& warn) {
    check_settings(settings.preprocess);
    if (settings.patch == 0) throw usage_error("--patch must be positive");
    if (auto size = fixed_output_size(settings.preprocess);
        size && (size->width % settings.patch != 0 || size->height % settings.patch != 0))
        throw usage_error(fmt::format("the images will be {}, not a multiple of the patch size {}",
                                      format_image_size(*size), settings.patch));
    collection_run run(inputs, label_files, settings, outputs, warn);
    return run.run();
}

std::size_t unpatchify_file(const std::string& npy_path, const collection_settings& settings,
                            const std::string& folder) {
    npy_array patches(npy_path);
    const auto& dimensions = patches.shape();
    if (dimensions.size() != 3)
        throw error_in(npy_path, fmt::format("expected patches of shape (N, patches, C·P·P), not {} dimensions",
                                             dimensions.size()));
    const std::size_t P = settings.patch, count = dimensions[1], length = dimensions[2];
    if (P == 0 || length % (P * P) != 0 || (length / (P * P) != 1 && length / (P * P) != 3))
        throw error_in(npy_path, fmt::format("patches of {} numbers are not 1 or 3 channels of {}x{} (give --patch)",
                                             length, P, P));
    patch_shape shape{length / (P * P), 0, 0, P};
    const auto& preprocess = settings.preprocess;
    if (auto size = fixed_output_size(preprocess)) {
        shape.width = size->width, shape.height = size->height;
    } else {
        auto side = static_cast<std::size_t>(std::llround(std::sqrt(static_cast<double>(count))));
        shape.width = shape.height = side * P;
    }
    if (shape.count() != count || shape.width % P != 0 || shape.height % P != 0)
        throw error_in(npy_path, fmt::format("{} patches do not tile a {} image in {}x{} patches (give --crop WxH)",
                                             count, format_image_size({shape.width, shape.height}), P, P));
    preprocess_settings channels = preprocess;
    channels.channels = shape.channels;
    check_settings(channels);
    normalizer normalize(shape.channels, preprocess.mean, preprocess.std);
    std::vector<float> values(shape.elements());
    const std::size_t row_bytes = shape.elements() * dtype_size(patches.type());
    std::error_code failure;
    std::filesystem::create_directories(folder, failure);
    if (failure) throw error_in(folder, "cannot create the folder: " + failure.message());
    for (std::size_t row = 0; row < dimensions[0]; ++row) {
        std::string path = (std::filesystem::path(folder) / fmt::format("{:06}.png", row)).string();
        output_stream out(path, output_kind::binary);
        convert_to_float(patches.type(), patches.data().data() + row * row_bytes, values.size(), values.data());
        write_png(out, draw_patches(values.data(), shape, settings.layout, normalize, 0));
        out.commit();
    }
    return dimensions[0];
}

}  // namespace lowrank
