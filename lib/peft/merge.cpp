#include "peft/merge.hpp"

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/threads.hpp"
#include "nn/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <set>

namespace lowrank {
namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

bool mergeable_dtype(dtype type) { return type == dtype::f32 || type == dtype::f16 || type == dtype::bf16; }

// Plans the changes of one merge, collecting every mismatch before reporting them.
class planner {
public:
    planner(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
            const merge_options& options)
        : base_(base), adapters_(adapters), options_(options) {
        plan_.architecture = read_base_architecture(base);
    }

    merge_plan run();

private:
    // Where a named base tensor goes in the output: the tensor to start from, and whether
    // the output gains it (an LM head untied from its embedding).
    struct target {
        std::string name;
        const safetensors_checkpoint::location* start = nullptr;
        bool added = false;
    };
    std::optional<target> find_target(const std::string& name);
    void plan_adapter(std::size_t number);
    bool plan_lora(std::size_t number, const lora_pair& pair, std::set<std::string>& orientation_overrides);
    bool plan_lora_bias(std::size_t number, const lora_pair& pair, float factor);
    bool plan_replacement(std::size_t number, const full_tensor& tensor);
    bool transposed(const adapter& source, const lora_pair& pair, std::set<std::string>& orientation_overrides) const;
    tensor_change& change_at(const target& where);
    void problem(std::size_t number, std::string what) {
        problems_.push_back(fmt::format("{}: {}", adapters_[number].source.path(), what));
    }

