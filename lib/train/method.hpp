// Training methods as choices of which parameters exist and train (the LoRA paper's
// baselines and LoRA itself), and what a training run writes:
//   lora          branches B·A on the chosen linear layers (nn/lora.hpp)
//   full          every parameter
//   top2          the last two blocks of each transformer stack (FT^Top2)
//   bitfit        the biases, LayerNorms' included (Zaken et al. 2021)
//   adapter-h     Houlsby's adapters after the attention and after the MLP (nn/adapter.hpp)
//   adapter-l     Lin's adapter after the MLP, with its LayerNorm
//   prefix-embed  trained vectors in place of l_p + l_i token embeddings (gpt2)
//   prefix-layer  trained vectors in place of those rows' input to every block (gpt2)
// The task's head always trains with them: the classification head of classify and
// regress, CLIP's logit scale under the InfoNCE loss.
//
// Outputs: a PEFT LoRA adapter folder for lora (the head in modules_to_save); for the others
// a safetensors file of the trained tensors under the base model's names, with the method
// in its metadata (lowrank_method), which lora-merge (full, top2, bitfit, head) and lora-predict
// (all) apply.
#pragma once

#include "nn/lora.hpp"
#include "nn/model.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

enum class method_kind { lora, full, top2, bitfit, head, adapter_h, adapter_l, prefix_embed, prefix_layer };
std::optional<method_kind> method_from_name(std::string_view name);
std::string_view method_name(method_kind kind);

enum class task_kind { lm, lm_pairs, classify, regress, clip };
std::optional<task_kind> task_from_name(std::string_view name);  // "lm", "lm-pairs"...
std::string_view task_name(task_kind kind);

struct method_settings {
    method_kind kind = method_kind::lora;
    lora_settings lora;                         // rank, alpha, rsLoRA, dropout
    std::vector<std::string> targets{"q", "v"};  // see apply_method
    // Targets of another rank than lora.rank (PEFT's rank_pattern): their scale is alpha over
    // their own rank. Fused slices (q, k, v of c_attn) must share one.
    std::vector<std::pair<std::string, std::size_t>> rank_pattern;
    lora_init init = lora_init::kaiming;
    std::size_t adapter_size = 8;
    std::size_t prefix_length = 10, infix_length = 0;
};

// The transformer stacks of a model: gpt2's; the vit tower's; clip's text and vision towers'.
std::vector<transformer_stack*> model_stacks(model& target);

// Before allocation: adds the method's parameters (LoRA branches, adapters, prefix vectors)
// and marks what trains: the method's parameters, and the head (classification: gpt2's
// score, vit's classifier; train_logit_scale: clip's logit_scale). LoRA targets are q, k,
// v, o, fc1, fc2 (the q/k/v thirds of GPT-2's fused c_attn, as loralib's MergedLinear),
// or a layer's Hugging Face name (c_attn whole, attn.c_proj, c_fc, mlp.c_proj; q_proj,
// k_proj, v_proj, out_proj, fc1, fc2), or the token embedding (gpt2's wte, clip's
// token_embedding: PEFT's LoRA on an embedding). A usage_error for what cannot be: unknown targets,
// prefix tuning on another architecture than gpt2, a method that trains nothing.
void apply_method(model& target, const method_settings& settings, bool train_logit_scale);

// After allocation and loading the base: gives the parameters the method added their
// first values (each from its own stream of `seed`): LoRA A by settings.init, B = 0 (on an
// embedding, as PEFT: A = 0, B ~ N(0, 1));
// adapters as initialize_adapter; prefix vectors the token embeddings of random tokens.
void initialize_method(model& target, const method_settings& settings, std::uint64_t seed);

// The parameters the method added (not in the base checkpoint).
bool added_by_method(const parameter& p);

// "trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364", as PEFT's
// print_trainable_parameters.
std::string trainable_parameters_line(const parameter_set& parameters);

struct output_description {
    std::string base_model_path;  // for base_model_name_or_path
    task_kind task = task_kind::lm;
};

// Writes the trained parameters as the method's output: a PEFT folder for lora, a
// trained-tensor file for the others (atomically, either way).
void save_method_output(const std::string& path, model& target, const method_settings& settings,
                        const output_description& description);

}  // namespace lowrank
