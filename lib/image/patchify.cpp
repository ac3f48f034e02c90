#include "image/patchify.hpp"

#include <cstring>
#include <stdexcept>

namespace lowrank {
namespace {

void check_shape(const patch_shape& shape) {
    if (shape.patch == 0 || shape.height % shape.patch != 0 || shape.width % shape.patch != 0)
        throw std::invalid_argument("patchify: the image sides must be multiples of the patch size");
}

// Calls copy(channel, row, column, patch_offset, length) for every run of samples that is
// contiguous in both the tensor (along a row of one channel) and the patches. In conv order
// a run is one patch row of one channel (P samples); in pixels order it is one sample.
template <class Copy>
void for_each_run(const patch_shape& shape, patch_layout layout, Copy copy) {
    const std::size_t P = shape.patch, C = shape.channels;
    std::size_t patch_offset = 0;
    for (std::size_t i = 0; i < shape.grid_rows(); ++i)
        for (std::size_t j = 0; j < shape.grid_columns(); ++j) {
            if (layout == patch_layout::conv) {
                for (std::size_t c = 0; c < C; ++c)
                    for (std::size_t u = 0; u < P; ++u, patch_offset += P) copy(c, i * P + u, j * P, patch_offset, P);
            } else {
                for (std::size_t u = 0; u < P; ++u)
                    for (std::size_t v = 0; v < P; ++v)
                        for (std::size_t c = 0; c < C; ++c, ++patch_offset)
                            copy(c, i * P + u, j * P + v, patch_offset, 1);
            }
        }
}

}  // namespace

std::optional<patch_layout> patch_layout_from_name(std::string_view name) {
    if (name == "conv") return patch_layout::conv;
    if (name == "pixels") return patch_layout::pixels;
    return std::nullopt;
}

void patchify(const float* tensor, const patch_shape& shape, patch_layout layout, float* patches) {
    check_shape(shape);
    const std::size_t plane = shape.height * shape.width;
    for_each_run(shape, layout, [&](std::size_t c, std::size_t y, std::size_t x, std::size_t to, std::size_t length) {
        std::memcpy(patches + to, tensor + c * plane + y * shape.width + x, length * sizeof(float));
    });
}

std::vector<float> patchify(const image_tensor& tensor, std::size_t patch, patch_layout layout) {
    patch_shape shape{tensor.channels, tensor.height, tensor.width, patch};
    check_shape(shape);
    std::vector<float> patches(shape.elements());
    patchify(tensor.values.data(), shape, layout, patches.data());
    return patches;
}

void patchify_pixels(const image& pixels, const normalizer& normalize, const patch_shape& shape, patch_layout layout,
                     float* patches) {
    check_shape(shape);
    if (pixels.width != shape.width || pixels.height != shape.height || shape.channels != normalize.channels() ||
        (pixels.channels != 1 && pixels.channels != shape.channels))
        throw std::invalid_argument("patchify_pixels: the pixels do not match the shape");
    const std::size_t step = pixels.channels;  // a gray image feeds every channel
    for_each_run(shape, layout, [&](std::size_t c, std::size_t y, std::size_t x, std::size_t to, std::size_t length) {
        normalize.apply(c, pixels.row(y) + x * step + (step == 1 ? 0 : c), step, length, patches + to);
    });
}

void unpatchify(const float* patches, const patch_shape& shape, patch_layout layout, float* tensor) {
    check_shape(shape);
    const std::size_t plane = shape.height * shape.width;
    for_each_run(shape, layout, [&](std::size_t c, std::size_t y, std::size_t x, std::size_t from, std::size_t length) {
        std::memcpy(tensor + c * plane + y * shape.width + x, patches + from, length * sizeof(float));
    });
}

}  // namespace lowrank
