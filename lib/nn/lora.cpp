#include "nn/lora.hpp"

#include "core/random.hpp"

#include <cmath>

namespace lowrank {

float lora_settings::scale() const {
    return rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

std::string lora_target::module() const { return module_of(*layer->weight); }

std::optional<lora_target> find_lora_target(transformer_block& block, std::string_view target) {
    for (std::size_t third = 0; third < 3; ++third) {
        std::string_view slice = third == 0 ? "q" : third == 1 ? "k" : "v";
        if (target != slice) continue;
        if (block.fused()) {
            std::size_t width = block.qkv.out / 3;
            return lora_target{&block.qkv, third * width, width, std::string(slice)};
        }
        linear* layer = third == 0 ? &block.q : third == 1 ? &block.k : &block.v;
        return lora_target{layer, 0, layer->out, ""};
    }
    if (target == "o") return lora_target{&block.attention_output, 0, block.attention_output.out, ""};
    if (target == "fc1") return lora_target{&block.fc1, 0, block.fc1.out, ""};
    if (target == "fc2") return lora_target{&block.fc2, 0, block.fc2.out, ""};
    return std::nullopt;
}

lora_branch& add_lora(parameter_set& parameters, const lora_target& target, const lora_settings& settings) {
    std::string suffix = target.tag.empty() ? ".weight" : "." + target.tag + ".weight";
    std::string module = target.module();
    lora_branch branch;
    branch.a = &parameters.add(module + ".lora_A" + suffix, {settings.rank, target.layer->in});
    branch.b = &parameters.add(module + ".lora_B" + suffix, {target.width, settings.rank});
    branch.scale = settings.scale();
    branch.dropout = settings.dropout;
    branch.column = target.column;
    return target.layer->lora.emplace_back(branch);
}

lora_branch& add_embedding_lora(parameter_set& parameters, embedding& layer, const lora_settings& settings,
                                const std::string& tag) {
    const std::string module = module_of(*layer.table);
    const std::string suffix = tag.empty() ? "" : "." + tag;
    lora_branch branch;
    branch.a = &parameters.add(module + ".lora_embedding_A" + suffix, {settings.rank, layer.table->shape[0]});
    branch.b = &parameters.add(module + ".lora_embedding_B" + suffix, {layer.table->shape[1], settings.rank});
    branch.scale = settings.scale();
    return layer.lora.emplace_back(branch);
}

void initialize_lora(lora_branch& branch, lora_init init, std::uint64_t seed, std::uint64_t stream) {
    const auto rank = static_cast<float>(branch.rank());
    if (init == lora_init::gaussian) {
        fill_normal(*branch.a, 1.0f / rank, seed, stream);
    } else {
        random_generator random(seed, stream);
        const float bound = 1.0f / std::sqrt(static_cast<float>(branch.a->shape[1]));
        for (std::size_t i = 0; i < branch.a->size(); ++i)
            branch.a->value[i] = static_cast<float>((2 * random.uniform() - 1) * bound);
    }
    fill_constant(*branch.b, 0);
}

void initialize_embedding_lora(lora_branch& branch, std::uint64_t seed, std::uint64_t stream) {
    fill_constant(*branch.a, 0);
    fill_normal(*branch.b, 1.0f, seed, stream);
}

}  // namespace lowrank
