#include "image/preprocess.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowrank {
namespace {

std::optional<std::size_t> parse_positive(std::string_view text) {
    auto number = parse_integer(text);
    if (!number || *number <= 0 || *number > 1'000'000) return std::nullopt;
    return static_cast<std::size_t>(*number);
}

const std::vector<float> clip_mean{0.48145466f, 0.4578275f, 0.40821073f};
const std::vector<float> clip_std{0.26862954f, 0.26130258f, 0.27577711f};
const std::vector<float> imagenet_mean{0.485f, 0.456f, 0.406f};
const std::vector<float> imagenet_std{0.229f, 0.224f, 0.225f};

}  // namespace

image_size parse_image_size(std::string_view text, std::string_view option) {
    text = trim(text);
    auto x = text.find('x');
    if (x == std::string_view::npos) {
        if (auto side = parse_positive(text)) return {*side, *side};
    } else if (auto width = parse_positive(text.substr(0, x)), height = parse_positive(text.substr(x + 1));
               width && height) {
        return {*width, *height};
    }
    throw usage_error(fmt::format("{} takes a size N or WxH (positive integers), not '{}'", option, text));
}

std::string format_image_size(image_size size) { return fmt::format("{}x{}", size.width, size.height); }

image_size resize_rule::output_size(image_size input) const {
    switch (kind) {
    case mode::none: return input;
    case mode::exact: return size;
    case mode::shorter_side: break;
    }
    bool wide = input.width >= input.height;
    std::size_t shorter = wide ? input.height : input.width, longer = wide ? input.width : input.height;
    // Python's int(N * long / short): a double division, truncated.
    auto other = static_cast<std::size_t>(static_cast<double>(shorter_side * longer) / static_cast<double>(shorter));
    other = std::max<std::size_t>(other, 1);
    return wide ? image_size{other, shorter_side} : image_size{shorter_side, other};
}

resize_rule parse_resize_rule(std::string_view text) {
    resize_rule rule;
    text = trim(text);
    if (text == "none") return rule;
    if (text.find('x') == std::string_view::npos) {
        rule.kind = resize_rule::mode::shorter_side;
        rule.shorter_side = parse_image_size(text, "--resize").width;
    } else {
        rule.kind = resize_rule::mode::exact;
        rule.size = parse_image_size(text, "--resize");
    }
    return rule;
}

std::string format_resize_rule(const resize_rule& rule) {
    switch (rule.kind) {
    case resize_rule::mode::none: return "none";
    case resize_rule::mode::shorter_side: return std::to_string(rule.shorter_side);
    case resize_rule::mode::exact: return format_image_size(rule.size);
    }
    return "";
}

std::optional<image_size> parse_crop(std::string_view text) {
    if (trim(text) == "none") return std::nullopt;
    return parse_image_size(text, "--crop");
}

std::vector<float> parse_float_list(std::string_view text, std::string_view option) {
    std::vector<float> values;
    for (std::string_view field : split(text, ',')) {
        auto value = parse_double(field);
        if (!value || !std::isfinite(*value))
            throw usage_error(fmt::format("{} takes comma-separated numbers, not '{}'", option, text));
        values.push_back(static_cast<float>(*value));
    }
    return values;
}

std::optional<image_size> fixed_output_size(const preprocess_settings& settings) {
    if (settings.crop) return settings.crop;
    if (settings.resize.kind == resize_rule::mode::exact) return settings.resize.size;
    return std::nullopt;
}

std::string_view preset_names() { return "clip, imagenet, vit, none"; }

preprocess_settings preset_settings(std::string_view name) {
    preprocess_settings settings;
    if (name == "clip") {
        settings.resize = {resize_rule::mode::shorter_side, 224, {}};
        settings.filter = resize_filter::bicubic;
        settings.crop = image_size{224, 224};
        settings.mean = clip_mean, settings.std = clip_std;
    } else if (name == "imagenet") {
        settings.resize = {resize_rule::mode::shorter_side, 256, {}};
        settings.filter = resize_filter::bilinear;
        settings.crop = image_size{224, 224};
        settings.mean = imagenet_mean, settings.std = imagenet_std;
    } else if (name == "vit") {
        settings.resize = {resize_rule::mode::exact, 0, {224, 224}};
        settings.filter = resize_filter::bilinear;
        settings.mean = {0.5f}, settings.std = {0.5f};
    } else if (name == "none") {
        settings.mean = {0.0f}, settings.std = {1.0f};
    } else {
        throw usage_error(fmt::format("unknown preset '{}' (presets: {})", name, preset_names()));
    }
    return settings;
}

