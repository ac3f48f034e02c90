// Preprocessing as the image processors of Hugging Face (CLIPImageProcessor and friends)
// do it on PIL images: convert to RGB (or gray), resize, center-crop, scale to [0, 1],
// normalise per channel, and lay the result out as a (C, H, W) float32 tensor.
#pragma once

#include "image/image.hpp"
#include "image/resize.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// "WxH" (or "N" for a square N×N); a usage_error naming `option` otherwise.
image_size parse_image_size(std::string_view text, std::string_view option);
std::string format_image_size(image_size size);

// How an image is resized before it is cropped.
struct resize_rule {
    enum class mode { none, shorter_side, exact };
    mode kind = mode::none;
    std::size_t shorter_side = 0;  // mode::shorter_side
    image_size size;               // mode::exact

    // The size an image of size `input` is resized to. Shorter side N: that side becomes N,
    // the other int(N · long / short), truncated, as Hugging Face's
    // get_resize_output_image_size computes it.
    image_size output_size(image_size input) const;
};

// "none", "N" (the shorter side becomes N) or "WxH" (exactly that size).
resize_rule parse_resize_rule(std::string_view text);
std::string format_resize_rule(const resize_rule& rule);

// "none" or a size: the center crop.
std::optional<image_size> parse_crop(std::string_view text);

// Comma-separated numbers, for --mean and --std.
std::vector<float> parse_float_list(std::string_view text, std::string_view option);

struct preprocess_settings {
    resize_rule resize;
    resize_filter filter = resize_filter::bicubic;
    std::optional<image_size> crop;  // none: keep the whole resized image
    std::size_t channels = 3;        // 1 (gray) or 3 (RGB)
    std::vector<float> mean, std;    // one value per channel, or one for all channels
};

// The size of every image after preprocessing, when the settings fix it: the crop, or else
// an exact resize.
std::optional<image_size> fixed_output_size(const preprocess_settings& settings);

// The presets: "clip" (CLIPImageProcessor: shorter side 224, bicubic, center crop 224,
// OpenAI's mean and std), "imagenet" (torchvision's classic evaluation transform: shorter
// side 256, bilinear, center crop 224, ImageNet mean and std), "vit" (ViTImageProcessor:
// 224×224 bilinear, mean = std = 0.5) and "none" (no resize, no crop, scale to [0, 1]).
// A usage_error for any other name.
preprocess_settings preset_settings(std::string_view name);
// The names, for messages and --help.
std::string_view preset_names();

// Checks settings a user put together: channels 1 or 3, one mean and std per channel (or
// one for all), positive std; usage_error otherwise.
void check_settings(const preprocess_settings& settings);

// Hugging Face's center crop of `image` to `crop`: top = ⌊(H − h)/2⌋, left = ⌊(W − w)/2⌋.
pixel_box center_crop_box(image_size image, image_size crop);

// Scaling and normalising 8-bit samples: value(c, u) = (u / 255 − mean[c]) / std[c], each
// operation in float32 as NumPy does it on a float32 array (IEEE division, no reordering),
// so the results are NumPy's to the bit.
class normalizer {
public:
    normalizer(std::size_t channels, const std::vector<float>& mean, const std::vector<float>& std);
    std::size_t channels() const { return mean_.size(); }
    // out[i] = value(channel, in[i · step]) for `count` samples `step` apart (the channels
    // of interleaved pixels).
    void apply(std::size_t channel, const std::uint8_t* in, std::size_t step, std::size_t count, float* out) const {
        const float* table = tables_[channel].data();
        for (std::size_t i = 0; i < count; ++i) out[i] = table[in[i * step]];
    }
    // The inverse, for pictures of patches: the 8-bit sample nearest to a normalised value.
    std::uint8_t to_sample(std::size_t channel, float value) const;

private:
    std::vector<float> mean_, std_;
    std::vector<std::array<float, 256>> tables_;  // the 256 values of each channel
};

// A (C, H, W) float32 tensor.
struct image_tensor {
    std::size_t channels = 0, height = 0, width = 0;
    std::vector<float> values;
};

// The 8-bit pixels the model sees, before scaling: alpha dropped, converted to the
// settings' channels, resized and cropped. A gray image stays gray even when three channels
// are wanted (to_tensor copies it to each), which resizes it three times faster with the
// same result. An error naming `path` when the image is smaller than the crop.
image prepare_pixels(image decoded, const preprocess_settings& settings, std::string_view path);
// The same from a part of the image that holds preprocess_region()'s pixels.
image prepare_pixels(image_part decoded, const preprocess_settings& settings, std::string_view path);

// The pixels of an image of size `size` that preprocessing reads: for decode_options::region.
pixel_box preprocess_region(image_size size, const preprocess_settings& settings);

// Pixels (1 or 3 channels) to a (C, H, W) tensor through the normaliser; a gray image
// feeds every channel.
void to_tensor(const image& pixels, const normalizer& normalize, image_tensor& tensor);

// prepare_pixels then to_tensor.
image_tensor preprocess(image decoded, const preprocess_settings& settings, std::string_view path = "");

}  // namespace lowrank
