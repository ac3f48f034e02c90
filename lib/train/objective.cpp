#include "core/error.hpp"
#include "train/objective_parts.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace lowrank {

std::optional<contrastive_kind> contrastive_from_name(std::string_view name) {
    if (name == "infonce") return contrastive_kind::infonce;
    if (name == "triplet") return contrastive_kind::triplet;
    if (name == "npair") return contrastive_kind::npair;
    if (name == "contrastive") return contrastive_kind::contrastive;
    return std::nullopt;
}

std::vector<std::string> task_metrics(task_kind task) {
    switch (task) {
    case task_kind::lm:
    case task_kind::lm_pairs: return {"loss"};
    case task_kind::classify: return {"acc", "f1", "mcc", "loss"};
    case task_kind::regress: return {"pearson", "spearman", "loss"};
    case task_kind::clip: return {"acc", "loss"};
    }
    return {};
}

std::string task_operands(task_kind task, bool loss_mask) {
    switch (task) {
    case task_kind::lm: return "TOKENS";
    case task_kind::lm_pairs: return loss_mask ? "IDS MASK" : "X Y";
    case task_kind::classify:
    case task_kind::regress: return "INPUT LABELS";
    case task_kind::clip: return "PATCHES CAPTIONS";
    }
    return "";
}

double classification_metric(const std::string& metric, std::span<const std::int32_t> gold,
                             std::span<const std::int32_t> predicted, std::size_t classes) {
    scored_rows rows;
    for (std::size_t c = 0; c < classes; ++c) rows.labels.push_back(std::to_string(c));
    rows.gold_labels.assign(gold.begin(), gold.end());
    rows.predicted_labels.assign(predicted.begin(), predicted.end());
    if (classes > 1) rows.positive = 1;
    return compute_metrics({*metric_from_name(metric)}, rows)[0];
}

double regression_metric(const std::string& metric, std::span<const float> gold, std::span<const float> predicted) {
    scored_rows rows;
    rows.gold_values.assign(gold.begin(), gold.end());
    rows.predicted_values.assign(predicted.begin(), predicted.end());
    return compute_metrics({*metric_from_name(metric)}, rows)[0];
}

std::vector<std::string> class_names(const objective_settings& settings, const model_config& config) {
    if (settings.label_names.empty()) return config.labels;
    if (settings.label_names.size() != config.label_count())
        throw usage_error(fmt::format("--label-names gives {} labels, the model has {}", settings.label_names.size(),
                                      config.label_count()));
    return settings.label_names;
}

void check_same_rows(const std::string& first, std::size_t first_rows, const std::string& second,
                     std::size_t second_rows, std::string_view what) {
    if (first_rows != second_rows)
        throw error_in(second, fmt::format("{} {} for the {} rows of {}", second_rows, what, first_rows,
                                           display_name(first)));
}

std::unique_ptr<objective> make_objective(model& target, const objective_settings& settings,
                                          const std::vector<std::string>& train, const std::vector<std::string>& dev) {
    const std::size_t operands = settings.task == task_kind::lm ? 1 : 2;
    const std::string expected = task_operands(settings.task, settings.loss_mask);
    if (train.size() != operands)
        throw usage_error(fmt::format("--task {} takes {} operand{}: {}", task_name(settings.task), operands,
                                      operands == 1 ? "" : "s", expected));
    if (!dev.empty() && dev.size() != operands)
        throw usage_error(fmt::format("--dev: --task {} takes {} dev file{} ({}), in that order", task_name(settings.task),
                                      operands, operands == 1 ? "" : "s", expected));
    auto metrics = task_metrics(settings.task);
    if (!settings.metric.empty() && std::find(metrics.begin(), metrics.end(), settings.metric) == metrics.end())
        throw usage_error(fmt::format("--metric {}: --task {} offers {}", settings.metric, task_name(settings.task),
                                      fmt::join(metrics, ", ")));
    const bool text_task = settings.task == task_kind::lm || settings.task == task_kind::lm_pairs;
    if (text_task && !target.gpt2)
        throw usage_error(fmt::format("--task {} needs a gpt2 language model, not a {} model", task_name(settings.task),
                                      architecture_name(target.arch())));
    if ((settings.task == task_kind::lm || settings.task == task_kind::lm_pairs) &&
        target.config.head != head_kind::language_model)
        throw usage_error(fmt::format("--task {} needs a model with a language-modelling head; this one has a "
                                      "classification head", task_name(settings.task)));
    if (settings.task == task_kind::clip && !target.clip)
        throw usage_error(fmt::format("--task clip needs a clip model, not a {} model", architecture_name(target.arch())));
    if (target.clip && settings.task != task_kind::clip)
        throw usage_error(fmt::format("a clip model trains with --task clip, not {}", task_name(settings.task)));
    if (settings.task == task_kind::classify || settings.task == task_kind::regress) {
        const head_kind wanted = settings.task == task_kind::classify ? head_kind::classification : head_kind::regression;
        if (target.config.head != wanted)
            throw usage_error(fmt::format(
                "--task {} needs a model with a {} head (model-init --labels {}); this one has {}",
                task_name(settings.task), settings.task == task_kind::classify ? "classification" : "regression",
                settings.task == task_kind::classify ? "N" : "1",
                target.config.head == head_kind::language_model ? "a language-modelling head"
                : target.config.head == head_kind::regression   ? "a regression head"
                                                                : "a classification head"));
    }
    if (target.gpt2) return make_text_objective(*target.gpt2, settings, train, dev);
    return make_vision_objective(target, settings, train, dev);
}

}  // namespace lowrank
