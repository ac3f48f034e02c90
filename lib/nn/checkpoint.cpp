#include "nn/checkpoint.hpp"

#include "core/error.hpp"
#include "core/input.hpp"

#include <cstdint>
#include <filesystem>
#include <fmt/format.h>
#include <set>

namespace lowrank {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json_file(const std::string& path) {
    input_text input(path);
    json parsed = json::parse(input.text().begin(), input.text().end(), nullptr, false);
    if (parsed.is_discarded()) throw error_in(path, "not valid JSON");
    return parsed;
}

}  // namespace

checkpoint::checkpoint(const std::string& path) : path_(path) {
    fs::path file(path);
    std::error_code ignored;
    if (fs::is_directory(file, ignored)) {
        if (fs::exists(file / "model.safetensors.index.json", ignored))
            file /= "model.safetensors.index.json";
        else if (fs::exists(file / "model.safetensors", ignored))
            file /= "model.safetensors";
        else
            throw error_in(path, "a folder without model.safetensors or model.safetensors.index.json");
    }
    const fs::path folder = file.parent_path();
    if (file.extension() == ".json") {
        json index = read_json_file(file.string());
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            throw error_in(file.string(), "no \"weight_map\" object (not a sharded checkpoint index)");
        std::map<std::string, std::size_t> shard_numbers;
        for (const auto& [name, shard] : index["weight_map"].items()) {
            if (!shard.is_string())
                throw error_in(file.string(), fmt::format("weight_map entry '{}' is not a file name", name));
            std::string shard_name = shard.get<std::string>();
            if (shard_name.find('/') != std::string::npos)
                throw error_in(file.string(), fmt::format("shard '{}' is not a file beside the index", shard_name));
            auto [entry, added] = shard_numbers.try_emplace(shard_name, files_.size());
            if (added) files_.push_back(std::make_shared<safetensors_file>((folder / shard_name).string()));
            const safetensors_file& shard_file = *files_[entry->second];
            const tensor_info* tensor = shard_file.find(name);
            if (!tensor)
                throw error_in(shard_file.path(), fmt::format("no tensor '{}' (the index {} places it here)", name,
                                                              file.filename().string()));
            tensors_[name] = {entry->second, tensor};
        }
    } else {
        files_.push_back(std::make_shared<safetensors_file>(file.string()));
        for (const tensor_info& tensor : files_[0]->tensors()) tensors_[tensor.name] = {0, &tensor};
    }
    if (!files_.empty()) {
        const auto& metadata = files_[0]->metadata();
        if (auto entry = metadata.find("config"); entry != metadata.end()) {
            json parsed = json::parse(entry->second, nullptr, false);
            if (parsed.is_discarded()) throw error_in(files_[0]->path(), "__metadata__ \"config\" is not valid JSON");
            config_json_ = std::move(parsed);
            config_source_ = files_[0]->path() + " (__metadata__ config)";
            return;
        }
    }
    fs::path config_file = folder / "config.json";
    if (fs::exists(config_file, ignored)) {
        config_json_ = read_json_file(config_file.string());
        config_source_ = config_file.string();
    }
}

model_config checkpoint::config() const {
    if (!config_json_)
        throw error_in(path_, "no model config: no \"config\" in the safetensors __metadata__ and no config.json "
                              "beside it");
    return parse_model_config(*config_json_, config_source_);
}

std::optional<checkpoint::located> checkpoint::find(const std::string& name) const {
    auto entry = tensors_.find(name);
    if (entry == tensors_.end()) return std::nullopt;
    return located{files_[entry->second.first].get(), entry->second.second};
}

std::vector<std::string> checkpoint::tensor_names() const {
    std::vector<std::string> names;
    for (const auto& [name, unused] : tensors_) names.push_back(name);
    return names;
}

std::shared_ptr<const safetensors_file> checkpoint::owner(const safetensors_file* file) const {
    for (const auto& candidate : files_)
        if (candidate.get() == file) return candidate;
    return nullptr;
}

namespace {

// Buffers that checkpoints carry and models do not read.
bool is_buffer(const std::string& name) {
    return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name.ends_with("position_ids") ||
           name == "lm_head.weight";
}

bool is_float(dtype type) { return type == dtype::f32 || type == dtype::f16 || type == dtype::bf16 || type == dtype::f64; }

}  // namespace

load_result load_parameters(parameter_set& parameters, const checkpoint& source, architecture arch,
                            const load_options& options) {
    if (!parameters.allocated()) throw std::logic_error("load_parameters before allocate()");
    load_result result;
    std::set<std::string> used;
    for (parameter& p : parameters) {
        std::string stored = p.name;
        auto found = source.find(stored);
        if (!found && arch == architecture::gpt2 && stored.starts_with("transformer.")) {
            stored = stored.substr(std::string_view("transformer.").size());
            found = source.find(stored);
        }
        if (!found) {
            if (options.may_be_missing && options.may_be_missing(p)) {
                result.missing.push_back(&p);
                continue;
            }
            throw error_in(source.path(), fmt::format("missing tensor '{}'", p.name));
        }
        used.insert(stored);
        const safetensors_file& file = *found->file;
        const tensor_info& tensor = *found->tensor;
        if (!std::equal(tensor.shape.begin(), tensor.shape.end(), p.shape.begin(), p.shape.end()))
            throw error_in(file.path(), fmt::format("tensor '{}' has shape [{}], the model needs {}", tensor.name,
                                                    fmt::join(tensor.shape, ", "), shape_text(p.shape)));
        if (!is_float(tensor.type))
            throw error_in(file.path(), fmt::format("tensor '{}' has dtype {}; a parameter needs F32, F16, BF16 or F64",
                                                    tensor.name, safetensors_name(tensor.type)));
        std::span<const std::byte> bytes = file.bytes(tensor);
        bool aligned = reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(float) == 0;
        if (!p.trainable && tensor.type == dtype::f32 && aligned)
            parameters.alias(p, reinterpret_cast<const float*>(bytes.data()), source.owner(&file));
        else
            convert_to_float(tensor.type, bytes.data(), p.size(), p.value);
    }
    std::vector<std::string> unused;
    for (const std::string& name : source.tensor_names())
        if (!used.contains(name) && !is_buffer(name)) unused.push_back("'" + name + "'");
    if (!unused.empty()) {
        std::size_t count = unused.size();
        if (count > 3) unused.resize(3), unused.push_back("...");
        result.warnings.push_back(fmt::format("{}: {} tensor{} not used by the {} model: {}", source.path(), count,
                                              count == 1 ? " is" : "s are", architecture_name(arch),
                                              fmt::join(unused, ", ")));
    }
    parameters.touch();
    return result;
}

void save_parameters(output_stream& out, const parameter_set& parameters, const json& config,
                     const std::function<bool(const parameter&)>& select) {
    std::vector<tensor_data> tensors;
    for (const parameter& p : parameters) {
        if (select && !select(p)) continue;
        tensor_data data;
        data.spec = {p.name, dtype::f32, std::vector<std::uint64_t>(p.shape.begin(), p.shape.end())};
        data.bytes = {reinterpret_cast<const std::byte*>(p.value), p.size() * sizeof(float)};
        tensors.push_back(std::move(data));
    }
    write_safetensors(out, tensors, {{"format", "pt"}, {"config", config.dump()}});
}

}  // namespace lowrank
