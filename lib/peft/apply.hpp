// Applying adapters to a model in memory, unmerged (lora-predict): each LoRA pair of a PEFT
// adapter becomes a branch on its module's linear layer (nn/lora.hpp: h = W0 x + s·B A x) or
// token embedding,
// and the tensors an adapter trained in full (modules_to_save, biases, lora-train's full,
// top2 and bitfit tensors) replace the model's parameters of the same name. lora-train's
// methods that add modules (adapters, prefix vectors) first declare them (attach_modules).
#pragma once

#include "nn/layers.hpp"
#include "nn/model.hpp"
#include "peft/adapter.hpp"

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

// Before the parameters are allocated: declares a branch, tagged `tag` (parameters
// <module>.lora_A.<tag>.weight and .lora_B.<tag>.weight, or .lora_embedding_A.<tag> and
// .lora_embedding_B.<tag>), on the layer of each LoRA pair; `sites` maps module paths to
// layers (a base name that differs by a wrapper prefix, as GPT-2's "h.0..." for
// "transformer.h.0...", is found). Refuses, naming the adapter and the module, what a
// branch cannot be: Conv2d LoRA, lora_B biases, DoRA, fields
// or initialisations lora_config_refusals names, the adapter's problems(), a module with no
// layer, shapes that do not fit, whole tensors that replace no parameter (a method's that
// adds modules, unless attach_modules declared them). Returns the declared parameters.
//
// A routed adapter, one of several serving one batch, gets route number `route`: its
// branches add only to the rows of that route (lora_branch::route), and its whole tensors,
// which can then only be applied per row where the model computes them per row, must
// replace parameters of `head` (model::head_parameters); others are refused by name.
std::vector<const parameter*> attach_adapter(const adapter& source, parameter_set& parameters,
                                             const lora_sites& sites, const std::string& tag,
                                             std::size_t route = lora_branch::every_row,
                                             std::span<parameter* const> head = {});

// A tensor an adapter trained in full, for the parameter it replaces.
struct replacement {
    parameter* target = nullptr;
    std::shared_ptr<const std::vector<float>> values;
};

// Before the parameters are allocated, for a trained-tensor file of a method that adds
// modules (adapter-h, adapter-l: bottleneck adapters in every block; prefix-embed,
// prefix-layer: prefix and infix vectors, gpt2 only): declares them on the model, sized
// from the file's tensors, so that attach_adapter and load_adapter take the file's tensors
// as they take replacements. Refuses, naming the file, tensors that do not fit the method
// or the model. Returns the declared parameters.
std::vector<const parameter*> attach_modules(const adapter& source, model& target);

// After allocation, and after the base model is loaded: fills the branches attach_adapter
// declared and replaces parameters with the adapter's whole tensors.
void load_adapter(const adapter& source, parameter_set& parameters, const std::string& tag);
// The same for a routed adapter, whose whole tensors are returned rather than applied: the
// caller swaps them in for the adapter's rows (replacement_scope).
std::vector<replacement> load_routed_adapter(const adapter& source, parameter_set& parameters,
                                             const std::string& tag);

// While alive, each replacement's parameter reads the replacement's values; the values it
// read before come back at the end of the scope. For one route's rows of a batch.
class replacement_scope {
public:
    explicit replacement_scope(std::span<const replacement> replacements);
    ~replacement_scope();
    replacement_scope(const replacement_scope&) = delete;
    replacement_scope& operator=(const replacement_scope&) = delete;

private:
    std::vector<std::pair<parameter*, float*>> saved_;
};

}  // namespace lowrank
