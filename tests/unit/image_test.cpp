#include "core/error.hpp"
#include "core/random.hpp"
#include "formats/npy.hpp"
#include "helpers.hpp"
#include "image/decode.hpp"
#include "image/patchify.hpp"
#include "image/preprocess.hpp"
#include "image/preview.hpp"
#include "image/resize.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string fixtures = "tests/data/image/";

image random_image(random_generator& random, std::size_t width, std::size_t height, std::size_t channels) {
    image picture(width, height, channels);
    for (auto& sample : picture.pixels) sample = static_cast<std::uint8_t>(random.below(256));
    return picture;
}

// Pillow's two-pass resample written plainly, one sample at a time, for the whole image:
// the reference the vectorised, crop-aware resize_and_crop must reproduce.
std::vector<std::int32_t> reference_weights(std::size_t in, std::size_t out, bool bicubic, std::vector<int>& first,
                                            std::vector<int>& count, std::size_t& taps) {
    auto kernel = [&](double x) {
        x = std::fabs(x);
        if (!bicubic) return x < 1 ? 1 - x : 0.0;
        if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * -0.5;
        return 0.0;
    };
    double scale = double(in) / double(out), filter_scale = std::max(scale, 1.0);
    double support = (bicubic ? 2.0 : 1.0) * filter_scale;
    taps = std::size_t(std::ceil(support)) * 2 + 1;
    std::vector<std::int32_t> weights(out * taps, 0);
    for (std::size_t o = 0; o < out; ++o) {
        double center = (double(o) + 0.5) * scale;
        int low = std::max(0, int(center - support + 0.5)), high = std::min(int(in), int(center + support + 0.5));
        std::vector<double> w;
        for (int i = low; i < high; ++i) w.push_back(kernel((i - center + 0.5) * (1.0 / filter_scale)));
        double total = 0;
        for (double v : w) total += v;
        for (std::size_t i = 0; i < w.size(); ++i) {
            double scaled = w[i] / total * (1 << 22);
            weights[o * taps + i] = std::int32_t(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
        }
        first.push_back(low);
        count.push_back(high - low);
    }
    return weights;
}

image reference_resize(const image& source, std::size_t width, std::size_t height, bool bicubic) {
    auto pass = [&](const image& in, std::size_t out_width, std::size_t out_height, bool along_x) {
        std::vector<int> first, count;
        std::size_t taps = 0;
        auto weights = along_x ? reference_weights(in.width, out_width, bicubic, first, count, taps)
                               : reference_weights(in.height, out_height, bicubic, first, count, taps);
        image out(out_width, out_height, in.channels);
        for (std::size_t y = 0; y < out_height; ++y)
            for (std::size_t x = 0; x < out_width; ++x)
                for (std::size_t c = 0; c < in.channels; ++c) {
                    std::size_t o = along_x ? x : y;
                    std::int32_t sum = 1 << 21;
                    for (int i = 0; i < count[o]; ++i) {
                        std::size_t at = std::size_t(first[o] + i);
                        sum += (along_x ? in.row(y)[at * in.channels + c] : in.row(at)[x * in.channels + c]) *
                               weights[o * taps + std::size_t(i)];
                    }
                    out.row(y)[x * in.channels + c] = std::uint8_t(std::clamp(sum >> 22, 0, 255));
                }
        return out;
    };
    image between = width == source.width ? source : pass(source, width, source.height, true);
    return height == source.height ? between : pass(between, width, height, false);
}

std::vector<float> load_floats(const std::string& path) { return npy_array(path).to_float(); }

}  // namespace

// ------------------------------------------------------------------------------ channels