    const safetensors_checkpoint& base_;
    const std::vector<weighted_adapter>& adapters_;
    const merge_options& options_;
    merge_plan plan_;
    std::map<std::string, tensor_change> changes_;
    std::vector<std::string> problems_;
};

std::optional<planner::target> planner::find_target(const std::string& name) {
    auto exists = [&](std::string_view candidate) { return base_.find(candidate) != nullptr; };
    if (auto found = find_base_tensor(name, exists)) return target{*found, base_.find(*found), false};
    // A tied LM head has no tensor of its own: it gets one, starting from the embedding.
    if (!name.ends_with(".weight")) return std::nullopt;
    auto embedding = tied_embedding_of(plan_.architecture, std::string_view(name).substr(0, name.size() - 7));
    if (!embedding) return std::nullopt;
    auto embedding_name = find_base_tensor(*embedding, exists);
    if (!embedding_name) return std::nullopt;
    plan_.untied_embedding = *embedding_name;
    return target{name, base_.find(*embedding_name), true};
}

tensor_change& planner::change_at(const target& where) {
    auto [entry, inserted] = changes_.try_emplace(where.name);
    tensor_change& change = entry->second;
    if (inserted) {
        change.name = where.name;
        change.file = where.start->file;
        change.start = where.start->tensor;
        change.added = where.added;
    }
    return change;
}

// Notes the modules where the architecture overrides the adapter's fan_in_fan_out.
bool planner::transposed(const adapter& source, const lora_pair& pair, std::set<std::string>& orientation_overrides) const {
    bool flip = lora_delta_transposed(plan_.architecture, pair, source.config().fan_in_fan_out);
    if (pair.kind == lora_pair::layer::linear && pair.a->shape.size() == 2 && flip != source.config().fan_in_fan_out)
        orientation_overrides.insert(pair.module);
    return flip;
}

bool planner::plan_lora(std::size_t number, const lora_pair& pair, std::set<std::string>& orientation_overrides) {
    const adapter& source = adapters_[number].source;
    auto where = find_target(pair.module + ".weight");
    if (!where) return false;
    const tensor_info& weight = *where->start->tensor;
    bool flip = transposed(source, pair, orientation_overrides);
    std::vector<std::uint64_t> expected{pair.delta_rows(), pair.delta_columns()};
    if (pair.a->shape.size() == 4) expected = {pair.delta_rows(), pair.a->shape[1], pair.a->shape[2], pair.a->shape[3]};
    if (flip) std::swap(expected[0], expected[1]);
    if (!mergeable_dtype(weight.type)) {
        problem(number, fmt::format("module '{}': base tensor '{}' has dtype {}; only F32, F16 and BF16 merge",
                                    pair.module, where->name, safetensors_name(weight.type)));
    } else if (weight.shape != expected) {
        std::string hint;
        if (expected.size() == 2 && weight.shape == std::vector<std::uint64_t>{expected[1], expected[0]})
            hint = fmt::format(" (it would fit {}: is fan_in_fan_out right for this base?)",
                               flip ? "[out, in]" : "[in, out]");
        problem(number, fmt::format("module '{}': B A is {} ({}), base tensor '{}' in {} is {}{}", pair.module,
                                    shape_text({pair.delta_rows(), pair.delta_columns()}),
                                    flip ? "added transposed" : "added as it is", where->name,
                                    base_.files()[where->start->file].path(), shape_text(weight.shape), hint));
    } else {
        double sign = options_.unmerge ? -1 : 1;
        float factor = static_cast<float>(sign * adapters_[number].weight * pair.scale);
        change_at(*where).terms.push_back({merge_term::kind::lora, number, &pair, nullptr, factor, flip});
        if (pair.bias) plan_lora_bias(number, pair, factor);
        // A GPT-2 LM's head is its token embedding (a classifier has a score head instead).
        if (pair.kind == lora_pair::layer::embedding && !base_.find("score.weight") &&
            tied_embedding_of(plan_.architecture, "lm_head") == where->name)
            plan_.warnings.push_back(fmt::format(
                "{}: module '{}': the LM head is tied to this embedding, so the merge changes the head too, as "
                "PEFT's does (unmerged, the head reads the embedding without the update)", source.path(), pair.module));
    }
    return true;
}

bool planner::plan_lora_bias(std::size_t number, const lora_pair& pair, float factor) {
    auto where = find_target(pair.module + ".bias");
    if (!where) {
        problem(number, fmt::format("module '{}': lora_B.bias, but the base has no tensor '{}.bias'", pair.module,
                                    pair.module));
        return false;
    }
    const tensor_info& bias = *where->start->tensor;
    if (bias.shape != pair.bias->shape || !mergeable_dtype(bias.type)) {
        problem(number, fmt::format("module '{}': lora_B.bias is {}, base tensor '{}' is {} {}", pair.module,
                                    shape_text(pair.bias->shape), where->name, safetensors_name(bias.type),
                                    shape_text(bias.shape)));
        return false;
    }
    change_at(*where).terms.push_back({merge_term::kind::lora_bias, number, &pair, nullptr, factor, false});
    return true;
}

bool planner::plan_replacement(std::size_t number, const full_tensor& tensor) {
    auto where = find_target(tensor.name);
    if (!where) return false;
    const tensor_info& base_tensor = *where->start->tensor;
    if (!mergeable_dtype(base_tensor.type))
        problem(number, fmt::format("tensor '{}': base tensor '{}' has dtype {}; only F32, F16 and BF16 merge",
                                    tensor.name, where->name, safetensors_name(base_tensor.type)));
    else if (base_tensor.shape != tensor.tensor->shape)
        problem(number, fmt::format("tensor '{}' is {}, base tensor '{}' is {}", tensor.name,
                                    shape_text(tensor.tensor->shape), where->name, shape_text(base_tensor.shape)));
    else
        change_at(*where).terms.push_back({merge_term::kind::replacement, number, nullptr, &tensor,
                                           static_cast<float>(adapters_[number].weight), false});
    return true;
}

void planner::plan_adapter(std::size_t number) {
    const adapter& source = adapters_[number].source;
    for (const auto& what : source.problems()) problem(number, what);
    for (const auto& warning : source.warnings()) plan_.warnings.push_back(warning);
    if (source.kind() == adapter::format::peft_lora) {
        for (const auto& reason : lora_config_refusals(source.config(), options_.residual_base)) problem(number, reason);
    } else if (method_adds_modules(source.method())) {
        problem(number, fmt::format("method '{}' adds modules to the model, which no change of the base weights can "
                                    "express; apply it with lora-predict instead", source.method()));
        return;
    } else if (!method_replaces_tensors(source.method())) {
        problem(number, fmt::format("unknown {} '{}' (full, top2, bitfit and head merge)", method_metadata_key,
                                    source.method()));
        return;
    }
    // Adapters are small: every value is checked, so that NaN or an infinity never ends up
    // silently in a merged model.
    for (const auto& tensor : source.weights().tensors())
        if (converts_to_float(tensor.type))
            if (auto where = adapter::non_finite(tensor, source.to_float(tensor))) problem(number, *where);
    const auto& model_type = plan_.architecture.model_type;
    if (source.base_model_type() && model_type && *source.base_model_type() != *model_type)
        problem(number, fmt::format("made for a {} model, but the base is a {} model ({})", *source.base_model_type(),
                                    *model_type, plan_.architecture.config_path));
    if (options_.unmerge && !source.full_tensors().empty())
        problem(number, fmt::format("tensor '{}' (and {} more) replaces a base tensor, which --unmerge cannot undo",
                                    source.full_tensors().front().name, source.full_tensors().size() - 1));

    std::vector<std::string> missing;
    std::set<std::string> orientation_overrides;
    for (const auto& pair : source.lora())
        if (!plan_lora(number, pair, orientation_overrides)) missing.push_back(fmt::format("module '{}'", pair.module));
    if (!options_.unmerge)
        for (const auto& tensor : source.full_tensors())
            if (!plan_replacement(number, tensor)) missing.push_back(fmt::format("tensor '{}'", tensor.name));

    std::size_t targets = source.lora().size() + (options_.unmerge ? 0 : source.full_tensors().size());
    if (!missing.empty() && missing.size() == targets && targets > 1) {
        problem(number, fmt::format("none of its {} modules and tensors is in the base {}: an adapter for another "
                                    "architecture? (the adapter's first is {}, the base's first tensor is '{}')",
                                    targets, base_.path(), missing.front(),
                                    base_.files().front().tensors().empty() ? "" : base_.files().front().tensors().front().name));
    } else {
        for (const auto& name : missing)
            problem(number, fmt::format("{}: the base {} has no tensor for it", name, base_.path()));
    }
    if (!orientation_overrides.empty())
        plan_.warnings.push_back(fmt::format(
            "{}: fan_in_fan_out is {} but the base ({}) stores {} as {}; merging {} as PEFT does", source.path(),
            source.config().fan_in_fan_out ? "true" : "false", *model_type, *orientation_overrides.begin(),
            source.config().fan_in_fan_out ? "Linear [out, in]" : "Conv1D [in, out]",
            orientation_overrides.size() > 1 ? fmt::format("those {} modules so", orientation_overrides.size())
                                             : "it so"));
}

merge_plan planner::run() {
    for (std::size_t number = 0; number < adapters_.size(); ++number) plan_adapter(number);
    if (!problems_.empty())
        throw error(fmt::format("{} problem{}: {}", problems_.size(), problems_.size() == 1 ? "" : "s",
                                join(problems_, "; ")));
    for (auto& [name, change] : changes_) plan_.changes.push_back(std::move(change));
    std::sort(plan_.changes.begin(), plan_.changes.end(), [](const tensor_change& a, const tensor_change& b) {
        if (a.file != b.file) return a.file < b.file;
        if (a.added != b.added) return b.added;
        return a.added ? a.name < b.name : a.start->begin < b.start->begin;
    });
    if (plan_.untied_embedding && !base_.is_folder() && plan_.architecture.config_path != base_.files().front().path())
        plan_.warnings.push_back(fmt::format(
            "lm_head gets a tensor of its own: the output's __metadata__ config says tie_word_embeddings false, but {} "
            "still ties it; a config.json used with the output must say false too",
            plan_.architecture.config_path));
    if (plan_.untied_embedding && !plan_.untied_embedding->starts_with("transformer."))
        plan_.warnings.push_back(fmt::format(
            "lm_head gets a tensor of its own, untied from '{}'; the base's names lack GPT2LMHeadModel's "
            "'transformer.' prefix, so transformers will load the output as a GPT2Model and ignore lm_head.weight",
            *plan_.untied_embedding));
    return std::move(plan_);
}

}  // namespace

