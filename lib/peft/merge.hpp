// Merging adapters into a base model, as PEFT's merge_and_unload does, but tensor by tensor
// from mmapped files:
//
//     W ← W0 + Σ_i weight_i · s_i · B_i A_i          (Linear [out, in]; Conv2d reshaped)
//     W ← W0 + Σ_i weight_i · s_i · (B_i A_i)ᵀ       (Conv1D [in, out], embeddings [num, dim])
//     b ← b0 + Σ_i weight_i · s_i · lora_B.bias_i    (lora_bias)
//     W ← W0 + Σ_i weight_i · (T_i − W0)             (tensors trained in full: modules_to_save,
//                                                    biases, lora-train's full/top2/bitfit)
//
// with s = alpha/r (alpha/√r with rsLoRA) per module. --unmerge subtracts the LoRA terms.
// Computed in float32 and rounded once to the base tensor's dtype (F32, F16, BF16; round
// to nearest, ties to even); a replacement of weight 1 gives T exactly.
//
// Everything is checked before anything is written (plan_merge), and every mismatch is
// reported, by adapter and module or tensor.
#pragma once

#include "core/memory.hpp"
#include "formats/sharded.hpp"
#include "peft/adapter.hpp"
#include "peft/base_model.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct weighted_adapter {
    adapter source;
    double weight = 1;
};

// An ADAPTER operand: "PATH" or "PATH:WEIGHT" (split at the last colon when what follows
// is a number, so paths with colons still work). A usage_error for a weight that is not finite.
std::pair<std::string, double> parse_adapter_operand(std::string_view operand);

struct merge_options {
    bool unmerge = false;
    bool residual_base = false;  // accept adapters whose initialisation changed the base (PiSSA...)
};

// One term of a tensor's change.
struct merge_term {
    enum class kind { lora, lora_bias, replacement };
    kind what = kind::lora;
    std::size_t source = 0;                  // index of the adapter
    const lora_pair* pair = nullptr;         // lora, lora_bias
    const full_tensor* replacement = nullptr;
    float factor = 0;         // ±weight·scale for LoRA terms, weight for a replacement
    bool transposed = false;  // lora: add (B A)ᵀ
};

// A tensor of the output that differs from the base's.
struct tensor_change {
    std::string name;                     // its name in the output
    std::size_t file = 0;                 // which file of the checkpoint holds it
    const tensor_info* start = nullptr;   // W0: the base tensor, or the embedding an untied head starts from
    bool added = false;                   // not in the base (an LM head untied from the embedding)
    std::vector<merge_term> terms;
};

struct merge_plan {
    base_architecture architecture;
    // In output order: by file, then by position in the file; added tensors last.
    std::vector<tensor_change> changes;
    // The embedding an LM head was untied from (the head becomes "lm_head.weight").
    std::optional<std::string> untied_embedding;
    std::vector<std::string> warnings;
};

// Checks every adapter against the base and plans the change of every tensor. Throws one
// lowrank::error listing every mismatch ("N problems: ...; ...") when anything does not fit.
merge_plan plan_merge(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                      const merge_options& options);

// Computes changed tensors one at a time, reusing its buffers (the largest changed tensor
// sets the memory used: two float32 copies of it); products go through matmul().
class tensor_merger {
public:
    tensor_merger(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters)
        : base_(base), adapters_(adapters) {}

    // Fills base_values() with W0 and delta() with the sum of the terms.
    void compute(const tensor_change& change);
    std::span<const float> base_values() const { return {base_values_.data(), count_}; }
    std::span<const float> delta() const { return {delta_.data(), count_}; }
    // W0 + delta in `type`, rounded once to nearest even (T itself for one replacement of
    // weight 1); `bytes` holds count × element size.
    void encode(dtype type, std::span<std::byte> bytes) const;

private:
    void add_lora(const merge_term& term, bool first);
    void add_lora_bias(const merge_term& term);
    void add_replacement(const merge_term& term);
    // The tensor's elements as float32 in `target` (grown as needed).
    void load(const adapter& source, const tensor_info& tensor, large_vector<float>& target);

    const safetensors_checkpoint& base_;
    const std::vector<weighted_adapter>& adapters_;
    large_vector<float> base_values_, delta_, a_, b_;
    std::size_t count_ = 0;
    bool exact_replacement_ = false;  // the result is the replacement in a_, as it is
};

// The plan as --dry-run shows it: one row per changed tensor.
struct plan_row {
    std::string tensor, file, dtype, shape, update;  // update: "lora:1,replace:2,untied-from:wte.weight"...
    double base_norm = 0, delta_norm = 0, max_delta = 0;  // Frobenius norms of W0 and ΔW, max |ΔW|
};
std::vector<plan_row> describe_plan(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                                    const merge_plan& plan);

// ------------------------------------------------------------------------ writing

// Where a merge goes: for a single-file base a file (or "-", standard output), for a
// folder base a folder. Checks it before anything is computed: a folder target must not
// exist, be empty, or hold a checkpoint (model.safetensors or its shard index), which is then
// replaced as a whole; the target may not be the base or an adapter. Throws
// usage_error (a folder base to standard output) or lowrank::error.
void check_merge_output(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                        const std::string& path);

struct merge_output_options {
    std::string path;
    bool verify = false;  // read the output back before putting it in place
    bool quiet = false;   // no progress on stderr
};

// What --verify found: every tensor of the output read back, the unchanged ones compared
// byte for byte with the base, the changed ones with W0 + ΔW computed again in double
// precision (straight loops, not the BLAS product the merge used).
struct verification {
    std::size_t changed = 0, unchanged = 0;
    // The largest |W_out − (W0 + ΔW)| over the changed tensors, and where. The check itself
    // allows, per element, half a unit of the tensor's dtype (the rounding to nearest) plus
    // the float32 computation's own rounding errors (all there is for F32 tensors).
    double max_difference = 0;
    std::string worst_tensor;
};

// Writes the merged checkpoint: each output file keeps the base file's tensor order, names,
// dtypes and __metadata__ (its header is copied as it is unless a tensor is added); unchanged
// tensors are copied byte for byte by the kernel (copy_file_range), changed ones computed on
// a second thread while the first writes. A sharded base gives a folder with the same shard
// files and index, plus the base folder's other files (config.json, tokenizer files) copied;
// weights in other formats are left out. All files or none: the folder is renamed into place
// at the end (see output_folder). With verify, returns what the check found; a failed check
// throws and leaves nothing.
std::optional<verification> write_merged(const safetensors_checkpoint& base,
                                         const std::vector<weighted_adapter>& adapters, const merge_plan& plan,
                                         const merge_output_options& options);

}  // namespace lowrank