TEST_CASE("convert_channels: as Pillow's convert(\"RGB\") and convert(\"L\")") {
    image rgba(2, 1, 4);
    rgba.pixels = {10, 200, 30, 0, 255, 255, 255, 128};
    image rgb = convert_channels(rgba, 3);
    CHECK(rgb.pixels == std::vector<std::uint8_t>{10, 200, 30, 255, 255, 255});  // alpha dropped, not composited
    // L = (19595 R + 38470 G + 7471 B + 32768) >> 16: (195950 + 7694000 + 224130 + 32768) >> 16 = 124.
    CHECK(convert_channels(rgba, 1).pixels == std::vector<std::uint8_t>{124, 255});
    image gray_alpha(2, 1, 2);
    gray_alpha.pixels = {7, 0, 250, 9};
    CHECK(convert_channels(gray_alpha, 3).pixels == std::vector<std::uint8_t>{7, 7, 7, 250, 250, 250});
    CHECK(convert_channels(gray_alpha, 1).pixels == std::vector<std::uint8_t>{7, 250});
    CHECK(convert_channels(rgb, 3).pixels == rgb.pixels);
    CHECK_THROWS_AS(convert_channels(rgb, 2), std::invalid_argument);
}

// ------------------------------------------------------------------------------- decoding

TEST_CASE("decode: every format, the channels stored in the file") {
    struct expected_image {
        const char* name;
        std::size_t channels;
    };
    for (auto [name, channels] : {expected_image{"rgb.png", 3}, {"gray.png", 1}, {"la.png", 2}, {"rgba.png", 4},
                                  {"palette.png", 3}, {"rgb16.png", 3}, {"gray16.png", 1}, {"rgb.bmp", 3},
                                  {"rgb.tga", 3}, {"rgb.ppm", 3}, {"gray.pgm", 1}, {"palette.gif", 4},
                                  {"gray.jpg", 1}, {"cmyk.jpg", 3}}) {
        image_size stored;
        image picture = read_image(fixtures + name, {}, &stored);
        CHECK_MESSAGE(picture.width == 40, name);
        CHECK_MESSAGE(picture.height == 32, name);
        CHECK_MESSAGE(picture.channels == channels, name);
        CHECK_MESSAGE(stored == image_size(40, 32), name);
    }
    // Lossless formats of the same picture decode to the same pixels.
    image png = read_image(fixtures + "rgb.png");
    for (const char* name : {"rgb.bmp", "rgb.tga", "rgb.ppm"}) CHECK_MESSAGE(read_image(fixtures + name).pixels == png.pixels, name);
    // 16-bit samples keep their high byte.
    image wide = read_image(fixtures + "rgb16.png");
    CHECK(wide.pixels == png.pixels);
}

TEST_CASE("decode: JPEG drafts decode large photographs at 1/2, 1/4 or 1/8 of their size") {
    decode_options options;
    options.draft_target = [](std::size_t& width, std::size_t& height) { width /= 4, height /= 4; };
    image_size stored;
    image quarter = read_image(fixtures + "big.jpg", options, &stored);
    CHECK(stored == image_size(500, 375));
    CHECK(quarter.width == 125);  // ceil(500 / 4)
    CHECK(quarter.height == 94);  // ceil(375 / 4)
    options.draft_target = [](std::size_t& width, std::size_t& height) { width = 300, height = 225; };
    CHECK(read_image(fixtures + "big.jpg", options).width == 500);  // a half would not cover 300x225
}

