#include "nn/model.hpp"

namespace lowrank {

model::model(const model_config& model_config) : config(model_config) {
    switch (config.arch) {
    case architecture::gpt2: gpt2 = std::make_unique<gpt2_model>(config); break;
    case architecture::vit: vit = std::make_unique<vit_model>(config); break;
    case architecture::clip: clip = std::make_unique<clip_model>(config); break;
    }
}

parameter_set& model::parameters() {
    if (gpt2) return gpt2->parameters();
    if (vit) return vit->parameters();
    return clip->parameters();
}

void model::initialize(std::uint64_t seed) {
    if (gpt2) gpt2->initialize(seed);
    if (vit) vit->initialize(seed);
    if (clip) clip->initialize(seed);
}

void model::set_routes(std::span<const item_range> routes) {
    if (gpt2) gpt2->stack().set_routes(routes);
    if (vit) vit->tower().stack().set_routes(routes);
    if (clip) {
        clip->text().stack().set_routes(routes);
        clip->vision().stack().set_routes(routes);
    }
}

std::vector<parameter*> model::head_parameters() {
    std::vector<parameter*> head;
    for (std::string_view name : {"score.weight", "classifier.weight", "classifier.bias"})
        if (parameter* p = parameters().find(name)) head.push_back(p);
    return head;
}

namespace {

void add_layers(transformer_stack& stack, std::map<std::string, linear*>& layers) {
    for (transformer_block& block : stack.blocks())
        for (linear* layer : block.linears()) layers[module_of(*layer->weight)] = layer;
}

}  // namespace

lora_sites lora_sites_of(model& target) {
    lora_sites sites;
    auto add_embedding = [&](embedding& layer) { sites.embeddings[module_of(*layer.table)] = &layer; };
    if (target.gpt2) {
        add_layers(target.gpt2->stack(), sites.linears);
        add_embedding(target.gpt2->token_embedding());
    }
    if (target.vit) add_layers(target.vit->tower().stack(), sites.linears);
    if (target.clip) {
        add_layers(target.clip->text().stack(), sites.linears);
        add_layers(target.clip->vision().stack(), sites.linears);
        add_embedding(target.clip->text().token_embedding());
    }
    return sites;
}

}  // namespace lowrank