void check_settings(const preprocess_settings& settings) {
    if (settings.channels != 1 && settings.channels != 3) throw usage_error("--channels must be 1 or 3");
    auto check_list = [&](const std::vector<float>& values, std::string_view option) {
        if (values.size() != 1 && values.size() != settings.channels)
            throw usage_error(fmt::format("{} has {} values for {} channel{}: give one value, or one per channel",
                                          option, values.size(), settings.channels,
                                          settings.channels == 1 ? "" : "s"));
    };
    check_list(settings.mean, "--mean");
    check_list(settings.std, "--std");
    for (float value : settings.std)
        if (!(value > 0)) throw usage_error("--std values must be positive");
}

pixel_box center_crop_box(image_size image, image_size crop) {
    return {(image.width - crop.width) / 2, (image.height - crop.height) / 2, crop.width, crop.height};
}

normalizer::normalizer(std::size_t channels, const std::vector<float>& mean, const std::vector<float>& std)
    : tables_(channels) {
    for (std::size_t c = 0; c < channels; ++c) {
        mean_.push_back(mean.size() == 1 ? mean[0] : mean.at(c));
        std_.push_back(std.size() == 1 ? std[0] : std.at(c));
        for (int value = 0; value < 256; ++value) {
            float scaled = static_cast<float>(value) / 255.0f;
            tables_[c][static_cast<std::size_t>(value)] = (scaled - mean_[c]) / std_[c];
        }
    }
}

std::uint8_t normalizer::to_sample(std::size_t channel, float value) const {
    float sample = (value * std_[channel] + mean_[channel]) * 255.0f;
    return static_cast<std::uint8_t>(std::clamp(std::lround(sample), 0l, 255l));
}

image prepare_pixels(image_part decoded, const preprocess_settings& settings, std::string_view path) {
    // Alpha goes first; three channels become one only when one is wanted.
    std::size_t channels = settings.channels == 1 || decoded.pixels.channels <= 2 ? 1 : 3;
    decoded.pixels = convert_channels(std::move(decoded.pixels), channels);
    image_size resized = settings.resize.output_size(decoded.full);
    image_size kept = settings.crop.value_or(resized);
    if (kept.width > resized.width || kept.height > resized.height)
        throw error_in(path, fmt::format("the image is {} after resizing, smaller than the {} crop",
                                         format_image_size(resized), format_image_size(kept)));
    return resize_and_crop(decoded, resized.width, resized.height, settings.filter, center_crop_box(resized, kept));
}

image prepare_pixels(image decoded, const preprocess_settings& settings, std::string_view path) {
    image_size size{decoded.width, decoded.height};
    return prepare_pixels(image_part{std::move(decoded), 0, 0, size}, settings, path);
}

pixel_box preprocess_region(image_size size, const preprocess_settings& settings) {
    image_size resized = settings.resize.output_size(size);
    image_size kept = settings.crop.value_or(resized);
    if (kept.width > resized.width || kept.height > resized.height) return {0, 0, size.width, size.height};
    return resize_region(size, resized.width, resized.height, settings.filter, center_crop_box(resized, kept));
}

void to_tensor(const image& pixels, const normalizer& normalize, image_tensor& tensor) {
    tensor.channels = normalize.channels();
    tensor.height = pixels.height;
    tensor.width = pixels.width;
    tensor.values.resize(tensor.channels * tensor.height * tensor.width);
    const std::size_t plane = tensor.height * tensor.width, step = pixels.channels;
    for (std::size_t c = 0; c < tensor.channels; ++c)
        normalize.apply(c, pixels.pixels.data() + (step == 1 ? 0 : c), step, plane, tensor.values.data() + c * plane);
}

image_tensor preprocess(image decoded, const preprocess_settings& settings, std::string_view path) {
    check_settings(settings);
    image pixels = prepare_pixels(std::move(decoded), settings, path);
    image_tensor tensor;
    to_tensor(pixels, normalizer(settings.channels, settings.mean, settings.std), tensor);
    return tensor;
}

}  // namespace lowrank