std::pair<std::string, double> parse_adapter_operand(std::string_view operand) {
    std::size_t colon = operand.rfind(':');
    if (colon != std::string_view::npos) {
        if (auto weight = parse_double(operand.substr(colon + 1))) {
            if (!std::isfinite(*weight))
                throw usage_error(fmt::format("adapter weight in '{}' is not a finite number", operand));
            if (colon == 0) throw usage_error(fmt::format("no adapter before the weight in '{}'", operand));
            return {std::string(operand.substr(0, colon)), *weight};
        }
    }
    if (operand.empty()) throw usage_error("an empty adapter operand");
    return {std::string(operand), 1.0};
}

merge_plan plan_merge(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                      const merge_options& options) {
    return planner(base, adapters, options).run();
}

// ------------------------------------------------------------------------ computing

void tensor_merger::load(const adapter& source, const tensor_info& tensor, large_vector<float>& target) {
    if (target.size() < tensor.element_count()) target.resize(tensor.element_count());
    convert_to_float(tensor.type, source.weights().bytes(tensor).data(), tensor.element_count(), target.data());
    source.weights().release(tensor);
}

// delta [rows, columns] += factor · B [rows, r] · A [r, columns], or, transposed,
// delta [columns, rows] += factor · Aᵀ [columns, r] · Bᵀ [r, rows]; the first term sets
// delta instead (β = 0), which saves clearing it.
void tensor_merger::add_lora(const merge_term& term, bool first) {
    const adapter& source = adapters_[term.source].source;
    const lora_pair& pair = *term.pair;
    load(source, *pair.a, a_);
    load(source, *pair.b, b_);
    std::size_t rows = pair.delta_rows(), columns = pair.delta_columns(), rank = pair.rank;
    gemm product;
    if (!term.transposed)
        product = {rows, columns, rank, b_.data(), rank, false, a_.data(), columns, false, delta_.data(), columns};
    else
        product = {columns, rows, rank, a_.data(), columns, true, b_.data(), rank, true, delta_.data(), rows};
    product.alpha = term.factor;
    product.beta = first ? 0.0f : 1.0f;
    matmul(product);
}

