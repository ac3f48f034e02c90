// Bottleneck adapters, the methods the LoRA paper compares with as Adapter^H and Adapter^L:
//   Houlsby et al. 2019: one after the attention's output projection and one after the MLP;
//   Lin et al. 2020: one after the MLP only, with a trainable LayerNorm of its own.
// An adapter sits on a sub-layer's output h before h joins the residual stream:
//   adapter(h) = h + up(relu(down(LN(h))))        (LN for Lin's only)
// down: (r, C) + bias (r), up: (C, r) + bias (C), in nn.Linear layout; r the adapter size.
// With up = 0 (its initialisation) an adapter is the identity, as LoRA's B = 0 makes ΔW = 0.
// Per adapter |Θ| = 2·C·r + r + C, and 2·C more with the LayerNorm: the LoRA paper's
// |Θ| = L_adpt·(2·d_model·r + r + d_model) + 2·L_LN·d_model.
#pragma once

#include "nn/layers.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>

namespace lowrank {

struct bottleneck_adapter {
    std::optional<layer_norm> norm;  // Lin's
    linear down, up;

    std::size_t size() const { return down.out; }
};

// What a forward pass keeps for the backward pass: LN's output and statistics (rows, C),
// (rows), (rows) when there is a LayerNorm; relu(down(·)): (rows, r).
struct adapter_activations {
    float* normed = nullptr;
    float *mean = nullptr, *rstd = nullptr;
    float* hidden = nullptr;
};

// h: (rows, C) -> y (rows, C) += adapter(h).
void adapter_forward(const bottleneck_adapter& adapter, const float* h, std::size_t rows, float* y,
                     const adapter_activations& kept);
// dy: (rows, C), the gradient of adapter(h) -> dh: (rows, C), written; parameter gradients
// added. scratch: (rows, r) and, with a LayerNorm, (rows, C) more.
void adapter_backward(const bottleneck_adapter& adapter, const float* h, std::size_t rows, const float* dy,
                      float* dh, const adapter_activations& kept, float* scratch);

// How big adapter_backward's scratch must be.
std::size_t adapter_scratch_size(const bottleneck_adapter& adapter, std::size_t rows);

// Declares an adapter's parameters under `module` ("transformer.h.0.attn" gives
// "transformer.h.0.attn.adapter.down.weight"...): weights with weight decay, biases and the
// LayerNorm without.
bottleneck_adapter declare_adapter(parameter_set& parameters, const std::string& module, std::size_t width,
                                   std::size_t size, bool with_norm, float epsilon);

// down ~ N(0, 0.01²) (Houlsby's near-identity initialisation), up and the biases 0, the
// LayerNorm 1 and 0; each weight from its own stream of `seed`.
void initialize_adapter(bottleneck_adapter& adapter, std::uint64_t seed, std::uint64_t stream);

}  // namespace lowrank
