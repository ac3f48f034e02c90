#include "embed/clip_embed.hpp"

#include "bpe/utf8.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/threads.hpp"
#include "formats/npy.hpp"
#include "image/collection.hpp"
#include "nn/checkpoint.hpp"
#include "nn/gpt2.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fmt/format.h>
#include <limits>

namespace lowrank {

std::unique_ptr<clip_model> load_clip_model(const std::string& path, std::vector<std::string>& warnings) {
    checkpoint file(path);
    model_config config = file.config();
    if (config.arch != architecture::clip)
        throw error_in(file.path(), fmt::format("holds a {} model; clip-embed needs a clip model (CLIPModel)",
                                                architecture_name(config.arch)));
    auto model = std::make_unique<clip_model>(config);
    model->parameters().allocate();
    auto result = load_parameters(model->parameters(), file, architecture::clip);
    warnings.insert(warnings.end(), result.warnings.begin(), result.warnings.end());
    return model;
}

std::string tokenizer_beside(const std::string& model_path) {
    namespace fs = std::filesystem;
    std::error_code failure;
    fs::path folder = fs::is_directory(model_path, failure) ? fs::path(model_path) : fs::path(model_path).parent_path();
    if (folder.empty()) folder = ".";
    bool pair = fs::exists(folder / "vocab.json", failure) && fs::exists(folder / "merges.txt", failure);
    if (pair || fs::exists(folder / "tokenizer.json", failure)) return folder.string();
    return "";
}

// ---------------------------------------------------------------------------------- images

namespace {

// The preprocessing of CLIPImageProcessor for a tower: shorter side to the image size,
// bicubic, center crop to the image size, OpenAI's mean and std.
collection_settings clip_settings(const vision_tower_config& vision) {
    collection_settings settings;
    settings.preprocess = preset_settings("clip");
    settings.preprocess.resize.shorter_side = vision.image_size;
    settings.preprocess.crop = image_size{vision.image_size, vision.image_size};
    settings.preprocess.channels = vision.channels;
    if (vision.channels != 3) throw error(fmt::format("the model takes images of {} channels; clip-embed decodes RGB "
                                                      "images (give patches from vit-patchify --channels {})",
                                                      vision.channels, vision.channels));
    settings.patch = vision.patch_size;
    return settings;
}

}  // namespace

struct image_batches::files_source {
    std::vector<std::string> files;
    collection_settings settings;
    image_patchifier patchifier;
    std::size_t next = 0;

    files_source(std::vector<std::string> paths, const vision_tower_config& vision)
        : files(std::move(paths)), settings(clip_settings(vision)), patchifier(settings) {}
};

struct image_batches::npy_source {
    npy_row_reader reader;
    explicit npy_source(const std::string& path) : reader(path) {}
};

image_batches::image_batches(std::vector<std::string> files, const vision_tower_config& vision)
    : files_(std::make_unique<files_source>(std::move(files), vision)),
      count_(files_->files.size()),
      image_features_(vision.patches() * vision.patch_features()) {}

image_batches::image_batches(const std::string& patches_path, const vision_tower_config& vision)
    : npy_(std::make_unique<npy_source>(patches_path)), image_features_(vision.patches() * vision.patch_features()) {
    const npy_row_reader& reader = npy_->reader;
    const auto& shape = reader.shape();
    std::string name = display_name(patches_path);
    if (shape.size() != 3)
        throw error_in(name, fmt::format("patches must be an array (N, patches, C·P·P), not {}-dimensional", shape.size()));
    if (reader.type() != dtype::f32 && reader.type() != dtype::f16 && reader.type() != dtype::f64)
        throw error_in(name, fmt::format("patches must be floats, not {}", npy_descr(reader.type())));
    check_patch_shape(shape[1], shape[2], vision, name);
    count_ = shape[0];
}

image_batches::~image_batches() = default;

std::size_t image_batches::next(std::size_t batch, std::vector<float>& patches) {
    if (npy_) {
        std::size_t count = npy_->reader.read_rows(batch, patches);
        for (std::size_t i = 0; i < patches.size(); ++i)
            if (!std::isfinite(patches[i]))
                throw error_in(display_name(npy_->reader.path()),
                               fmt::format("row {} holds a NaN or an infinity", delivered_ + i / image_features_));
        delivered_ += count;
        return count;
    }
    files_source& source = *files_;
    const std::size_t first = source.next, count = std::min(batch, source.files.size() - first);
    patches.resize(count * image_features_);
    // Each image on a thread; an error names the first failing image in input order.
    std::vector<std::exception_ptr> failures(count);
    parallel_for(count, [&](std::size_t begin, std::size_t end) {
        std::vector<float> own;
        for (std::size_t i = begin; i < end; ++i) {
            try {
                source.patchifier.patchify_file(source.files[first + i], own);
                std::copy(own.begin(), own.end(), patches.begin() + static_cast<std::ptrdiff_t>(i * image_features_));
            } catch (...) {
                failures[i] = std::current_exception();
            }
        }
    });
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);
    source.next += count;
    return count;
}