void tensor_merger::add_lora_bias(const merge_term& term) {
    load(adapters_[term.source].source, *term.pair->bias, b_);
    for (std::size_t i = 0; i < count_; ++i) delta_[i] += term.factor * b_[i];
}

// delta += weight · (T − W0), in double so that one replacement of weight 1 is exact.
void tensor_merger::add_replacement(const merge_term& term) {
    load(adapters_[term.source].source, *term.replacement->tensor, a_);
    double weight = term.factor;
    parallel_for(count_, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            delta_[i] = static_cast<float>(delta_[i] + weight * (static_cast<double>(a_[i]) - base_values_[i]));
    });
}

void tensor_merger::compute(const tensor_change& change) {
    const safetensors_file& file = base_.files()[change.file];
    const tensor_info& start = *change.start;
    count_ = start.element_count();
    for (auto* buffer : {&base_values_, &delta_})
        if (buffer->size() < count_) buffer->resize(count_);
    bool lora_first = change.terms.front().what == merge_term::kind::lora;
    std::span<const std::byte> bytes = file.bytes(start);
    parallel_for(count_, [&](std::size_t begin, std::size_t end) {
        std::size_t element = dtype_size(start.type);
        convert_to_float(start.type, bytes.data() + begin * element, end - begin, base_values_.data() + begin);
        if (!lora_first) std::fill(delta_.data() + begin, delta_.data() + end, 0.0f);
    });
    file.release(start);  // read once: keep resident memory near one tensor
    for (std::size_t i = 0; i < change.terms.size(); ++i) {
        const merge_term& term = change.terms[i];
        if (term.what == merge_term::kind::lora) add_lora(term, i == 0);
        if (term.what == merge_term::kind::lora_bias) add_lora_bias(term);
        if (term.what == merge_term::kind::replacement) add_replacement(term);
    }
    exact_replacement_ = change.terms.size() == 1 && change.terms[0].what == merge_term::kind::replacement &&
                         change.terms[0].factor == 1.0f;
}

void tensor_merger::encode(dtype type, std::span<std::byte> bytes) const {
    constexpr std::size_t chunk = 4096;
    parallel_for((count_ + chunk - 1) / chunk, [&](std::size_t first, std::size_t last) {
        float merged[chunk];
        for (std::size_t block = first; block < last; ++block) {
            std::size_t begin = block * chunk, size = std::min(chunk, count_ - begin);
            const float* values = a_.data() + begin;
            if (!exact_replacement_) {
                const float* base = base_values_.data() + begin;
                const float* delta = delta_.data() + begin;
#pragma omp simd
                for (std::size_t i = 0; i < size; ++i) merged[i] = base[i] + delta[i];
                values = merged;
            }
            convert_from_float(values, size, type, bytes.data() + begin * dtype_size(type));
        }
    });
}

// ------------------------------------------------------------------------ describing

std::vector<plan_row> describe_plan(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                                    const merge_plan& plan) {
    std::vector<plan_row> rows;
    tensor_merger merger(base, adapters);
    for (const auto& change : plan.changes) {
        merger.compute(change);
        plan_row row;
        row.tensor = change.name;
        row.file = base.file_names()[change.file];
        row.dtype = safetensors_name(change.start->type);
        row.shape = fmt::format("{}", fmt::join(change.start->shape, "x"));
        std::vector<std::string> updates;
        if (change.added) updates.push_back(fmt::format("untied-from:{}", change.start->name));
        for (const auto& term : change.terms) {
            const char* kind = term.what == merge_term::kind::lora        ? "lora"
                               : term.what == merge_term::kind::lora_bias ? "lora-bias"
                                                                          : "replace";
            updates.push_back(fmt::format("{}:{}", kind, term.source + 1));
        }
        row.update = join(updates, ",");
        double base_sum = 0, delta_sum = 0;
        for (float value : merger.base_values()) base_sum += static_cast<double>(value) * value;
        for (float value : merger.delta()) {
            delta_sum += static_cast<double>(value) * value;
            row.max_delta = std::max(row.max_delta, static_cast<double>(std::fabs(value)));
        }
        row.base_norm = std::sqrt(base_sum);
        row.delta_norm = std::sqrt(delta_sum);
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace lowrank
