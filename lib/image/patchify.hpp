// Cutting a (C, H, W) image tensor into the patch sequence of a ViT (Dosovitskiy et al.):
// N = HW/P² patches of P×P pixels, each flattened to C·P·P numbers.
//
// Patch n = i·(W/P) + j, row-major over the grid, covers rows i·P .. i·P+P−1 and columns
// j·P .. j·P+P−1. Flattening:
//   conv   (C, P, P): vec[c·P² + u·P + v] = x[c, i·P+u, j·P+v], the order of a Conv2d
//          weight (D, C, P, P), so that patches · W.reshape(D, C·P·P)ᵀ equals the
//          stride-P convolution of Hugging Face's ViT and CLIP patch embeddings;
//   pixels (P, P, C): vec[(u·P + v)·C + c] = x[c, i·P+u, j·P+v], the "(p1 p2 c)" order of
//          einops-style ViT code.
#pragma once

#include "image/preprocess.hpp"

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace lowrank {

enum class patch_layout { conv, pixels };

std::optional<patch_layout> patch_layout_from_name(std::string_view name);

// The shape of the patches of a C×H×W tensor: (H/P · W/P, C·P·P).
struct patch_shape {
    std::size_t channels = 0, height = 0, width = 0, patch = 0;

    std::size_t grid_rows() const { return height / patch; }
    std::size_t grid_columns() const { return width / patch; }
    std::size_t count() const { return grid_rows() * grid_columns(); }
    std::size_t size() const { return channels * patch * patch; }
    std::size_t elements() const { return count() * size(); }
};

// x (C, H, W) -> patches (N, C·P·P) in `layout`; H and W must be multiples of P.
void patchify(const float* tensor, const patch_shape& shape, patch_layout layout, float* patches);
std::vector<float> patchify(const image_tensor& tensor, std::size_t patch, patch_layout layout);

// 8-bit pixels (prepare_pixels) straight to patches through the normaliser: to_tensor then
// patchify, without the tensor in between. `shape` gives the tensor's channels.
void patchify_pixels(const image& pixels, const normalizer& normalize, const patch_shape& shape, patch_layout layout,
                     float* patches);

// The inverse: patches (N, C·P·P) -> x (C, H, W).
void unpatchify(const float* patches, const patch_shape& shape, patch_layout layout, float* tensor);

}  // namespace lowrank
