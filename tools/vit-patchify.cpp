// vit-patchify: images into the patch sequences ViT and CLIP models take, preprocessed as
// Hugging Face's image processors do it; and patches back into images.
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "image/collection.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <limits>

using namespace lowrank;

namespace {

struct option_values {
    std::string preset = "clip", resize, crop, filter, mean, std, layout = "conv", files_from, index, preview;
    std::vector<std::string> label_files;
    std::size_t channels = 3, patch = 16;
    bool unpatchify = false, skip_bad = false, draft = false, idx = false;
};

// The preset, then whatever the command line sets by hand.
collection_settings settings_from(const command_line& cli, const option_values& options) {
    collection_settings settings;
    preprocess_settings& preprocess = settings.preprocess;
    preprocess = preset_settings(options.preset);
    if (cli.given("resize")) preprocess.resize = parse_resize_rule(options.resize);
    if (cli.given("crop")) preprocess.crop = parse_crop(options.crop);
    if (cli.given("filter")) {
        auto filter = resize_filter_from_name(options.filter);
        if (!filter)
            throw usage_error(fmt::format("unknown filter '{}' (filters: bicubic, bilinear, nearest)", options.filter));
        preprocess.filter = *filter;
    }
    if (cli.given("mean")) preprocess.mean = parse_float_list(options.mean, "--mean");
    if (cli.given("std")) preprocess.std = parse_float_list(options.std, "--std");
    preprocess.channels = options.channels;
    auto layout = patch_layout_from_name(options.layout);
    if (!layout) throw usage_error(fmt::format("unknown layout '{}' (layouts: conv, pixels)", options.layout));
    settings.layout = *layout;
    if (options.patch == 0) throw usage_error("--patch must be positive");
    settings.patch = options.patch;
    settings.draft = options.draft;
    settings.skip_bad = options.skip_bad;
    settings.all_idx = options.idx;
    settings.quiet = cli.common().quiet;
    return settings;
}

std::vector<std::string> input_list(const std::vector<std::string>& operands, const std::string& files_from) {
    std::vector<std::string> inputs = operands;
    if (files_from == "-" && std::count(operands.begin(), operands.end(), "-") > 0)
        throw usage_error("standard input cannot hold both an image and the --files-from list");
    if (!files_from.empty()) {
        input_text list(files_from);
        line_cursor lines(list.text());
        std::string_view line;
        while (lines.next(line))
            if (!line.empty()) inputs.emplace_back(line);
    }
    if (inputs.empty()) throw usage_error("no images: name image or IDX files, or give --files-from");
    return inputs;
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("vit-patchify", "FILE...",
                     "Cut images into the patch sequences ViT and CLIP models take: decode each image file (PNG, "
                     "JPEG, BMP, GIF, TGA, PNM, PSD, HDR) or IDX file (MNIST), preprocess it as Hugging Face's "
                     "image processors do (resize, center crop, scale, normalise), and write one float32 .npy of "
                     "shape (N, (H/P)(W/P), C*P*P), each patch flattened in the (C, P, P) order of a Conv2d patch "
                     "embedding. With --unpatchify, turn such a .npy back into PNG images.");
    option_values options;
    std::vector<std::string> operands;
    cli.options().add_options()
        ("preset", value(&options.preset, "NAME")->default_value("clip"),
         "preprocessing of a model family: clip, imagenet, vit, none (the options below override it)")
        ("resize", value(&options.resize, "SIZE"), "N: shorter side to N; WxH: exactly; none")
        ("crop", value(&options.crop, "SIZE"), "center crop to N (NxN) or WxH; none")
        ("filter", value(&options.filter, "NAME"), "resize filter: bicubic, bilinear, nearest")
        ("mean", value(&options.mean, "LIST"), "per-channel mean subtracted after scaling to [0,1]")
        ("std", value(&options.std, "LIST"), "per-channel standard deviation divided by")
        ("channels", value(&options.channels, "N")->default_value(3), "3 (RGB) or 1 (gray)")
        ("patch", value(&options.patch, "P")->default_value(16), "patch size in pixels")
        ("layout", value(&options.layout, "NAME")->default_value("conv"),
         "flattening of a patch: conv (C,P,P) or pixels (P,P,C)")
        ("files-from", value(&options.files_from, "FILE"),
         "read more input paths from FILE, one per line (- for stdin)")
        ("idx", flag(&options.idx), "read every input as an IDX file, whatever its name")
        ("labels", value(&options.label_files, "FILE")->composing(),
         "IDX labels of an IDX input (once per IDX input, in order): written as int64 to OUTPUT.labels.npy")
        ("index", value(&options.index, "FILE"), "write a TSV of row, file, record, width, height")
        ("preview", value(&options.preview, "FILE"), "draw the first image's patches as a grid into a PNG")
        ("draft", flag(&options.draft), "decode large JPEGs at 1/2, 1/4 or 1/8 size when that still covers the resize")
        ("skip-bad", flag(&options.skip_bad), "skip inputs that cannot be used, with a warning, instead of failing")
        ("unpatchify", flag(&options.unpatchify), "turn the patches .npy FILE back into PNG images in the folder -o");
    cli.operands(operands, 0, std::numeric_limits<std::size_t>::max());
    cli.epilog("Examples:\n"
               "  vit-patchify -o patches.npy photos/*.jpg\n"
               "  vit-patchify --preset none --channels 1 --patch 4 --labels train-labels-idx1-ubyte.gz \\\n"
               "      -o train.npy train-images-idx3-ubyte.gz\n"
               "  vit-patchify --unpatchify -o images/ patches.npy");
    return cli.run(argc, argv, [&] {
        collection_settings settings = settings_from(cli, options);
        const std::string& output = cli.common().output;
        if (options.unpatchify) {
            if (operands.size() != 1 || !options.files_from.empty())
                throw usage_error("--unpatchify takes one patches .npy file");
            if (output == "-") throw usage_error("--unpatchify writes PNG files: name their folder with -o");
            unpatchify_file(operands[0], settings, output);
            return;
        }
        collection_outputs outputs{output, options.index, "", options.preview};
        if (!options.label_files.empty()) {
            if (output == "-") throw usage_error("--labels writes OUTPUT.labels.npy beside the output: give -o FILE");
            outputs.labels = labels_path_beside(output);
        }
        auto summary = patchify_collection(input_list(operands, options.files_from), options.label_files, settings,
                                           outputs, [&](const std::string& line) { cli.warn(line); });
        if (summary.skipped > 0)
            cli.warn(fmt::format("skipped {} of {} images", summary.skipped, summary.skipped + summary.written));
    });
}
