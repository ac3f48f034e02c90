#include "train/method.hpp"

#include "core/error.hpp"
#include "core/random.hpp"
#include "peft/adapter.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <fmt/format.h>
#include <map>
#include <set>

namespace lowrank {
namespace {

constexpr std::pair<method_kind, std::string_view> method_names[] = {
    {method_kind::lora, "lora"},           {method_kind::full, "full"},
    {method_kind::top2, "top2"},           {method_kind::bitfit, "bitfit"},
    {method_kind::head, "head"},
    {method_kind::adapter_h, "adapter-h"}, {method_kind::adapter_l, "adapter-l"},
    {method_kind::prefix_embed, "prefix-embed"}, {method_kind::prefix_layer, "prefix-layer"},
};

constexpr std::pair<task_kind, std::string_view> task_names[] = {
    {task_kind::lm, "lm"},           {task_kind::lm_pairs, "lm-pairs"}, {task_kind::classify, "classify"},
    {task_kind::regress, "regress"}, {task_kind::clip, "clip"},
};

// Streams of the seed for the first values of what a method adds, apart from the streams
// the data order draws from (which count epochs from 0).
constexpr std::uint64_t initialization_streams = std::uint64_t{1} << 61;

// A module path's last component: "wte", "token_embedding".
std::string_view last_component(std::string_view module) { return module.substr(module.rfind('.') + 1); }

// The last two components of a module path: "attn.c_attn", "self_attn.q_proj".
std::string short_module(const std::string& module) {
    auto last = module.rfind('.');
    if (last == std::string::npos || last == 0) return module;
    auto before = module.rfind('.', last - 1);
    return before == std::string::npos ? module : module.substr(before + 1);
}

// A target by alias (q, k, v, o, fc1, fc2) or by the layer's Hugging Face name: its last
// component ("c_attn", "q_proj") or its last two ("attn.c_proj").
std::optional<lora_target> named_target(transformer_block& block, std::string_view target) {
    if (auto found = find_lora_target(block, target)) return found;
    for (linear* layer : block.linears()) {
        std::string module = module_of(*layer->weight);
        std::string last(last_component(module));
        if (short_module(module) == target || last == target) {
            // A last component two layers share (GPT-2's c_proj) names neither.
            std::size_t sharing = 0;
            for (linear* other : block.linears())
                if (module_of(*other->weight).ends_with("." + last)) ++sharing;
            if (short_module(module) == target || sharing == 1) return lora_target{layer, 0, layer->out, ""};
        }
    }
    return std::nullopt;
}

// The token embedding a target names, by its module's last component (gpt2's "wte", clip's
// "token_embedding") or its path; null for another name.
embedding* named_embedding(const std::map<std::string, embedding*>& embeddings, std::string_view name) {
    for (const auto& [module, layer] : embeddings)
        if (module == name || last_component(module) == name) return layer;
    return nullptr;
}

// The LoRA settings of a target: the method's, with the rank rank_pattern gives it.
lora_settings target_settings(const method_settings& settings, std::string_view name) {
    lora_settings result = settings.lora;
    for (const auto& [target, rank] : settings.rank_pattern)
        if (target == name) result.rank = rank;
    return result;
}

// LoRA branches on the blocks' layers the targets name; `embedding_name` is the token
// embedding's name, for the message about a name that is not a layer.
void add_lora_branches(parameter_set& parameters, transformer_stack& stack, std::span<const std::string> targets,
                       const method_settings& settings, std::string_view embedding_name) {
    for (transformer_block& block : stack.blocks()) {
        for (const std::string& name : targets) {
            auto target = named_target(block, name);
            if (!target)
                throw usage_error(fmt::format("--targets: '{}' is not a layer of this model (q, k, v, o, fc1, fc2, {}"
                                              "or a layer's name, such as {})", name,
                                              embedding_name.empty() ? "" : fmt::format("{}, ", embedding_name),
                                              short_module(module_of(*block.fc1.weight))));
            bool repeated = false;
            for (const lora_branch& branch : target->layer->lora) {
                if (branch.column == target->column && branch.width() == target->width) repeated = true;
                else if (target->column < branch.column + branch.width() && branch.column < target->column + target->width)
                    throw usage_error(fmt::format("--targets: '{}' overlaps another target on {}", name,
                                                  short_module(target->module())));
            }
            if (!repeated) add_lora(parameters, *target, target_settings(settings, name)).a->trainable = true;
        }
        for (linear* layer : block.linears())
            for (lora_branch& branch : layer->lora) {
                branch.b->trainable = true;
                if (branch.rank() != layer->lora.front().rank())  // one PEFT pair per layer (save_lora)
                    throw usage_error(fmt::format("--rank-pattern: the targets on {} need one rank",
                                                  short_module(module_of(*layer->weight))));
            }
    }
}

void train_block(transformer_block& block) {
    for (layer_norm* norm : {&block.ln1, &block.ln2}) norm->weight->trainable = norm->bias->trainable = true;
    for (linear* layer : block.linears()) layer->weight->trainable = layer->bias->trainable = true;
}

void train_adapter(bottleneck_adapter& adapter) {
    if (adapter.norm) adapter.norm->weight->trainable = adapter.norm->bias->trainable = true;
    for (linear* layer : {&adapter.down, &adapter.up}) layer->weight->trainable = layer->bias->trainable = true;
}

void train_head(model& target, bool train_logit_scale) {
    parameter_set& parameters = target.parameters();
    for (const char* name : {"score.weight", "classifier.weight", "classifier.bias"})
        if (parameter* p = parameters.find(name)) p->trainable = true;
    if (train_logit_scale)
        if (parameter* p = parameters.find("logit_scale")) p->trainable = true;
}

}  // namespace

std::optional<method_kind> method_from_name(std::string_view name) {
    for (auto [kind, text] : method_names)
        if (text == name) return kind;
    return std::nullopt;
}

std::string_view method_name(method_kind kind) {
    for (auto [k, text] : method_names)
        if (k == kind) return text;
    return "?";
}

std::optional<task_kind> task_from_name(std::string_view name) {
    for (auto [kind, text] : task_names)
        if (text == name) return kind;
    return std::nullopt;
}

std::string_view task_name(task_kind kind) {
    for (auto [k, text] : task_names)
        if (k == kind) return text;
    return "?";
}

std::vector<transformer_stack*> model_stacks(model& target) {
    if (target.gpt2) return {&target.gpt2->stack()};
    if (target.vit) return {&target.vit->tower().stack()};
    return {&target.clip->text().stack(), &target.clip->vision().stack()};
}

void apply_method(model& target, const method_settings& settings, bool train_logit_scale) {
    parameter_set& parameters = target.parameters();
    const bool prefix = settings.kind == method_kind::prefix_embed || settings.kind == method_kind::prefix_layer;
    if (prefix && !target.gpt2)
        throw usage_error(fmt::format("--method {}: prefix tuning is implemented for gpt2 models, not {}",
                                      method_name(settings.kind), architecture_name(target.arch())));
    switch (settings.kind) {
    case method_kind::lora: {
        const auto embeddings = lora_sites_of(target).embeddings;
        std::vector<std::string> in_blocks;
        for (const std::string& name : settings.targets) {
            embedding* layer = named_embedding(embeddings, name);
            if (!layer) {
                in_blocks.push_back(name);
            } else if (layer->lora.empty()) {  // (named once)
                lora_branch& branch = add_embedding_lora(parameters, *layer, target_settings(settings, name));
                branch.a->trainable = branch.b->trainable = true;
            }
        }
        std::string_view embedding_name = embeddings.empty() ? "" : last_component(embeddings.begin()->first);
        for (transformer_stack* stack : model_stacks(target))
            add_lora_branches(parameters, *stack, in_blocks, settings, embedding_name);
        break;
    }
    case method_kind::full:
        for (parameter& p : parameters) p.trainable = true;
        break;
    case method_kind::top2:
        for (transformer_stack* stack : model_stacks(target)) {
            auto& blocks = stack->blocks();
            for (std::size_t i = blocks.size() >= 2 ? blocks.size() - 2 : 0; i < blocks.size(); ++i)
                train_block(blocks[i]);
        }
        break;
    case method_kind::bitfit:
        for (parameter& p : parameters)
            if (p.name.ends_with(".bias")) p.trainable = true;
        break;
    case method_kind::head:  // a linear probe: the task's head alone, below
        break;
    case method_kind::adapter_h:
    case method_kind::adapter_l:
        for (transformer_stack* stack : model_stacks(target)) {
            stack->add_adapters(parameters,
                                settings.kind == method_kind::adapter_h ? adapter_placement::houlsby : adapter_placement::lin,
                                settings.adapter_size);
            for (transformer_block& block : stack->blocks()) {
                if (block.attention_adapter) train_adapter(*block.attention_adapter);
                if (block.mlp_adapter) train_adapter(*block.mlp_adapter);
            }
        }
        break;
    case method_kind::prefix_embed:
    case method_kind::prefix_layer:
        target.gpt2->add_prefix(settings.prefix_length, settings.infix_length,
                                settings.kind == method_kind::prefix_layer);
        for (transformer_block& block : target.gpt2->stack().blocks())
            for (parameter* p : {block.prefix, block.infix})
                if (p) p->trainable = true;
        break;
    }
    train_head(target, train_logit_scale);
    if (parameters.trainable_count() == 0)
        throw usage_error(fmt::format("--method {} trains no parameter of this model", method_name(settings.kind)));
}

bool added_by_method(const parameter& p) {
    return p.name.find(".lora_A") != std::string::npos || p.name.find(".lora_B") != std::string::npos ||
           p.name.find(".lora_embedding_") != std::string::npos ||
           p.name.find(".adapter.") != std::string::npos || p.name.ends_with(".prefix") || p.name.ends_with(".infix");
}

void initialize_method(model& target, const method_settings& settings, std::uint64_t seed) {
    std::uint64_t stream = initialization_streams;
    for (transformer_stack* stack : model_stacks(target))
        for (transformer_block& block : stack->blocks()) {
            for (linear* layer : block.linears())
                for (lora_branch& branch : layer->lora) initialize_lora(branch, settings.init, seed, stream++);
            for (auto* adapter : {&block.attention_adapter, &block.mlp_adapter})
                if (*adapter) initialize_adapter(**adapter, seed, stream++);
            // Prefix vectors: the token embeddings of random vocabulary tokens (Li & Liang
            // start from real words' activations).
            for (parameter* vectors : {block.prefix, block.infix}) {
                if (!vectors) continue;
                const parameter& embedding = *target.gpt2->token_embedding().table;
                const std::size_t C = embedding.shape[1];
                random_generator random(seed, stream++);
                for (std::size_t j = 0; j < vectors->shape[0]; ++j) {
                    std::size_t token = random.below(embedding.shape[0]);
                    std::copy_n(embedding.value + token * C, C, vectors->value + j * C);
                }
            }
        }
    lora_sites sites = lora_sites_of(target);
    for (auto& [module, layer] : sites.embeddings)
        for (lora_branch& branch : layer->lora) initialize_embedding_lora(branch, seed, stream++);
}

std::string trainable_parameters_line(const parameter_set& parameters) {
    auto grouped = [](std::size_t count) {
        std::string digits = std::to_string(count), text;
        for (std::size_t i = 0; i < digits.size(); ++i) {
            if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
            text += digits[i];
        }
        return text;
    };
    const std::size_t trainable = parameters.trainable_count(), all = parameters.count();
    return fmt::format("trainable params: {} || all params: {} || trainable%: {:.4f}", grouped(trainable),
                       grouped(all), all ? 100.0 * static_cast<double>(trainable) / static_cast<double>(all) : 0.0);
}

// ------------------------------------------------------------------------------ outputs

namespace {

// Float tensors for writing: parameters' values, or values built for it (a deque: their
// addresses stay put).
struct tensor_store {
    std::deque<std::vector<float>> buffers;
    std::vector<tensor_data> tensors;

