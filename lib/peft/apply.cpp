#include "peft/apply.hpp"

#include "core/error.hpp"
#include "nn/lora.hpp"
#include "peft/base_model.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <memory>

namespace lowrank {
namespace {

// The site of a module, looked up as find_base_tensor looks up base tensors (a module path
// that differs by a wrapper prefix, as GPT-2's "h.0..." for "transformer.h.0...", is found).
template <class Site>
Site* find_site(const std::map<std::string, Site*>& sites, const std::string& module) {
    constexpr std::size_t suffix = std::string_view(".weight").size();
    auto name = find_base_tensor(module + ".weight", [&](std::string_view weight) {
        return sites.contains(std::string(weight.substr(0, weight.size() - suffix)));
    });
    return name ? sites.at(name->substr(0, name->size() - suffix)) : nullptr;
}

parameter* find_parameter(parameter_set& parameters, const std::string& name) {
    auto found = find_base_tensor(name, [&](std::string_view candidate) { return parameters.find(candidate) != nullptr; });
    return found ? parameters.find(*found) : nullptr;
}

// The tensor's values as float32, refusing NaN and infinities.
std::vector<float> finite_values(const adapter& source, const tensor_info& tensor) {
    std::vector<float> values = source.to_float(tensor);
    if (auto problem = adapter::non_finite(tensor, values)) throw error_in(source.weights().path(), *problem);
    return values;
}

void check_shape(const adapter& source, const tensor_info& tensor, const parameter& p) {
    if (!std::equal(tensor.shape.begin(), tensor.shape.end(), p.shape.begin(), p.shape.end()))
        throw error_in(source.weights().path(), fmt::format("tensor '{}' has shape [{}], the model's '{}' is {}",
                                                            tensor.name, fmt::join(tensor.shape, ", "), p.name,
                                                            shape_text(p.shape)));
}

}  // namespace

std::vector<const parameter*> attach_adapter(const adapter& source, parameter_set& parameters, const lora_sites& sites,
                                             const std::string& tag, std::size_t route,
                                             std::span<parameter* const> head) {
    const std::string& path = source.path();
    if (!source.problems().empty()) throw error_in(path, source.problems().front());
    auto refusals = lora_config_refusals(source.config(), false);
    if (!refusals.empty()) throw error_in(path, refusals.front());
    std::vector<const parameter*> declared;
    for (const lora_pair& pair : source.lora()) {
        auto fail = [&](std::string_view what) { return error_in(path, fmt::format("module '{}': {}", pair.module, what)); };
        if (pair.a->shape.size() != 2) throw fail("LoRA on a convolution is not applied (merge it with lora-merge)");
        if (pair.bias) throw fail("lora_B biases are not applied");
        const lora_settings settings{.rank = static_cast<std::size_t>(pair.rank), .alpha = 1};
        lora_branch* branch = nullptr;
        if (pair.kind == lora_pair::layer::embedding) {
            embedding* layer = find_site(sites.embeddings, pair.module);
            if (!layer) throw fail("not a token embedding of the model");
            if (pair.a->shape[1] != layer->table->shape[0] || pair.b->shape[0] != layer->table->shape[1])
                throw fail(fmt::format("lora_embedding_A [{}] and lora_embedding_B [{}] do not fit an embedding of {} "
                                       "entries of width {}", fmt::join(pair.a->shape, ", "),
                                       fmt::join(pair.b->shape, ", "), layer->table->shape[0], layer->table->shape[1]));
            branch = &add_embedding_lora(parameters, *layer, settings, tag);
        } else {
            linear* layer = find_site(sites.linears, pair.module);
            if (!layer) throw fail("not a linear layer of the model");
            if (pair.a->shape[1] != layer->in || pair.b->shape[0] != layer->out)
                throw fail(fmt::format("lora_A [{}] and lora_B [{}] do not fit a layer of {} inputs and {} outputs",
                                       fmt::join(pair.a->shape, ", "), fmt::join(pair.b->shape, ", "), layer->in,
                                       layer->out));
            branch = &add_lora(parameters, {layer, 0, layer->out, tag}, settings);
        }
        branch->scale = static_cast<float>(pair.scale);
        branch->route = route;
        declared.insert(declared.end(), {branch->a, branch->b});
    }
    for (const full_tensor& tensor : source.full_tensors()) {
        parameter* target = find_parameter(parameters, tensor.name);
        if (!target)
            throw error_in(source.weights().path(),
                           fmt::format("tensor '{}' replaces no parameter of the model", tensor.tensor->name));
        if (route != lora_branch::every_row && std::find(head.begin(), head.end(), target) == head.end())
            throw error_in(source.weights().path(),
                           fmt::format("tensor '{}' replaces '{}', which cannot change from row to row of a batch "
                                       "(only LoRA matrices and a classification head can): merge it into the "
                                       "model, or apply it to every row",
                                       tensor.tensor->name, target->name));
    }
    return declared;
}

namespace {

// The transformer stacks of a model.
std::vector<transformer_stack*> stacks_of(model& target) {
    if (target.gpt2) return {&target.gpt2->stack()};
    if (target.vit) return {&target.vit->tower().stack()};
    return {&target.clip->text().stack(), &target.clip->vision().stack()};
}

// The first dimension of the file's tensors whose names end with `suffix`, which must agree.
std::optional<std::size_t> rows_of(const adapter& source, std::string_view suffix) {
    std::optional<std::size_t> rows;
    for (const full_tensor& tensor : source.full_tensors()) {
        if (!tensor.name.ends_with(suffix) || tensor.tensor->shape.empty()) continue;
        auto count = static_cast<std::size_t>(tensor.tensor->shape[0]);
        if (rows && *rows != count)
            throw error_in(source.weights().path(), fmt::format("tensor '{}' has {} rows, others ending in '{}' {}",
                                                                tensor.name, count, suffix, *rows));
        rows = count;
    }
    return rows;
}

}  // namespace

std::vector<const parameter*> attach_modules(const adapter& source, model& target) {
    const std::string& path = source.weights().path();
    const std::string& method = source.method();
    parameter_set& parameters = target.parameters();
    std::vector<std::string> before;
    for (const parameter& p : parameters) before.push_back(p.name);
    if (method == "adapter-h" || method == "adapter-l") {
        auto size = rows_of(source, ".adapter.down.weight");
        if (!size) throw error_in(path, fmt::format("method {}, but no tensor '*.adapter.down.weight'", method));
        for (transformer_stack* stack : stacks_of(target))
            stack->add_adapters(parameters, method == "adapter-h" ? adapter_placement::houlsby : adapter_placement::lin,
                                *size);
    } else if (method == "prefix-embed" || method == "prefix-layer") {
        if (!target.gpt2)
            throw error_in(path, fmt::format("method {}: prefix tuning applies to gpt2 models, not {}", method,
                                             architecture_name(target.arch())));
        auto prefix = rows_of(source, ".prefix"), infix = rows_of(source, ".infix");
        if (!prefix && !infix) throw error_in(path, fmt::format("method {}, but no prefix or infix tensor", method));
        target.gpt2->add_prefix(prefix.value_or(0), infix.value_or(0), method == "prefix-layer");
    } else {
        throw std::logic_error("attach_modules for a method that adds no modules");
    }
    std::vector<const parameter*> declared;
    for (const parameter& p : parameters) {
        if (std::find(before.begin(), before.end(), p.name) != before.end()) continue;
        bool present = std::any_of(source.full_tensors().begin(), source.full_tensors().end(),
                                   [&](const full_tensor& tensor) { return tensor.name == p.name; });
        if (!present) throw error_in(path, fmt::format("method {}: tensor '{}' is missing", method, p.name));
        declared.push_back(&p);
    }
    return declared;
}

namespace {

void load_lora(const adapter& source, parameter_set& parameters, const std::string& tag) {
    if (!parameters.allocated()) throw std::logic_error("load_adapter before allocate()");
    for (const lora_pair& pair : source.lora()) {
        for (auto [matrix, tensor] : {std::pair{"A", pair.a}, std::pair{"B", pair.b}}) {
            parameter* target = find_parameter(
                parameters, pair.kind == lora_pair::layer::embedding
                                ? fmt::format("{}.lora_embedding_{}.{}", pair.module, matrix, tag)
                                : fmt::format("{}.lora_{}.{}.weight", pair.module, matrix, tag));
            if (!target) throw std::logic_error("load_adapter without attach_adapter");
            check_shape(source, *tensor, *target);
            std::vector<float> values = finite_values(source, *tensor);
            std::copy(values.begin(), values.end(), target->value);
        }
    }
}

std::vector<replacement> read_replacements(const adapter& source, parameter_set& parameters) {
    std::vector<replacement> replacements;
    for (const full_tensor& tensor : source.full_tensors()) {
        parameter* target = find_parameter(parameters, tensor.name);
        check_shape(source, *tensor.tensor, *target);
        replacements.push_back({target, std::make_shared<std::vector<float>>(finite_values(source, *tensor.tensor))});
    }
    return replacements;
}

}  // namespace

void load_adapter(const adapter& source, parameter_set& parameters, const std::string& tag) {
    load_lora(source, parameters, tag);
    for (const replacement& tensor : read_replacements(source, parameters)) {
        if (tensor.target->trainable)
            std::copy(tensor.values->begin(), tensor.values->end(), tensor.target->value);
        else  // it may alias the base checkpoint's read-only mapping: point it at values of its own
            parameters.alias(*tensor.target, tensor.values->data(), tensor.values);
    }
}

std::vector<replacement> load_routed_adapter(const adapter& source, parameter_set& parameters,
                                             const std::string& tag) {
    load_lora(source, parameters, tag);
    return read_replacements(source, parameters);
}

replacement_scope::replacement_scope(std::span<const replacement> replacements) {
    for (const replacement& tensor : replacements) {
        if (tensor.target->trainable) throw std::logic_error("replacement_scope on a trainable parameter");
        saved_.emplace_back(tensor.target, tensor.target->value);
        tensor.target->value = const_cast<float*>(tensor.values->data());
    }
}

replacement_scope::~replacement_scope() {
    for (auto [target, value] : saved_) target->value = value;
}

}  // namespace lowrank
