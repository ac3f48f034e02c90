#include "peft/adapter_config.hpp"

#include "core/error.hpp"
#include "formats/json.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fmt/format.h>

namespace lowrank {

// ------------------------------------------------------------------------ regular expressions

struct module_regex::compiled {
    std::string pattern;
    pcre2_code* code = nullptr;
    ~compiled() { pcre2_code_free(code); }
};

module_regex::module_regex(const std::string& pattern, std::string_view path, std::string_view what) {
    auto result = std::make_shared<compiled>();
    result->pattern = pattern;
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    result->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                                 &error_code, &error_offset, nullptr);
    if (!result->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error_code, message, sizeof message);
        throw error_in(path, fmt::format("{} '{}' is not a valid regular expression: {} at offset {}", what, pattern,
                                         reinterpret_cast<const char*>(message), error_offset));
    }
    compiled_ = std::move(result);
}

const std::string& module_regex::pattern() const { return compiled_->pattern; }

namespace {

// Runs the expression on `text` with `options`; the match data, or null for no match.
std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> run_regex(pcre2_code* code, std::string_view text,
                                                                              std::uint32_t options) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
        pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
    int result = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, options, data.get(),
                             nullptr);
    if (result < 0) data.reset();
    return data;
}

}  // namespace

bool module_regex::full_match(std::string_view text) const {
    return run_regex(compiled_->code, text, PCRE2_ANCHORED | PCRE2_ENDANCHORED) != nullptr;
}

std::optional<std::string> module_regex::match_start(std::string_view text, int group) const {
    auto data = run_regex(compiled_->code, text, PCRE2_ANCHORED);
    if (!data) return std::nullopt;
    if (static_cast<std::uint32_t>(group) >= pcre2_get_ovector_count(data.get())) return std::string();
    PCRE2_SIZE* vector = pcre2_get_ovector_pointer(data.get());
    if (vector[2 * group] == PCRE2_UNSET) return std::string();
    return std::string(text.substr(vector[2 * group], vector[2 * group + 1] - vector[2 * group]));
}

// ------------------------------------------------------------------------ module matching

namespace {

bool equals_or_dotted_suffix(std::string_view module, std::string_view name) {
    return module == name ||
           (module.size() > name.size() && module.ends_with(name) && module[module.size() - name.size() - 1] == '.');
}

// The layer number in a module name, as PEFT finds it for layers_to_transform: the number
// after the last "<pattern>." (any component when no pattern is given) followed by a dot.
std::optional<long> layer_index(std::string_view module, const std::vector<std::string>& layers_pattern) {
    std::vector<std::string> expressions;
    if (layers_pattern.empty()) expressions.emplace_back(R"(.*\.[^.]*\.(\d+)\.)");
    for (const auto& pattern : layers_pattern) expressions.push_back(".*\\." + pattern + "\\.(\\d+)\\.");
    for (const auto& expression : expressions) {
        module_regex regex(expression, "adapter_config.json", "layers_pattern");
        if (auto number = regex.match_start(module, 1)) return std::stol(*number);
    }
    return std::nullopt;
}

}  // namespace

bool module_selection::matches(std::string_view module) const {
    switch (form) {
    case kind::none: return false;
    case kind::regex: return regex->full_match(module);
    case kind::all_linear: return true;
    case kind::names:
        return std::any_of(names.begin(), names.end(),
                           [&](const std::string& name) { return equals_or_dotted_suffix(module, name); });
    }
    return false;
}

bool lora_config::selects(std::string_view module) const {
    if (exclude_modules.matches(module)) return false;
    for (const auto& saved : modules_to_save) {
        module_regex whole_module("(^|.*\\.)" + saved + "($|\\..*)", "adapter_config.json", "modules_to_save entry");
        if (whole_module.match_start(module)) return false;
    }
    switch (target_modules.form) {
    case module_selection::kind::none: return false;
    case module_selection::kind::regex: return target_modules.regex->full_match(module);
    case module_selection::kind::all_linear: return !equals_or_dotted_suffix(module, "lm_head");
    case module_selection::kind::names: break;
    }
    const auto& names = target_modules.names;
    if (std::find(names.begin(), names.end(), module) != names.end()) return true;  // named in full
    if (!target_modules.matches(module)) return false;
    if (layers_to_transform.empty()) return true;
    auto layer = layer_index(module, layers_pattern);
    return layer && std::find(layers_to_transform.begin(), layers_to_transform.end(), *layer) !=
                        layers_to_transform.end();
}