    void add(std::string name, std::vector<std::uint64_t> shape, std::vector<float> values) {
        const auto& kept = buffers.emplace_back(std::move(values));
        tensors.push_back({{std::move(name), dtype::f32, std::move(shape)},
                           {reinterpret_cast<const std::byte*>(kept.data()), kept.size() * sizeof(float)}});
    }
    // A parameter's values as they are (no copy: they outlive the writing).
    void add(const parameter& p, const std::string& name) {
        tensors.push_back({{name, dtype::f32, {p.shape.begin(), p.shape.end()}},
                           {reinterpret_cast<const std::byte*>(p.value), p.size() * sizeof(float)}});
    }
};

// The LoRA of one layer as one PEFT pair: branches on slices of a fused projection (q and v
// of c_attn) become one pair of rank k·r whose B is block-structured, zero in the rows of
// the slices without a branch: B A = [B_q A_q; 0; B_v A_v]. Its scale must stay α/r:
// PEFT's alpha' / r' with r' = k·r needs alpha' = k·α (rsLoRA: α'/√(k·r) needs √k·α).
struct layer_lora {
    std::string module;
    std::size_t rank = 0;
    double alpha = 0;
};

layer_lora store_layer_lora(const linear& layer, const lora_settings& settings, tensor_store& store) {
    const std::size_t r = layer.lora.front().rank(), k = layer.lora.size(), in = layer.in, out = layer.out;
    std::vector<float> a(k * r * in, 0.0f), b(out * k * r, 0.0f);
    for (std::size_t i = 0; i < k; ++i) {
        const lora_branch& branch = layer.lora[i];
        std::copy_n(branch.a->value, r * in, a.data() + i * r * in);
        for (std::size_t row = 0; row < branch.width(); ++row)
            for (std::size_t j = 0; j < r; ++j) b[(branch.column + row) * k * r + i * r + j] = branch.b->value[row * r + j];
    }
    const std::string module = module_of(*layer.weight);
    store.add(peft_key(module, "lora_A.weight"), {k * r, in}, std::move(a));
    store.add(peft_key(module, "lora_B.weight"), {out, k * r}, std::move(b));
    const double factor = settings.rslora ? std::sqrt(static_cast<double>(k)) : static_cast<double>(k);
    return {short_module(module), k * r, settings.alpha * factor};
}

// The base config's model_type ("gpt2", "clip", "clip_vision_model"), which lora-merge checks.
std::string base_model_type(const model& target) {
    const auto& json = target.config.json;
    if (json.contains("model_type") && json["model_type"].is_string()) return json["model_type"].get<std::string>();
    return std::string(architecture_name(target.arch()));
}

std::optional<std::string> task_type(const model& target, task_kind task) {
    if (task == task_kind::lm || task == task_kind::lm_pairs) return "CAUSAL_LM";
    if (target.gpt2) return "SEQ_CLS";
    if (target.clip) return "FEATURE_EXTRACTION";
    return std::nullopt;
}

void save_lora(const std::string& path, model& target, const method_settings& settings,
               const output_description& description) {
    tensor_store store;
    std::vector<layer_lora> layers;
    for (transformer_stack* stack : model_stacks(target))
        for (transformer_block& block : stack->blocks())
            for (linear* layer : block.linears())
                if (!layer->lora.empty()) layers.push_back(store_layer_lora(*layer, settings.lora, store));
    lora_sites sites = lora_sites_of(target);
    for (auto& [module, layer] : sites.embeddings) {
        if (layer->lora.empty()) continue;
        const lora_branch& branch = layer->lora.front();
        store.add(*branch.a, peft_key(module, "lora_embedding_A"));
        store.add(*branch.b, peft_key(module, "lora_embedding_B"));
        layers.push_back({short_module(module), branch.rank(), settings.lora.alpha});
    }
    lora_config config;
    config.task_type = task_type(target, description.task);
    config.base_model_name_or_path = description.base_model_path;
    config.r = static_cast<int>(settings.lora.rank);
    config.lora_alpha = settings.lora.alpha;
    config.use_rslora = settings.lora.rslora;
    config.lora_dropout = settings.lora.dropout;
    config.fan_in_fan_out = target.gpt2 != nullptr;
    config.init_lora_weights = settings.init == lora_init::gaussian ? "gaussian" : "true";
    config.target_modules.form = module_selection::kind::names;
    std::set<std::string> names;
    for (const layer_lora& layer : layers) {
        if (!names.insert(layer.module).second) continue;
        config.target_modules.names.push_back(layer.module);
    }
    // r and lora_alpha: the most common rank and alpha of the layers (fused slices make them
    // differ from --rank); the other layers' by pattern.
    std::map<std::pair<std::size_t, double>, std::size_t> counts;
    for (const layer_lora& layer : layers) ++counts[{layer.rank, layer.alpha}];
    auto common = std::max_element(counts.begin(), counts.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    if (common != counts.end()) {
        config.r = static_cast<int>(common->first.first);
        config.lora_alpha = common->first.second;
    }
    std::set<std::string> patterned;
    for (const layer_lora& layer : layers) {
        if (std::pair{layer.rank, layer.alpha} == common->first || !patterned.insert(layer.module).second) continue;
        std::string key = layer.module;
        config.rank_pattern.push_back({key, module_regex("(.*\\.)?(" + key + ")", path, "rank_pattern"),
                                       static_cast<double>(layer.rank)});
        config.alpha_pattern.push_back({key, module_regex("(.*\\.)?(" + key + ")", path, "alpha_pattern"),
                                        layer.alpha});
    }
    for (const parameter& p : target.parameters()) {
        if (!p.trainable || added_by_method(p)) continue;
        store.add(p, std::string(peft_key_prefix) + p.name);  // modules_to_save: whole tensors
        std::string module = p.name.substr(0, p.name.rfind('.'));
        if (p.name.find('.') != std::string::npos && module.find('.') == std::string::npos &&
            std::find(config.modules_to_save.begin(), config.modules_to_save.end(), module) ==
                config.modules_to_save.end())
            config.modules_to_save.push_back(module);
    }
    save_peft_adapter(path, config, store.tensors, base_model_type(target));
}

}  // namespace

void save_method_output(const std::string& path, model& target, const method_settings& settings,
                        const output_description& description) {
    if (settings.kind == method_kind::lora) {
        save_lora(path, target, settings, description);
        return;
    }
    tensor_store store;
    for (const parameter& p : target.parameters())
        if (p.trainable) store.add(p, p.name);
    save_trained_tensors(path, method_name(settings.kind), store.tensors, base_model_type(target));
}

}  // namespace lowrank