TEST_CASE("decode: what does not decode is an error naming the file") {
    scratch_folder folder;
    write_file(folder.file("empty.png"), "");
    write_file(folder.file("text.png"), "not an image at all");
    write_file(folder.file("header.jpg"), std::string("\xFF\xD8\xFF\xE0\0\x10JFIF", 10));
    auto fails_with = [](const std::string& path, const char* message) {
        CHECK_THROWS_WITH_AS(read_image(path), doctest::Contains(message), error);
    };
    fails_with(folder.file("empty.png"), "empty.png: cannot decode: empty file");
    fails_with(folder.file("text.png"), "text.png: cannot decode: unknown image type");
    fails_with(folder.file("header.jpg"), "header.jpg: cannot decode JPEG");
    fails_with(fixtures + "truncated.jpg", "truncated.jpg: cannot decode JPEG: the file is truncated");
    fails_with(folder.file("absent.png"), "absent.png: No such file");
    std::string png = read_file(fixtures + "rgb.png");
    write_file(folder.file("cut.png"), png.substr(0, png.size() / 2));
    fails_with(folder.file("cut.png"), "cut.png: cannot decode");
    // Sizes are checked from the header, before any pixel is decoded (decompression bombs).
    auto png_header = [](std::uint32_t width, std::uint32_t height) {
        std::string bytes("\x89PNG\r\n\x1A\n\0\0\0\x0DIHDR", 16);
        for (std::uint32_t value : {width, height})
            for (int shift = 24; shift >= 0; shift -= 8) bytes += static_cast<char>(value >> shift & 0xFF);
        return bytes + std::string("\x08\x02\0\0\0\0\0\0\0", 9);
    };
    write_file(folder.file("bomb.png"), png_header(60000, 60000));
    write_file(folder.file("over.png"), png_header(8193, 8192));
    write_file(folder.file("zero.png"), png_header(0, 40));
    fails_with(folder.file("bomb.png"), "bomb.png: cannot decode: 60000x60000 is more than 67108864 pixels");
    fails_with(folder.file("over.png"), "over.png: cannot decode: 8193x8192 is more than 67108864 pixels");
    fails_with(folder.file("zero.png"), "zero.png: cannot decode: the image is empty");
}

// ------------------------------------------------------------------------------- resizing

TEST_CASE("resize_and_crop: Pillow's resample, sample for sample, any size, any crop") {
    random_generator random(7);
    for (int trial = 0; trial < 300; ++trial) {
        std::size_t channels = random.below(2) ? 3 : 1;
        std::size_t width = 1 + random.below(40), height = 1 + random.below(40);
        std::size_t out_width = 1 + random.below(60), out_height = 1 + random.below(60);
        bool bicubic = random.below(2);
        image source = random_image(random, width, height, channels);
        image full = reference_resize(source, out_width, out_height, bicubic);
        pixel_box box{random.below(out_width), random.below(out_height), 0, 0};
        box.width = 1 + random.below(out_width - box.left);
        box.height = 1 + random.below(out_height - box.top);
        image cropped = resize_and_crop(source, out_width, out_height,
                                        bicubic ? resize_filter::bicubic : resize_filter::bilinear, box);
        bool same = true;
        for (std::size_t y = 0; y < box.height; ++y)
            same = same && std::equal(cropped.row(y), cropped.row(y) + cropped.row_size(),
                                      full.row(box.top + y) + box.left * channels);
        REQUIRE_MESSAGE(same, width, "x", height, "x", channels, " -> ", out_width, "x", out_height,
                        (bicubic ? " bicubic" : " bilinear"));
    }
}

TEST_CASE("resize_and_crop from a part: the part resize_region names is enough") {
    random_generator random(11);
    for (int trial = 0; trial < 200; ++trial) {
        std::size_t channels = random.below(2) ? 3 : 1;
        std::size_t width = 1 + random.below(50), height = 1 + random.below(50);
        std::size_t out_width = 1 + random.below(40), out_height = 1 + random.below(40);
        auto filter = std::array{resize_filter::nearest, resize_filter::bilinear, resize_filter::bicubic}[random.below(3)];
        image source = random_image(random, width, height, channels);
        pixel_box box{random.below(out_width), random.below(out_height), 0, 0};
        box.width = 1 + random.below(out_width - box.left);
        box.height = 1 + random.below(out_height - box.top);
        pixel_box needed = resize_region({width, height}, out_width, out_height, filter, box);
        REQUIRE(needed.left + needed.width <= width);
        REQUIRE(needed.top + needed.height <= height);
        image_part part{image(needed.width, needed.height, channels), needed.left, needed.top, {width, height}};
        for (std::size_t y = 0; y < needed.height; ++y)
            std::memcpy(part.pixels.row(y), source.row(needed.top + y) + needed.left * channels, part.pixels.row_size());
        REQUIRE(resize_and_crop(part, out_width, out_height, filter, box).pixels ==
                resize_and_crop(source, out_width, out_height, filter, box).pixels);
        if (needed.width > 1) {  // one column short of the region is refused
            part.pixels = image(needed.width - 1, needed.height, channels);
            CHECK_THROWS_AS(resize_and_crop(part, out_width, out_height, filter, box), std::invalid_argument);
        }
    }
}

