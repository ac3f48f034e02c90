// PEFT's adapter_config.json for LoRA: every field PEFT writes that changes what the
// adapter means, the rules PEFT uses to match module names (target_modules,
// exclude_modules, layers_to_transform, rank_pattern, alpha_pattern), and the scale
// s = alpha / r (alpha / sqrt(r) with rsLoRA) that multiplies B A.
//
// Module names are dotted paths in the base Hugging Face model, as PEFT sees them:
// "transformer.h.0.attn.c_attn" (GPT2LMHeadModel), "text_model.encoder.layers.3.self_attn.q_proj"
// (CLIPModel). Patterns are regular expressions in Python's `re` dialect, run with PCRE2.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// A compiled regular expression (PCRE2), shared by copies of a config.
class module_regex {
public:
    // Throws lowrank::error naming `path` and `what` when the pattern does not compile.
    module_regex(const std::string& pattern, std::string_view path, std::string_view what);
    const std::string& pattern() const;
    // Python's re.fullmatch(pattern, text).
    bool full_match(std::string_view text) const;
    // Python's re.match(pattern, text): anchored at the start only. On a match, the text of
    // capture group `group` (empty when it did not take part) is returned.
    std::optional<std::string> match_start(std::string_view text, int group = 0) const;

private:
    struct compiled;
    std::shared_ptr<const compiled> compiled_;
};

// target_modules / exclude_modules: nothing, a list of names, a regular expression, or
// "all-linear".
struct module_selection {
    enum class kind { none, names, regex, all_linear };
    kind form = kind::none;
    std::vector<std::string> names;     // kind::names: equal, or a dotted suffix ("c_proj" hits "attn.c_proj")
    std::optional<module_regex> regex;  // kind::regex: the whole module name must match

    bool matches(std::string_view module) const;
};

// One rank_pattern or alpha_pattern entry: the key is a regular expression that must match
// a dotted suffix of the module name, i.e. the name fully matches (.*\.)?(KEY).
struct pattern_value {
    std::string key;
    module_regex suffix;
    double value = 0;
};

struct lora_config {
    std::string peft_type = "LORA";
    std::optional<std::string> task_type, base_model_name_or_path, revision;
    int r = 8;
    double lora_alpha = 8;
    std::vector<pattern_value> rank_pattern, alpha_pattern;  // in file order: the first match wins
    bool use_rslora = false;
    module_selection target_modules, exclude_modules;
    double lora_dropout = 0;
    bool fan_in_fan_out = false;   // base weights stored [in, out] (GPT-2's Conv1D)
    std::string bias = "none";     // "none", "all", "lora_only": which base biases were trained
    bool lora_bias = false;        // lora_B has a bias of its own
    std::vector<std::string> modules_to_save;  // modules trained in full and saved whole
    std::string init_lora_weights = "true";    // "true", "false", "gaussian", "pissa", "olora"...
    std::vector<long> layers_to_transform;     // empty: every layer
    std::vector<std::string> layers_pattern;
    bool use_dora = false;
    bool inference_mode = true;
    // Fields set to something other than their default that change the model in ways a
    // plain LoRA reader cannot follow (megatron_config, layer_replication, target_parameters...).
    std::vector<std::string> unsupported_fields;

    // Whether PEFT would wrap this module with LoRA (target_modules, exclude_modules,
    // modules_to_save, layers_to_transform / layers_pattern), as check_target_module_exists.
    // all-linear selects every module but an output head (lm_head).
    bool selects(std::string_view module) const;
    // Rank and alpha of a module: rank_pattern / alpha_pattern, else r / lora_alpha.
    int rank_for(std::string_view module) const;
    double alpha_for(std::string_view module) const;
    // alpha / r, or alpha / sqrt(r) with use_rslora.
    double scale_for(std::string_view module) const;
};

// Reads adapter_config.json. Unknown keys are ignored (PEFT's other fields, newer
// versions'); known ones with a wrong type, and a peft_type other than "LORA", are errors
// naming `path` and the key.
lora_config parse_adapter_config(std::string_view text, std::string_view path);
// adapter_config.json as PEFT writes it (sorted keys, two-space indent), with the fields
// every PEFT version since 0.9 reads; lora_bias and exclude_modules only when set.
std::string adapter_config_json(const lora_config& config);

// Initialisations that change the base weights when the adapter is created (PiSSA,
// OLoRA, LoftQ, CorDA, LoRA-GA, MiCA): such an adapter is relative to the changed base, not
// the original one. Unknown names count as changing it (nothing tells otherwise).
bool init_changes_base(std::string_view init_lora_weights);

// Why this adapter cannot be merged or applied as a plain LoRA (one reason per entry, empty
// when it can): DoRA, unsupported fields, a base-changing initialisation unless
// `residual_base` (the caller's base is the residual model that initialisation left).
std::vector<std::string> lora_config_refusals(const lora_config& config, bool residual_base);

}  // namespace lowrank
