#include "nn/checkpoint.hpp"

#include "core/error.hpp"

#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <set>

namespace lowrank {

using json = nlohmann::json;

checkpoint::checkpoint(const std::string& path) : files_(std::make_shared<safetensors_checkpoint>(path)) {}

model_config checkpoint::config() const {
    const auto& text = files_->config_text();
    if (!text)
        throw error_in(path(), "no model config: no \"config\" in the safetensors __metadata__ and no config.json "
                               "beside it");
    json parsed = json::parse(*text, nullptr, false);
    if (parsed.is_discarded()) throw error_in(files_->config_path(), "the model config is not valid JSON");
    return parse_model_config(parsed, files_->config_path());
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
    const safetensors_checkpoint& files = source.files();
    for (parameter& p : parameters) {
        std::string stored = p.name;
        auto found = files.find(stored);
        if (!found && arch == architecture::gpt2 && stored.starts_with("transformer.")) {
            stored = stored.substr(std::string_view("transformer.").size());
            found = files.find(stored);
        }
        if (!found) {
            if (options.may_be_missing && options.may_be_missing(p)) {
                result.missing.push_back(&p);
                continue;
            }
            throw error_in(source.path(), fmt::format("missing tensor '{}'", p.name));
        }
        used.insert(stored);
        const safetensors_file& file = files.files()[found->file];
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
            parameters.alias(p, reinterpret_cast<const float*>(bytes.data()), source.owner());
        else
            convert_to_float(tensor.type, bytes.data(), p.size(), p.value);
        if (auto bad = first_non_finite(p.value, p.size()))
            throw error_in(file.path(), fmt::format("tensor '{}' holds {} at element {}", tensor.name,
                                                    std::isnan(p.value[*bad]) ? "NaN" : "an infinity", *bad));
    }
    std::vector<std::string> unused;
    for (const safetensors_file& file : files.files())
        for (const tensor_info& tensor : file.tensors())
            if (!used.contains(tensor.name) && !is_buffer(tensor.name)) unused.push_back("'" + tensor.name + "'");
    if (!unused.empty()) {
        std::size_t count = unused.size();
        if (count > 3) unused.resize(3), unused.push_back("...");
        result.warnings.push_back(fmt::format("{}: {} tensor{} not used by the {} model: {}", source.path(), count,
                                              count == 1 ? " is" : "s are", architecture_name(arch),
                                              fmt::join(unused, ", ")));
    }
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
