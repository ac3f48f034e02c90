// Inside the train module: the objectives of each model kind (objective_text.cpp: gpt2's
// lm, lm-pairs, classify and regress; objective_vision.cpp: vit's classify, clip), and what
// they share.
#pragma once

#include "metrics/metrics.hpp"
#include "train/objective.hpp"

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

std::unique_ptr<objective> make_text_objective(gpt2_model& model, const objective_settings& settings,
                                               const std::vector<std::string>& train,
                                               const std::vector<std::string>& dev);
std::unique_ptr<objective> make_vision_objective(model& target, const objective_settings& settings,
                                                 const std::vector<std::string>& train,
                                                 const std::vector<std::string>& dev);

// The metric of class predictions (acc, f1 with class 1 positive, mcc) or of regression
// predictions (pearson, spearman).
double classification_metric(const std::string& metric, std::span<const std::int32_t> gold,
                             std::span<const std::int32_t> predicted, std::size_t classes);
double regression_metric(const std::string& metric, std::span<const float> gold, std::span<const float> predicted);

// The names of the classes by id: settings.label_names, else the config's id2label.
std::vector<std::string> class_names(const objective_settings& settings, const model_config& config);

// Checks that two operands hold as many rows as each other.
void check_same_rows(const std::string& first, std::size_t first_rows, const std::string& second,
                     std::size_t second_rows, std::string_view what);

}  // namespace lowrank
