// Adapters as files: a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors,
// from PEFT or lora-train), or a trained-tensor file (the tensors a non-LoRA method of
// lora-train trained, under the base model's names). Reading groups a PEFT adapter's
// tensors by module, with each module's rank and scale; writing makes both kinds.
//
// PEFT keys: "base_model.model." + MODULE + ".lora_A.weight" (A: [r, in], or [r, in, kh, kw]
// for Conv2d), ".lora_B.weight" (B: [out, r], or [out, r, 1, 1]), ".lora_B.bias" ([out], with
// lora_bias), ".lora_embedding_A" ([r, num]) and ".lora_embedding_B" ([dim, r]) for
// embeddings; any other key is a whole tensor trained in full (modules_to_save, biases with
// bias "all"/"lora_only"), "base_model.model." + the base tensor's name, where a
// ".base_layer" component stands for the wrapped module itself. A and B are in Linear
// orientation even for GPT-2's Conv1D, whose weight is [in, out].
//
// Trained-tensor files carry in __metadata__ "lowrank_method" (full, top2, bitfit, head apply as
// replacements; adapter-h, adapter-l, prefix-embed, prefix-layer add modules to the model).
// Both kinds may carry "lowrank_base_model_type", the base's config model_type (gpt2, vit,
// clip), so that a tool can refuse a base of another architecture.
#pragma once

#include "formats/safetensors.hpp"
#include "peft/adapter_config.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

inline constexpr std::string_view peft_key_prefix = "base_model.model.";
inline constexpr std::string_view method_metadata_key = "lowrank_method";
inline constexpr std::string_view base_model_type_metadata_key = "lowrank_base_model_type";

// One LoRA-adapted module: ΔW = scale · B A, B A of shape [delta_rows, delta_columns].
struct lora_pair {
    enum class layer { linear, embedding };
    std::string module;  // its path in the base model, "transformer.h.0.attn.c_attn"
    layer kind = layer::linear;
    const tensor_info* a = nullptr;
    const tensor_info* b = nullptr;
    const tensor_info* bias = nullptr;  // lora_B.bias, when the config has lora_bias
    std::uint64_t rank = 0;
    double scale = 0;  // alpha / r, or alpha / sqrt(r) with rsLoRA

    // B A is [B rows, product of A's dimensions after the first]: [out, in] for a Linear
    // ([out, in·kh·kw] for a Conv2d), [dim, num] for an embedding (whose weight is [num, dim]).
    std::uint64_t delta_rows() const { return b->shape[0]; }
    std::uint64_t delta_columns() const;
};

// A tensor that replaces the base tensor of the same name.
struct full_tensor {
    std::string name;  // the base model's name for it: "score.weight", "transformer.h.0.ln_1.bias"
    const tensor_info* tensor = nullptr;
};

class adapter {
public:
    enum class format { peft_lora, trained_tensors };

    // A PEFT folder, or a trained-tensor .safetensors file. Throws for what cannot be read
    // (missing files, malformed JSON or safetensors, peft_type other than LORA); what does
    // not fit together inside a readable adapter is listed by problems().
    explicit adapter(const std::string& path);

    const std::string& path() const { return path_; }
    format kind() const { return kind_; }
    // "lora" for a PEFT adapter, else the file's lowrank_method.
    const std::string& method() const { return method_; }
    // The PEFT config (the defaults for a trained-tensor file).
    const lora_config& config() const { return config_; }
    const std::vector<lora_pair>& lora() const { return lora_; }
    const std::vector<full_tensor>& full_tensors() const { return full_tensors_; }
    const safetensors_file& weights() const { return weights_; }
    const std::optional<std::string>& base_model_type() const { return base_model_type_; }

    // What does not fit inside the adapter, one entry per module or tensor, each naming it:
    // lora_A without lora_B, ranks that disagree (between A and B, or with the config's r
    // or rank_pattern), dtypes that are not floating point, DoRA vectors, unknown keys.
    const std::vector<std::string>& problems() const { return problems_; }
    // Things PEFT would do differently but that do not stop a merge (LoRA weights for a
    // module that target_modules does not select, a lora_B bias without lora_bias).
    const std::vector<std::string>& warnings() const { return warnings_; }

    // A tensor's elements as float32. The file is mapped lazily (adapters can be large):
    // weights().release(tensor) gives a tensor's pages back once it is read.
    std::vector<float> to_float(const tensor_info& tensor) const { return weights_.to_float(tensor); }
    // Where a tensor's values are not finite: "tensor 'x' holds NaN at element 7", or nothing.
    static std::optional<std::string> non_finite(const tensor_info& tensor, const std::vector<float>& values);

private:
    void read_peft_tensors();
    void check_pair(lora_pair& pair);
    void read_trained_tensors();

    std::string path_;
    format kind_ = format::peft_lora;
    std::string method_ = "lora";
    lora_config config_;
    safetensors_file weights_;
    std::vector<lora_pair> lora_;
    std::vector<full_tensor> full_tensors_;
    std::optional<std::string> base_model_type_;
    std::vector<std::string> problems_, warnings_;
};

// Whether a lowrank_method's trained tensors replace base tensors (full, top2, bitfit, head), and
// whether it adds modules that no merge can express (adapter-h, adapter-l, prefix-embed,
// prefix-layer).
bool method_replaces_tensors(std::string_view method);
bool method_adds_modules(std::string_view method);

// ------------------------------------------------------------------------ writing

// The PEFT key of a LoRA tensor: peft_key("transformer.h.0.attn.c_attn", "lora_A.weight").
std::string peft_key(std::string_view module, std::string_view suffix);

// Writes a PEFT adapter folder, atomically (a folder holding an adapter is replaced as a
// whole; any other existing non-empty folder is refused): adapter_config.json and
// adapter_model.safetensors with tensors named by peft_key, __metadata__ {"format": "pt"}
// and lowrank_base_model_type when given.
void save_peft_adapter(const std::string& folder, const lora_config& config, const std::vector<tensor_data>& tensors,
                       const std::optional<std::string>& base_model_type);

// Writes a trained-tensor file (atomically): the tensors under the base model's names,
// __metadata__ {"format": "pt", "lowrank_method": METHOD} and lowrank_base_model_type.
void save_trained_tensors(const std::string& path, std::string_view method, const std::vector<tensor_data>& tensors,
                          const std::optional<std::string>& base_model_type);

}  // namespace lowrank
