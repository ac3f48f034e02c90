// LoRA branches on the linear layers of a transformer (Hu et al. 2021):
//   h = W0 x + s · B A x,  A: (r, in), B: (width, r), s = α/r (α/√r with rsLoRA)
// and on a token embedding, as PEFT puts them there: y = W[ids] + s · Aᵀ[ids] Bᵀ.
// Adding a branch declares its two parameters beside the model's; which of them train is
// the caller's choice, like any other parameter.
#pragma once

#include "nn/transformer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct lora_settings {
    std::size_t rank = 8;
    float alpha = 8;
    bool rslora = false;  // s = α/√r
    float dropout = 0;

    float scale() const;
};

// A place for a branch: a linear layer and the output columns it adds to. GPT-2's fused
// c_attn offers its q, k and v thirds as slices (loralib's MergedLinear). `tag` tells
// branches of one layer apart in the parameter names: the slice ("q"), an adapter's name.
struct lora_target {
    linear* layer = nullptr;
    std::size_t column = 0, width = 0;
    std::string tag;

    // The module's Hugging Face name: its weight's name without ".weight".
    std::string module() const;
};

// The places `target` names in a block: q, k, v (slices of a fused projection, or the
// separate projections), o (attention output), fc1, fc2 (the MLP's two layers).
// Nothing for another name.
std::optional<lora_target> find_lora_target(transformer_block& block, std::string_view target);

// Adds a branch at `target`: declares <module>.lora_A[.<tag>].weight (r, in) and
// <module>.lora_B[.<tag>].weight (width, r).
lora_branch& add_lora(parameter_set& parameters, const lora_target& target, const lora_settings& settings);

// Adds a branch on a token embedding (table: (entries, C)): declares
// <module>.lora_embedding_A[.<tag>] (r, entries) and <module>.lora_embedding_B[.<tag>] (C, r),
// PEFT's names. Dropout does not apply to it.
lora_branch& add_embedding_lora(parameter_set& parameters, embedding& layer, const lora_settings& settings,
                                const std::string& tag = "");

enum class lora_init {
    gaussian,  // A ~ N(0, 1/r²) (PEFT's "gaussian"), B = 0
    kaiming,   // A ~ U(−1/√in, 1/√in) (PEFT's and loralib's default), B = 0
};

void initialize_lora(lora_branch& branch, lora_init init, std::uint64_t seed, std::uint64_t stream);
// PEFT's start for an embedding's branch: A = 0, B ~ N(0, 1) (still B A = 0).
void initialize_embedding_lora(lora_branch& branch, std::uint64_t seed, std::uint64_t stream);

}  // namespace lowrank