namespace {

const pattern_value* first_match(const std::vector<pattern_value>& patterns, std::string_view module) {
    for (const auto& pattern : patterns)
        if (pattern.suffix.full_match(module)) return &pattern;
    return nullptr;
}

}  // namespace

int lora_config::rank_for(std::string_view module) const {
    const pattern_value* found = first_match(rank_pattern, module);
    return found ? static_cast<int>(found->value) : r;
}

double lora_config::alpha_for(std::string_view module) const {
    const pattern_value* found = first_match(alpha_pattern, module);
    return found ? found->value : lora_alpha;
}

double lora_config::scale_for(std::string_view module) const {
    double rank = rank_for(module);
    return use_rslora ? alpha_for(module) / std::sqrt(rank) : alpha_for(module) / rank;
}

// ------------------------------------------------------------------------ reading

namespace {

// Reads the fields of one adapter_config.json, with errors that name the file and the key.
class config_reader {
public:
    config_reader(const ordered_json& document, std::string_view path) : document_(document), path_(path) {}

    error fail(std::string_view key, std::string_view what) const {
        return error_in(path_, fmt::format("'{}' {}", key, what));
    }
    const ordered_json* get(std::string_view key) const {
        auto found = document_.find(std::string(key));
        return found == document_.end() || found->is_null() ? nullptr : &*found;
    }
    void read(std::string_view key, bool& target) const {
        if (const auto* value = get(key)) {
            if (!value->is_boolean()) throw fail(key, "is not true or false");
            target = value->get<bool>();
        }
    }
    void read(std::string_view key, double& target) const {
        if (const auto* value = get(key)) {
            if (!value->is_number() || !std::isfinite(value->get<double>())) throw fail(key, "is not a number");
            target = value->get<double>();
        }
    }
    void read(std::string_view key, std::string& target) const {
        if (const auto* value = get(key)) {
            if (!value->is_string()) throw fail(key, "is not a string");
            target = value->get<std::string>();
        }
    }
    void read(std::string_view key, std::optional<std::string>& target) const {
        if (get(key)) read(key, target.emplace());
    }
    int positive_integer(std::string_view key, const ordered_json& value) const {
        if (!value.is_number_integer() || value.get<long long>() < 1 || value.get<long long>() > 1'000'000'000)
            throw fail(key, "is not a positive integer");
        return static_cast<int>(value.get<long long>());
    }
    std::vector<std::string> strings(std::string_view key) const;
    module_selection selection(std::string_view key) const;
    std::vector<pattern_value> patterns(std::string_view key, bool integers) const;
    std::vector<long> layers(std::string_view key) const;
    std::string init_method() const;
    std::vector<std::string> unsupported_fields() const;

private:
    const ordered_json& document_;
    std::string_view path_;
};

std::vector<std::string> config_reader::strings(std::string_view key) const {
    std::vector<std::string> result;
    const auto* value = get(key);
    if (!value) return result;
    if (value->is_string()) return {value->get<std::string>()};
    if (!value->is_array()) throw fail(key, "is not a list of names");
    for (const auto& item : *value) {
        if (!item.is_string()) throw fail(key, "holds something other than names");
        result.push_back(item.get<std::string>());
    }
    return result;
}

module_selection config_reader::selection(std::string_view key) const {
    module_selection result;
    const auto* value = get(key);
    if (!value) return result;
    if (value->is_string()) {
        std::string text = value->get<std::string>();
        std::string lower = text;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (lower == "all-linear") {
            result.form = module_selection::kind::all_linear;
        } else {
            result.form = module_selection::kind::regex;
            result.regex.emplace(text, path_, fmt::format("'{}'", key));
        }
        return result;
    }
    result.form = module_selection::kind::names;
    result.names = strings(key);
    return result;
}

std::vector<pattern_value> config_reader::patterns(std::string_view key, bool integers) const {
    std::vector<pattern_value> result;
    const auto* value = get(key);
    if (!value) return result;
    if (!value->is_object()) throw fail(key, "is not an object");
    for (const auto& [pattern, number] : value->items()) {
        double amount = 0;
        if (integers) {
            amount = positive_integer(fmt::format("{}' entry '{}", key, pattern), number);
        } else {
            if (!number.is_number()) throw fail(fmt::format("{}' entry '{}", key, pattern), "is not a number");
            amount = number.get<double>();
        }
        result.push_back({pattern, module_regex("(.*\\.)?(" + pattern + ")", path_, fmt::format("'{}' key", key)),
                          amount});
    }
    return result;
}

std::vector<long> config_reader::layers(std::string_view key) const {
    std::vector<long> result;
    const auto* value = get(key);
    if (!value) return result;
    auto add = [&](const ordered_json& item) {
        if (!item.is_number_integer() || item.get<long long>() < 0) throw fail(key, "is not a layer number or a list of them");
        result.push_back(static_cast<long>(item.get<long long>()));
    };
    if (value->is_array()) {
        for (const auto& item : *value) add(item);
    } else {
        add(*value);
    }
    return result;
}

std::string config_reader::init_method() const {
    const auto* value = get("init_lora_weights");
    if (!value) return "true";
    if (value->is_boolean()) return value->get<bool>() ? "true" : "false";
    if (!value->is_string()) throw fail("init_lora_weights", "is not true, false or a method name");
    return value->get<std::string>();
}

// A field counts as set when it is not null, false, an empty list or an empty object.
std::vector<std::string> config_reader::unsupported_fields() const {
    static const char* const fields[] = {
        "megatron_config", "loftq_config", "layer_replication", "trainable_token_indices",
        "target_parameters", "use_qalora", "arrow_config", "alora_invocation_tokens",
    };
    std::vector<std::string> result;
    for (const char* field : fields) {
        const auto* value = get(field);
        if (!value || (value->is_boolean() && !value->get<bool>()) || ((value->is_array() || value->is_object()) && value->empty()))
            continue;
        result.emplace_back(field);
    }
    return result;
}

}  // namespace

lora_config parse_adapter_config(std::string_view text, std::string_view path) {
    ordered_json document = parse_json_strict(text, path, "adapter_config.json");
    if (!document.is_object()) throw error_in(path, "adapter_config.json is not a JSON object");
    config_reader reader(document, path);
    lora_config config;
    if (!reader.get("peft_type")) throw error_in(path, "no 'peft_type'");
    reader.read("peft_type", config.peft_type);
    if (config.peft_type != "LORA")
        throw error_in(path, fmt::format("peft_type is '{}': only LoRA adapters (\"LORA\") are supported", config.peft_type));
    reader.read("task_type", config.task_type);
    reader.read("base_model_name_or_path", config.base_model_name_or_path);
    reader.read("revision", config.revision);
    if (const auto* r = reader.get("r")) config.r = reader.positive_integer("r", *r);
    reader.read("lora_alpha", config.lora_alpha);
    config.rank_pattern = reader.patterns("rank_pattern", true);
    config.alpha_pattern = reader.patterns("alpha_pattern", false);
    reader.read("use_rslora", config.use_rslora);
    config.target_modules = reader.selection("target_modules");
    config.exclude_modules = reader.selection("exclude_modules");
    reader.read("lora_dropout", config.lora_dropout);
    reader.read("fan_in_fan_out", config.fan_in_fan_out);
    reader.read("bias", config.bias);
    if (config.bias != "none" && config.bias != "all" && config.bias != "lora_only")
        throw reader.fail("bias", "is not \"none\", \"all\" or \"lora_only\"");
    reader.read("lora_bias", config.lora_bias);
    config.modules_to_save = reader.strings("modules_to_save");
    config.init_lora_weights = reader.init_method();
    config.layers_to_transform = reader.layers("layers_to_transform");
    config.layers_pattern = reader.strings("layers_pattern");
    reader.read("use_dora", config.use_dora);
    reader.read("inference_mode", config.inference_mode);
    config.unsupported_fields = reader.unsupported_fields();
    return config;
}

// ------------------------------------------------------------------------ writing

std::string adapter_config_json(const lora_config& config) {
    auto optional_text = [](const std::optional<std::string>& text) {
        return text ? nlohmann::json(*text) : nlohmann::json(nullptr);
    };
    auto number = [](double value) {
        return value == std::floor(value) && std::fabs(value) < 1e15 ? nlohmann::json(static_cast<long long>(value))
                                                                      : nlohmann::json(value);
    };
    auto selection = [](const module_selection& modules) {
        switch (modules.form) {
        case module_selection::kind::none: return nlohmann::json(nullptr);
        case module_selection::kind::regex: return nlohmann::json(modules.regex->pattern());
        case module_selection::kind::all_linear: return nlohmann::json("all-linear");
        case module_selection::kind::names: break;
        }
        return nlohmann::json(modules.names);
    };
    auto patterns = [&](const std::vector<pattern_value>& entries) {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& entry : entries) object[entry.key] = number(entry.value);
        return object;
    };
    nlohmann::json document;
    document["alpha_pattern"] = patterns(config.alpha_pattern);
    document["base_model_name_or_path"] = optional_text(config.base_model_name_or_path);
    document["bias"] = config.bias;
    if (config.exclude_modules.form != module_selection::kind::none)
        document["exclude_modules"] = selection(config.exclude_modules);
    document["fan_in_fan_out"] = config.fan_in_fan_out;
    document["inference_mode"] = config.inference_mode;
    if (config.init_lora_weights == "true" || config.init_lora_weights == "false")
        document["init_lora_weights"] = config.init_lora_weights == "true";
    else
        document["init_lora_weights"] = config.init_lora_weights;
    document["layers_pattern"] = config.layers_pattern.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.layers_pattern);
    document["layers_to_transform"] =
        config.layers_to_transform.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.layers_to_transform);
    document["lora_alpha"] = number(config.lora_alpha);
    if (config.lora_bias) document["lora_bias"] = true;
    document["lora_dropout"] = config.lora_dropout;
    document["modules_to_save"] =
        config.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(config.modules_to_save);
    document["peft_type"] = config.peft_type;
    document["r"] = config.r;
    document["rank_pattern"] = patterns(config.rank_pattern);
    document["revision"] = optional_text(config.revision);
    document["target_modules"] = selection(config.target_modules);
    document["task_type"] = optional_text(config.task_type);
    document["use_dora"] = config.use_dora;
    document["use_rslora"] = config.use_rslora;
    return python_style_json(document);
}

// ------------------------------------------------------------------------ refusals

bool init_changes_base(std::string_view init) {
    static const char* const keep_base[] = {"true", "false", "gaussian", "eva", "orthogonal"};
    return std::find(std::begin(keep_base), std::end(keep_base), init) == std::end(keep_base);
}

std::vector<std::string> lora_config_refusals(const lora_config& config, bool residual_base) {
    std::vector<std::string> reasons;
    if (config.use_dora) reasons.emplace_back("a DoRA adapter (use_dora): its weight-decomposed merge is not supported");
    for (const auto& field : config.unsupported_fields)
        reasons.push_back(fmt::format("'{}' is set, which plain LoRA does not support", field));
    if (!residual_base && init_changes_base(config.init_lora_weights))
        reasons.push_back(fmt::format(
            "init_lora_weights '{}' changed the base weights when the adapter was made, so the adapter belongs to that "
            "residual model, not to the original base (give --residual-base if BASE is that residual model)",
            config.init_lora_weights));
    return reasons;
}

}  // namespace lowrank