TEST_CASE("decode_part: only the region the crop keeps, the same pixels as a full decode") {
    std::string bytes = read_file(fixtures + "big.jpg");
    for (const char* preset : {"clip", "imagenet"}) {
        preprocess_settings settings = preset_settings(preset);
        decode_options options;
        options.region = [&](image_size size) { return preprocess_region(size, settings); };
        image_part part = decode_part(as_bytes(bytes), "big.jpg", options);
        CHECK(part.full == image_size(500, 375));
        CHECK(part.pixels.width < 500);  // the sides the crop drops are not decoded
        CHECK(prepare_pixels(std::move(part), settings, "big.jpg").pixels ==
              prepare_pixels(decode_image(as_bytes(bytes), "big.jpg"), settings, "big.jpg").pixels);
    }
    // Portrait: rows are skipped instead.
    preprocess_settings clip = preset_settings("clip");
    decode_options options;
    options.region = [&](image_size size) { return preprocess_region(size, clip); };
    std::string portrait = read_file(fixtures + "portrait.jpg");
    clip.resize = parse_resize_rule("32");
    clip.crop = image_size{32, 16};  // the middle rows of a 32x42 resize
    image_part part = decode_part(as_bytes(portrait), "portrait.jpg", options);
    CHECK(part.pixels.height < 120);
    CHECK(part.top > 0);
    CHECK(prepare_pixels(std::move(part), clip, "").pixels ==
          prepare_pixels(decode_image(as_bytes(portrait), "portrait.jpg"), clip, "").pixels);
    std::string truncated = read_file(fixtures + "truncated.jpg");
    CHECK_THROWS_WITH_AS(decode_part(as_bytes(truncated), "truncated.jpg", options),
                         doctest::Contains("the file is truncated"), error);
}

TEST_CASE("resize: a uniform image stays uniform; the same size is the same image") {
    image flat(17, 9, 3);
    std::fill(flat.pixels.begin(), flat.pixels.end(), std::uint8_t{200});
    for (auto filter : {resize_filter::nearest, resize_filter::bilinear, resize_filter::bicubic})
        for (auto [width, height] : {std::pair{5, 3}, std::pair{40, 31}, std::pair{17, 30}}) {
            image resized = resize(flat, width, height, filter);
            CHECK(std::all_of(resized.pixels.begin(), resized.pixels.end(), [](auto v) { return v == 200; }));
        }
    random_generator random(3);
    image source = random_image(random, 13, 11, 1);
    CHECK(resize(source, 13, 11, resize_filter::bicubic).pixels == source.pixels);
    CHECK_THROWS_AS(resize_and_crop(source, 10, 10, resize_filter::bicubic, {5, 5, 6, 1}), std::invalid_argument);
}

// --------------------------------------------------------------------------- preprocessing

TEST_CASE("resize rules: Hugging Face's shortest edge, truncated") {
    resize_rule clip = preset_settings("clip").resize;
    CHECK(clip.output_size({500, 375}) == image_size(298, 224));  // int(224 * 500 / 375) = int(298.67)
    CHECK(clip.output_size({375, 500}) == image_size(224, 298));
    CHECK(clip.output_size({224, 224}) == image_size(224, 224));
    CHECK(clip.output_size({28, 28}) == image_size(224, 224));
    CHECK(parse_resize_rule("none").output_size({31, 7}) == image_size(31, 7));
    CHECK(parse_resize_rule("64x32").output_size({31, 7}) == image_size(64, 32));
    CHECK(center_crop_box({298, 224}, {224, 224}).left == 37);  // floor(74 / 2)
    CHECK(center_crop_box({225, 227}, {224, 224}).top == 1);    // floor(3 / 2)
    CHECK(parse_crop("none") == std::nullopt);
    CHECK(parse_crop("24x16") == image_size(24, 16));
    CHECK_THROWS_AS(parse_resize_rule("0"), usage_error);
    CHECK_THROWS_AS(parse_resize_rule("12x"), usage_error);
    CHECK_THROWS_WITH_AS(parse_crop("big"), "--crop takes a size N or WxH (positive integers), not 'big'", usage_error);
    CHECK_THROWS_WITH_AS(preset_settings("dino"), doctest::Contains("unknown preset 'dino'"), usage_error);
    CHECK_THROWS_AS(parse_float_list("0.5,x", "--mean"), usage_error);
    preprocess_settings settings = preset_settings("clip");
    settings.channels = 1;
    CHECK_THROWS_WITH_AS(check_settings(settings), doctest::Contains("--mean has 3 values for 1 channel"), usage_error);
    settings.mean = settings.std = {0.5f};
    check_settings(settings);
    settings.std = {0.0f};
    CHECK_THROWS_AS(check_settings(settings), usage_error);
}

