// The GLUE tasks: where each dev file keeps its gold labels, the label set, the official
// metrics; and the readers that turn gold and prediction files into scored rows.
#pragma once

#include "metrics/metrics.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct glue_task {
    std::string_view name;          // "mnli-m"
    std::string_view gold_file;     // the dev file in GLUE's distribution, "MNLI/dev_matched.tsv"
    bool gold_has_header;           // CoLA's dev.tsv has none
    std::string_view label_column;  // header name, or a 1-based number for header-less files
    // Labels in the order of their ids in Hugging Face's `glue` datasets; empty for
    // regression. Predictions may give a label by name or by that id.
    std::vector<std::string_view> labels;
    std::string_view positive;      // the positive label for F1
    std::vector<metric_kind> metrics;
};

const std::vector<glue_task>& glue_tasks();
// By name ("cola", "sst2", "mnli-m"...), also "sst-2", "sts-b" and "mnli" (matched).
const glue_task* find_glue_task(std::string_view name);

// Where one side's values are: a file, and a column (header name or 1-based number) of a
// TSV whose first row is a header; without a column, one value per line and no header.
struct value_source {
    std::string path;
    std::optional<std::string> column;
};

// The label text used for comparisons: trimmed, and numbers written in their shortest form
// so that "1", "1.0" and "01" are one label.
std::string canonical_label(std::string_view text);

// Generic mode: gold and predictions row by row. Reads labels and/or numbers, as the
// metrics need. Labels are ordered numerically if all are numbers, else as text.
scored_rows read_generic_rows(const value_source& gold, const value_source& predicted, bool labels, bool numbers,
                              std::string_view positive_label);

// Task mode: the task's dev file as GLUE distributes it, and a submission file
// (`index<TAB>prediction`, with a header row) whose index says which gold row it predicts.
scored_rows read_task_rows(const glue_task& task, const std::string& gold_path, const std::string& submission_path);

}  // namespace lowrank