// ----------------------------------------------------------------------------------- texts

std::size_t caption_context(const text_tower_config& text) { return std::min<std::size_t>(77, text.max_positions); }

token_rows tokenize_texts(const std::vector<std::string>& texts, const bpe_tokenizer& tokenizer, std::size_t context,
                          const std::string& source) {
    auto bos = tokenizer.special_id("<|startoftext|>"), eos = tokenizer.special_id("<|endoftext|>");
    if (!bos || !eos)
        throw error(fmt::format("the tokenizer has no <|startoftext|> and <|endoftext|> tokens: not a CLIP tokenizer"));
    token_rows rows{source, texts.size(), context, std::vector<std::int32_t>(texts.size() * context)};
    parallel_for(texts.size(), [&](std::size_t begin, std::size_t end) {
        bpe_encoder encoder(tokenizer);
        for (std::size_t i = begin; i < end; ++i) {
            auto ids = encoder.encode_sequence(texts[i], {.bos = bos, .eos = eos, .context_length = context, .pad_id = eos});
            std::copy(ids.begin(), ids.end(), rows.ids.begin() + static_cast<std::ptrdiff_t>(i * context));
        }
    });
    return rows;
}

token_rows tokenize_captions(const std::string& path, const bpe_tokenizer& tokenizer, std::size_t context) {
    input_text input(path);
    std::vector<std::string> captions;
    line_cursor lines(strip_byte_order_mark(input.text()));
    std::string_view line;
    while (lines.next(line)) {
        // The reference reads captions as Python str: bytes that are not UTF-8 never get there.
        if (!is_utf8_text(line)) throw error_at(display_name(path), lines.line_number(), "not UTF-8 text");
        captions.emplace_back(line);
    }
    if (captions.empty()) throw error_in(display_name(path), "no captions (one per line)");
    return tokenize_texts(captions, tokenizer, context, display_name(path));
}

token_rows read_token_ids(const std::string& path, const text_tower_config& text) {
    npy_array array(path);
    std::string name = display_name(path);
    const auto& shape = array.shape();
    bool integer = array.type() != dtype::f16 && array.type() != dtype::f32 && array.type() != dtype::f64;
    if (!integer || shape.size() != 2)
        throw error_in(name, "token ids must be an integer array (N, T), as bpe-encode --format npy writes them");
    if (shape[0] == 0 || shape[1] == 0) throw error_in(name, "no token ids");
    token_rows rows{name, shape[0], shape[1], {}};
    rows.ids.reserve(array.element_count());
    for (std::int64_t id : array.to_int64()) {
        if (id < 0 || id > std::numeric_limits<std::int32_t>::max())
            throw error_in(name, fmt::format("token id {} is not in the model's vocabulary of {}", id, text.vocab_size));
        rows.ids.push_back(static_cast<std::int32_t>(id));
    }
    check_token_ids(rows.ids, rows.time, text, name);
    return rows;
}

// ------------------------------------------------------------------------------- embedding

void embed_images(clip_model& model, image_batches& images, std::size_t batch_size, progress& bar,
                  const embedding_sink& sink) {
    std::vector<float> patches, embeddings;
    while (std::size_t count = images.next(batch_size, patches)) {
        embeddings.resize(count * model.config().projection_dim);
        model.embed_images(patches.data(), count, embeddings.data());
        sink(embeddings.data(), count);
        bar.advance(count);
    }
}

void embed_texts(clip_model& model, const token_rows& texts, std::size_t batch_size, progress& bar,
                 const embedding_sink& sink) {
    check_token_ids(texts.ids, texts.time, model.config().text, texts.path);
    std::vector<float> embeddings;
    for (std::size_t begin = 0; begin < texts.rows; begin += batch_size) {
        std::size_t count = std::min(batch_size, texts.rows - begin);
        embeddings.resize(count * model.config().projection_dim);
        model.embed_texts(texts.ids.data() + begin * texts.time, count, texts.time, embeddings.data());
        sink(embeddings.data(), count);
        bar.advance(count);
    }
}

}  // namespace lowrank