TEST_CASE("normalizer: NumPy's float32 arithmetic; to_sample inverts it") {
    preprocess_settings clip = preset_settings("clip");
    normalizer normalize(3, clip.mean, clip.std);
    std::vector<std::uint8_t> samples(256);
    for (int u = 0; u < 256; ++u) samples[std::size_t(u)] = std::uint8_t(u);
    std::vector<float> values(256);
    for (std::size_t c = 0; c < 3; ++c) {
        normalize.apply(c, samples.data(), 1, samples.size(), values.data());
        for (int u = 0; u < 256; ++u) {
            volatile float scaled = static_cast<float>(u) / 255.0f;  // one operation at a time, as NumPy
            float expected = (scaled - clip.mean[c]) / clip.std[c];
            REQUIRE(values[std::size_t(u)] == expected);
            REQUIRE(normalize.to_sample(c, expected) == u);
        }
    }
    CHECK(normalize.to_sample(0, 100.0f) == 255);
    CHECK(normalize.to_sample(0, -100.0f) == 0);
}

TEST_CASE("preprocess: the library path from a file to the tensor is Pillow + NumPy's") {
    preprocess_settings settings = preset_settings("clip");
    settings.resize = parse_resize_rule("none");
    settings.crop.reset();
    image_tensor tensor = preprocess(read_image(fixtures + "rgb.png"), settings);
    CHECK(tensor.channels == 3);
    CHECK(tensor.height == 32);
    CHECK(tensor.width == 40);
    CHECK(patchify(tensor, 8, patch_layout::conv) == load_floats(fixtures + "rgb-clip-normalise.npy"));

    settings = preset_settings("clip");
    settings.resize = parse_resize_rule("64");
    settings.crop = image_size{64, 64};
    tensor = preprocess(read_image(fixtures + "photo.jpg"), settings);
    CHECK(patchify(tensor, 16, patch_layout::conv) == load_floats(fixtures + "photo-clip-64.npy"));

    // The direct path from pixels to patches is to_tensor then patchify, gray copied to RGB too.
    for (const char* name : {"gray.png", "rgb.png"})
        for (auto layout : {patch_layout::conv, patch_layout::pixels}) {
            image pixels = prepare_pixels(read_image(fixtures + name), settings, name);
            normalizer normalize(3, settings.mean, settings.std);
            image_tensor expected;
            to_tensor(pixels, normalize, expected);
            patch_shape shape{3, pixels.height, pixels.width, 16};
            std::vector<float> direct(shape.elements());
            patchify_pixels(pixels, normalize, shape, layout, direct.data());
            CHECK_MESSAGE(direct == patchify(expected, 16, layout), name);
        }

    settings.resize = parse_resize_rule("none");
    CHECK_THROWS_WITH_AS(preprocess(read_image(fixtures + "gray.png"), settings, "gray.png"),
                         "gray.png: the image is 40x32 after resizing, smaller than the 64x64 crop", error);
}

// -------------------------------------------------------------------------------- patches

