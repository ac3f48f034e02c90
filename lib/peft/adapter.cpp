#include "peft/adapter.hpp"

#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <sys/stat.h>

namespace lowrank {
namespace {

namespace fs = std::filesystem;

bool is_directory(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

// The file holding an adapter's tensors: the PEFT folder's adapter_model.safetensors, or
// the trained-tensor file itself.
std::string weights_path(const std::string& path) {
    if (!is_directory(path)) return path;
    fs::path folder(path);
    if (!fs::exists(folder / "adapter_config.json"))
        throw error_in(path, "no adapter_config.json: not a PEFT adapter folder");
    if (!fs::exists(folder / "adapter_model.safetensors")) {
        if (fs::exists(folder / "adapter_model.bin"))
            throw error_in((folder / "adapter_model.bin").string(),
                           "pickled PyTorch weights are not read; save the adapter with "
                           "save_pretrained(safe_serialization=True) to get adapter_model.safetensors");
        throw error_in(path, "no adapter_model.safetensors");
    }
    return (folder / "adapter_model.safetensors").string();
}

bool is_float_type(dtype type) {
    return type == dtype::f32 || type == dtype::f16 || type == dtype::bf16 || type == dtype::f64;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// The pieces of a PEFT key, after "base_model.model.".
struct key_parts {
    std::string module;
    std::string slot;  // "lora_A.weight", "lora_embedding_B"...; empty for a whole tensor
};

key_parts split_key(std::string_view rest) {
    static const char* const slots[] = {"lora_A.weight", "lora_B.weight", "lora_B.bias", "lora_embedding_A",
                                        "lora_embedding_B", "lora_magnitude_vector"};
    for (const char* slot : slots) {
        std::string suffix = std::string(".") + slot;
        if (rest.size() > suffix.size() && rest.ends_with(suffix))
            return {std::string(rest.substr(0, rest.size() - suffix.size())), slot};
    }
    return {std::string(rest), ""};
}

// A whole tensor's base name: PEFT saves the wrapped module's own parameters under
// ".base_layer" (bias "all"/"lora_only").
std::string base_tensor_name(std::string name) {
    for (std::size_t at; (at = name.find(".base_layer.")) != std::string::npos;) name.erase(at, 11);
    return name;
}

bool has_lora_component(std::string_view name) {
    return name.starts_with("lora_") || name.find(".lora_") != std::string_view::npos;
}

}  // namespace

std::uint64_t lora_pair::delta_columns() const {
    std::uint64_t columns = 1;
    for (std::size_t i = 1; i < a->shape.size(); ++i) columns *= a->shape[i];
    return columns;
}

adapter::adapter(const std::string& path) : path_(path), weights_(weights_path(path), page_loading::lazy) {
    if (is_directory(path)) {
        std::string config_path = (fs::path(path) / "adapter_config.json").string();
        input_text text(config_path);
        config_ = parse_adapter_config(text.text(), config_path);
        read_peft_tensors();
    } else {
        read_trained_tensors();
    }
    const auto& metadata = weights_.metadata();
    if (auto found = metadata.find(std::string(base_model_type_metadata_key)); found != metadata.end())
        base_model_type_ = found->second;
}

void adapter::read_peft_tensors() {
    std::map<std::string, lora_pair> pairs;  // by module, so the order is the modules' names
    for (const auto& tensor : weights_.tensors()) {
        if (!tensor.name.starts_with(peft_key_prefix)) {
            problems_.push_back(fmt::format("tensor '{}' is not a PEFT key (they start with '{}')", tensor.name,
                                            peft_key_prefix));
            continue;
        }
        key_parts key = split_key(std::string_view(tensor.name).substr(peft_key_prefix.size()));
        if (!is_float_type(tensor.type)) {
            problems_.push_back(fmt::format("tensor '{}' has dtype {}, not a floating-point type", tensor.name,
                                            safetensors_name(tensor.type)));
            continue;
        }
        if (key.slot.empty()) {
            if (has_lora_component(key.module)) {
                problems_.push_back(fmt::format("tensor '{}' is not a LoRA tensor lora-merge knows", tensor.name));
                continue;
            }
            full_tensors_.push_back({base_tensor_name(key.module), &tensor});
            continue;
        }
        if (key.slot == "lora_magnitude_vector") {
            problems_.push_back(fmt::format("module '{}' has a DoRA magnitude vector, which is not supported", key.module));
            continue;
        }
        lora_pair& pair = pairs[key.module];
        pair.module = key.module;
        if (key.slot == "lora_A.weight" || key.slot == "lora_embedding_A") pair.a = &tensor;
        if (key.slot == "lora_B.weight" || key.slot == "lora_embedding_B") pair.b = &tensor;
        if (key.slot == "lora_B.bias") pair.bias = &tensor;
        if (key.slot.starts_with("lora_embedding")) pair.kind = lora_pair::layer::embedding;
    }
    for (auto& [module, pair] : pairs) check_pair(pair);
    if (lora_.empty() && full_tensors_.empty() && problems_.empty())
        problems_.push_back("the adapter holds no tensors");
}

// Shapes: A [r, in...], B [out, r] (or [out, r, 1, 1] with a 4-D A); embeddings A [r, num],
// B [dim, r]; the rank must be the config's for this module, or PEFT would not load it.
void adapter::check_pair(lora_pair& pair) {
    auto problem = [&](std::string what) { problems_.push_back(fmt::format("module '{}': {}", pair.module, what)); };
    bool embedding = pair.kind == lora_pair::layer::embedding;
    const char* a_name = embedding ? "lora_embedding_A" : "lora_A";
    const char* b_name = embedding ? "lora_embedding_B" : "lora_B";
    if (!pair.a || !pair.b) return problem(fmt::format("{} without {}", pair.a ? a_name : b_name, pair.a ? b_name : a_name));
    const auto& a = pair.a->shape;
    const auto& b = pair.b->shape;
    bool a_fits = a.size() == 2 || (!embedding && a.size() == 4);
    bool b_fits = b.size() == 2 || (!embedding && b.size() == 4 && a.size() == 4 && b[2] == 1 && b[3] == 1);
    if (!a_fits || !b_fits || a[0] == 0)
        return problem(fmt::format("{} {} and {} {} are not LoRA shapes", a_name, shape_text(a), b_name, shape_text(b)));
    if (a[0] != b[1])
        return problem(fmt::format("wrong rank: {} has rank {} but {} has rank {}", a_name, a[0], b_name, b[1]));
    pair.rank = a[0];
    int expected = config_.rank_for(pair.module);
    if (pair.rank != static_cast<std::uint64_t>(expected))
        return problem(fmt::format("wrong rank: {} has rank {} but adapter_config.json gives r = {} for it", a_name,
                                   pair.rank, expected));
    pair.scale = config_.scale_for(pair.module);
    if (pair.bias) {
        if (pair.bias->shape != std::vector<std::uint64_t>{b[0]})
            return problem(fmt::format("lora_B.bias {} does not fit lora_B {}", shape_text(pair.bias->shape), shape_text(b)));
        if (!config_.lora_bias) {
            warnings_.push_back(fmt::format("{}: module '{}' has a lora_B.bias but lora_bias is false; ignoring it, as "
                                            "PEFT does", path_, pair.module));
            pair.bias = nullptr;
        }
    }
    if (config_.target_modules.form != module_selection::kind::none && !config_.selects(pair.module))
        warnings_.push_back(fmt::format("{}: module '{}' has LoRA weights but adapter_config.json does not select it "
                                        "(PEFT would not load them); merging them anyway", path_, pair.module));
    lora_.push_back(pair);
}

void adapter::read_trained_tensors() {
    kind_ = format::trained_tensors;
    const auto& metadata = weights_.metadata();
    auto found = metadata.find(std::string(method_metadata_key));
    if (found == metadata.end())
        throw error_in(path_, fmt::format("no \"{}\" in __metadata__: neither a PEFT adapter folder nor a trained-tensor "
                                          "file of lora-train", method_metadata_key));
    method_ = found->second;
    for (const auto& tensor : weights_.tensors()) {
        if (!is_float_type(tensor.type))
            problems_.push_back(fmt::format("tensor '{}' has dtype {}, not a floating-point type", tensor.name,
                                            safetensors_name(tensor.type)));
        else
            full_tensors_.push_back({tensor.name, &tensor});
    }
    if (weights_.tensors().empty()) problems_.push_back("the file holds no tensors");
}

bool method_replaces_tensors(std::string_view method) {
    return method == "full" || method == "top2" || method == "bitfit" || method == "head";
}

bool method_adds_modules(std::string_view method) {
    return method == "adapter-h" || method == "adapter-l" || method == "prefix-embed" || method == "prefix-layer";
}

// ------------------------------------------------------------------------ writing

std::string peft_key(std::string_view module, std::string_view suffix) {
    return fmt::format("{}{}.{}", peft_key_prefix, module, suffix);
}

namespace {

std::map<std::string, std::string> adapter_metadata(const std::optional<std::string>& base_model_type) {
    std::map<std::string, std::string> metadata{{"format", "pt"}};
    if (base_model_type) metadata[std::string(base_model_type_metadata_key)] = *base_model_type;
    return metadata;
}

}  // namespace

void save_peft_adapter(const std::string& folder, const lora_config& config, const std::vector<tensor_data>& tensors,
                       const std::optional<std::string>& base_model_type) {
    output_folder out(folder, fs::exists(fs::path(folder) / "adapter_config.json"));
    {
        output_stream config_file(out.file("adapter_config.json"), output_kind::text);
        config_file.write(adapter_config_json(config));
        config_file.commit();
    }
    output_stream weights(out.file("adapter_model.safetensors"), output_kind::binary);
    write_safetensors(weights, tensors, adapter_metadata(base_model_type));
    weights.commit();
    out.commit();
}

void save_trained_tensors(const std::string& path, std::string_view method, const std::vector<tensor_data>& tensors,
                          const std::optional<std::string>& base_model_type) {
    auto metadata = adapter_metadata(base_model_type);
    metadata[std::string(method_metadata_key)] = std::string(method);
    output_stream out(path, output_kind::binary);
    write_safetensors(out, tensors, metadata);
    out.commit();
}

std::optional<std::string> adapter::non_finite(const tensor_info& tensor, const std::vector<float>& values) {
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            return fmt::format("tensor '{}' holds {} at element {}", tensor.name,
                               std::isnan(values[i]) ? "NaN" : "an infinity", i);
    return std::nullopt;
}

}  // namespace lowrank