TEST_CASE("patchify: patches · W.reshape(D, C·P·P)ᵀ is torch's Conv2d patch embedding") {
    preprocess_settings clip = preset_settings("clip");
    clip.resize = parse_resize_rule("none");
    clip.crop.reset();
    image_tensor x = preprocess(read_image(fixtures + "rgb.png"), clip);
    npy_array weight_file(fixtures + "conv-weight.npy"), embedding_file(fixtures + "conv-embeddings.npy");
    REQUIRE(weight_file.shape() == std::vector<std::size_t>{6, 3, 8, 8});
    std::vector<float> weight = weight_file.to_float(), expected = embedding_file.to_float();
    const std::size_t D = 6, C = 3, P = 8, length = C * P * P;

    for (auto layout : {patch_layout::conv, patch_layout::pixels}) {
        // In pixels order the weight must be permuted to (D, P, P, C) first.
        std::vector<float> w(weight.size());
        for (std::size_t d = 0; d < D; ++d)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t u = 0; u < P; ++u)
                    for (std::size_t v = 0; v < P; ++v) {
                        std::size_t from = ((d * C + c) * P + u) * P + v;
                        std::size_t to = layout == patch_layout::conv ? from : ((d * P + u) * P + v) * C + c;
                        w[to] = weight[from];
                    }
        std::vector<float> patches = patchify(x, P, layout);
        const std::size_t count = patches.size() / length;
        REQUIRE(count * D == expected.size());
        double worst = 0;
        for (std::size_t n = 0; n < count; ++n)
            for (std::size_t d = 0; d < D; ++d) {
                double sum = 0;
                for (std::size_t k = 0; k < length; ++k) sum += double(patches[n * length + k]) * w[d * length + k];
                worst = std::max(worst, std::fabs(sum - expected[n * D + d]));
            }
        CHECK(worst < 1e-4);
    }
}

TEST_CASE("patchify and unpatchify: the patch order and their inverse") {
    image_tensor x{2, 4, 6, {}};
    for (std::size_t i = 0; i < 48; ++i) x.values.push_back(float(i));  // x[c, h, w] = 24c + 6h + w
    std::vector<float> conv = patchify(x, 2, patch_layout::conv);
    // Patch 1 is grid row 0, column 1: columns 2-3 of rows 0-1; channel 0 first.
    CHECK(std::vector<float>(conv.begin() + 8, conv.begin() + 16) == std::vector<float>{2, 3, 8, 9, 26, 27, 32, 33});
    std::vector<float> pixels = patchify(x, 2, patch_layout::pixels);
    CHECK(std::vector<float>(pixels.begin() + 8, pixels.begin() + 16) == std::vector<float>{2, 26, 3, 27, 8, 32, 9, 33});
    for (auto layout : {patch_layout::conv, patch_layout::pixels}) {
        std::vector<float> back(48);
        unpatchify((layout == patch_layout::conv ? conv : pixels).data(), {2, 4, 6, 2}, layout, back.data());
        CHECK(back == x.values);
    }
    CHECK_THROWS_AS(patchify(x, 4, patch_layout::conv), std::invalid_argument);
}

TEST_CASE("draw_patches: the picture of the patches, with gaps between them") {
    image_tensor x{1, 4, 4, {}};
    normalizer none(1, {0.0f}, {1.0f});
    for (int i = 0; i < 16; ++i) x.values.push_back(float(i * 16) / 255.0f);
    patch_shape shape{1, 4, 4, 2};
    std::vector<float> patches = patchify(x, 2, patch_layout::conv);
    image whole = draw_patches(patches.data(), shape, patch_layout::conv, none, 0);
    CHECK(whole.width == 4);
    for (int i = 0; i < 16; ++i) CHECK(whole.pixels[std::size_t(i)] == i * 16);
    image spaced = draw_patches(patches.data(), shape, patch_layout::conv, none, 1);
    CHECK(spaced.width == 5);
    CHECK(spaced.height == 5);
    CHECK(spaced.row(0)[2] == 255);  // the gap column
    CHECK(spaced.row(0)[3] == 2 * 16);
    CHECK(spaced.row(3)[0] == 2 * 4 * 16);  // row 2 of the image, below the gap row
}
