#include "metrics/glue.hpp"

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/threads.hpp"
#include "formats/tsv.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <numeric>
#include <unordered_map>

namespace lowrank {
namespace {

using enum metric_kind;

const std::vector<std::string_view> binary_labels{"0", "1"};
const std::vector<std::string_view> nli_labels{"entailment", "neutral", "contradiction"};
const std::vector<std::string_view> two_way_nli_labels{"entailment", "not_entailment"};

// Turns label texts into ids. With a closed label set (task mode) unknown labels are
// refused, and a prediction may also name a label by its id; otherwise every new label
// gets the next id. Raw texts seen before are looked up without canonicalising again.
class label_interner {
public:
    explicit label_interner(const std::vector<std::string_view>* closed_set, bool ids_allowed)
        : closed_set_(closed_set), ids_allowed_(ids_allowed) {
        if (closed_set_)
            for (std::string_view label : *closed_set_) names.emplace_back(label);
    }

    // The label's id, or nothing when a closed set does not hold it.
    std::optional<std::uint32_t> id(std::string_view raw) {
        for (const auto& [seen, id] : recent_)
            if (seen == raw) return id;
        if (auto found = by_raw_.find(raw); found != by_raw_.end()) return found->second;
        auto id = canonical_id(canonical_label(raw));
        if (!id) return std::nullopt;
        if (recent_.size() < 16) recent_.emplace_back(raw, *id);
        else by_raw_.emplace(raw, *id);
        return id;
    }

    std::vector<std::string> names;  // id → canonical text

private:
    std::optional<std::uint32_t> canonical_id(const std::string& label) {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == label) return static_cast<std::uint32_t>(i);
        if (closed_set_) {
            auto number = parse_integer(label);
            if (ids_allowed_ && number && *number >= 0 && static_cast<std::size_t>(*number) < names.size())
                return static_cast<std::uint32_t>(*number);
            return std::nullopt;
        }
        names.push_back(label);
        return static_cast<std::uint32_t>(names.size() - 1);
    }

    const std::vector<std::string_view>* closed_set_;
    bool ids_allowed_;
    std::vector<std::pair<std::string_view, std::uint32_t>> recent_;
    std::unordered_map<std::string_view, std::uint32_t> by_raw_;
};

// What to read from one file.
struct side_request {
    std::string path;
    bool has_header = false;
    std::string column = "1";           // header name or 1-based number
    bool whole_line = false;            // the line is the value: refuse lines with tabs
    std::optional<std::string> index_column;
    bool labels = false, numbers = false;
    const std::vector<std::string_view>* closed_labels = nullptr;
    bool label_ids_allowed = false;
    std::string_view task;              // for messages
};

struct side_values {
    std::vector<std::uint32_t> label_ids;
    std::vector<std::string> label_names;
    std::vector<double> numbers;
    std::vector<std::size_t> indices;   // from the index column, when there is one
    std::size_t rows = 0;
    std::size_t first_line = 1;         // line number of the first row
};

std::string label_list(const std::vector<std::string_view>& labels) {
    std::string list;
    for (std::size_t i = 0; i < labels.size(); ++i) list += fmt::format("{}{} ({})", i ? ", " : "", labels[i], i);
    return list;
}

side_values read_side(const side_request& request) {
    tsv_file file(request.path, request.has_header);
    std::size_t column = file.column(request.column);
    std::optional<std::size_t> index_column;
    if (request.index_column) index_column = file.column(*request.index_column);
    label_interner interner(request.closed_labels, request.label_ids_allowed);

    side_values side;
    side.first_line = request.has_header ? 2 : 1;
    std::size_t rows = file.rows_left();
    if (request.labels) side.label_ids.reserve(rows);
    if (request.numbers) side.numbers.reserve(rows);
    if (request.index_column) side.indices.reserve(rows);
    std::vector<std::string_view> fields;
    while (file.next(fields)) {
        if (request.whole_line && fields.size() > 1)
            throw error_at(file.path(), file.line_number(),
                           "holds a tab: a file of one value per line was expected (choose a column with "
                           "--gold-column or --pred-column)");
        std::string_view value = trim(file.field(fields, column));
        if (value.empty())
            throw error_at(file.path(), file.line_number(), fmt::format("empty value in {}", file.column_name(column)));
        if (request.labels) {
            auto id = interner.id(value);
            if (!id)
                throw error_at(file.path(), file.line_number(),
                               fmt::format("unknown label '{}' for task {} (labels: {})", value, request.task,
                                           label_list(*request.closed_labels)));
            side.label_ids.push_back(*id);
        }
        if (request.numbers) {
            auto number = parse_double(value);
            if (!number)
                throw error_at(file.path(), file.line_number(),
                               fmt::format("'{}' in {} is not a number", value, file.column_name(column)));
            if (!std::isfinite(*number))
                throw error_at(file.path(), file.line_number(),
                               fmt::format("'{}' in {} is not a finite number", value, file.column_name(column)));
            side.numbers.push_back(*number);
        }
        if (index_column) {
            std::string_view text = file.field(fields, *index_column);
            auto index = parse_integer(text);
            if (!index || *index < 0)
                throw error_at(file.path(), file.line_number(),
                               fmt::format("index '{}' is not a non-negative integer", text));
            side.indices.push_back(static_cast<std::size_t>(*index));
        }
        ++side.rows;
    }
    if (side.rows == 0) throw error_in(request.path, "no rows");
    side.label_names = std::move(interner.names);
    return side;
}

// Reads the two sides at once, on two threads when there are.
std::pair<side_values, side_values> read_both(const side_request& gold, const side_request& predicted) {
    std::pair<side_values, side_values> sides;
    parallel_for(2, [&](std::size_t begin, std::size_t end) {
        for (std::size_t side = begin; side < end; ++side)
            if (side == 0) sides.first = read_side(gold);
            else sides.second = read_side(predicted);
    });
    return sides;
}

void check_same_row_count(const side_values& gold, const std::string& gold_path, const side_values& predicted,
                          const std::string& predicted_path) {
    if (gold.rows != predicted.rows)
        throw error(fmt::format("different row counts: {} has {}, {} has {}", display_name(gold_path), gold.rows,
                                display_name(predicted_path), predicted.rows));
}

// Puts a submission's rows in gold order using its index column.
void order_by_index(side_values& predicted, const std::string& path, std::size_t gold_rows,
                    const std::string& gold_path) {
    constexpr std::size_t unset = static_cast<std::size_t>(-1);
    std::vector<std::size_t> row_of_index(gold_rows, unset);
    for (std::size_t row = 0; row < predicted.rows; ++row) {
        std::size_t index = predicted.indices[row], line = predicted.first_line + row;
        if (index >= gold_rows)
            throw error_at(path, line, fmt::format("index {} is out of range: {} has {} rows (indices 0 to {})", index,
                                                   display_name(gold_path), gold_rows, gold_rows - 1));
        if (row_of_index[index] != unset)
            throw error_at(path, line, fmt::format("index {} is given twice (first on line {})", index,
                                                   predicted.first_line + row_of_index[index]));
        row_of_index[index] = row;
    }
    for (std::size_t index = 0; index < gold_rows; ++index)
        if (row_of_index[index] == unset)
            throw error_in(path, fmt::format("no prediction for index {} ({} has {} rows, {} has {})", index,
                                             display_name(gold_path), gold_rows, display_name(path), predicted.rows));
    auto permute = [&](auto& values) {
        if (values.empty()) return;
        auto original = values;
        for (std::size_t index = 0; index < gold_rows; ++index) values[index] = original[row_of_index[index]];
    };
    permute(predicted.label_ids);
    permute(predicted.numbers);
}

// Gives both sides' labels one numbering: all labels, sorted numerically when all are
// numbers (as scikit-learn sorts numeric labels), else as text.
void merge_labels(scored_rows& rows, side_values& gold, side_values& predicted) {
    std::vector<std::string> all = gold.label_names;
    for (const auto& name : predicted.label_names)
        if (std::find(all.begin(), all.end(), name) == all.end()) all.push_back(name);
    bool numeric = std::all_of(all.begin(), all.end(), [](const std::string& label) { return parse_double(label); });
    std::sort(all.begin(), all.end(), [&](const std::string& a, const std::string& b) {
        return numeric ? *parse_double(a) < *parse_double(b) : a < b;
    });
    auto renumber = [&](side_values& side, std::vector<std::uint32_t>& target) {
        std::vector<std::uint32_t> global(side.label_names.size());
        for (std::size_t i = 0; i < side.label_names.size(); ++i)
            global[i] = static_cast<std::uint32_t>(std::find(all.begin(), all.end(), side.label_names[i]) - all.begin());
        target.resize(side.label_ids.size());
        for (std::size_t row = 0; row < side.label_ids.size(); ++row) target[row] = global[side.label_ids[row]];
    };
    renumber(gold, rows.gold_labels);
    renumber(predicted, rows.predicted_labels);
    rows.labels = std::move(all);
}

}  // namespace

const std::vector<glue_task>& glue_tasks() {
    static const std::vector<glue_task> tasks{
        {"cola", "CoLA/dev.tsv", false, "2", binary_labels, "1", {mcc}},
        {"sst2", "SST-2/dev.tsv", true, "label", binary_labels, "1", {accuracy}},
        {"mrpc", "MRPC/dev.tsv", true, "Quality", binary_labels, "1", {f1, accuracy}},
        {"stsb", "STS-B/dev.tsv", true, "score", {}, "", {pearson, spearman}},
        {"qqp", "QQP/dev.tsv", true, "is_duplicate", binary_labels, "1", {f1, accuracy}},
        {"mnli-m", "MNLI/dev_matched.tsv", true, "gold_label", nli_labels, "", {accuracy}},
        {"mnli-mm", "MNLI/dev_mismatched.tsv", true, "gold_label", nli_labels, "", {accuracy}},
        {"qnli", "QNLI/dev.tsv", true, "label", two_way_nli_labels, "", {accuracy}},
        {"rte", "RTE/dev.tsv", true, "label", two_way_nli_labels, "", {accuracy}},
        {"wnli", "WNLI/dev.tsv", true, "label", binary_labels, "1", {accuracy}},
        {"ax", "diagnostic/diagnostic-full.tsv", true, "Label", nli_labels, "", {mcc}},
    };
    return tasks;
}

const glue_task* find_glue_task(std::string_view name) {
    if (name == "sst-2") name = "sst2";
    if (name == "sts-b") name = "stsb";
    if (name == "mnli") name = "mnli-m";
    for (const auto& task : glue_tasks())
        if (task.name == name) return &task;
    return nullptr;
}

std::string canonical_label(std::string_view text) {
    text = trim(text);
    if (auto number = parse_double(text); number && std::isfinite(*number)) {
        if (*number == 0) return "0";  // not "-0"
        return fmt::format("{}", *number);
    }
    return std::string(text);
}

scored_rows read_generic_rows(const value_source& gold, const value_source& predicted, bool labels, bool numbers,
                              std::string_view positive_label) {
    auto request = [&](const value_source& source) {
        side_request side;
        side.path = source.path;
        side.has_header = source.column.has_value();
        side.whole_line = !source.column;
        side.column = source.column.value_or("1");
        side.labels = labels;
        side.numbers = numbers;
        return side;
    };
    auto [gold_side, predicted_side] = read_both(request(gold), request(predicted));
    check_same_row_count(gold_side, gold.path, predicted_side, predicted.path);
    scored_rows rows;
    rows.gold_values = std::move(gold_side.numbers);
    rows.predicted_values = std::move(predicted_side.numbers);
    if (labels) {
        merge_labels(rows, gold_side, predicted_side);
        std::string positive = canonical_label(positive_label);
        auto found = std::find(rows.labels.begin(), rows.labels.end(), positive);
        if (found != rows.labels.end()) rows.positive = static_cast<std::uint32_t>(found - rows.labels.begin());
    }
    return rows;
}

scored_rows read_task_rows(const glue_task& task, const std::string& gold_path, const std::string& submission_path) {
    bool regression = task.labels.empty();
    side_request gold;
    gold.path = gold_path;
    gold.has_header = task.gold_has_header;
    gold.column = task.label_column;
    gold.labels = !regression;
    gold.numbers = regression;
    gold.closed_labels = &task.labels;
    gold.task = task.name;
    side_request predicted = gold;
    predicted.path = submission_path;
    predicted.has_header = true;
    predicted.column = "prediction";
    predicted.index_column = "index";
    predicted.label_ids_allowed = true;

    auto [gold_side, predicted_side] = read_both(gold, predicted);
    order_by_index(predicted_side, submission_path, gold_side.rows, gold_path);
    scored_rows rows;
    rows.gold_values = std::move(gold_side.numbers);
    rows.predicted_values = std::move(predicted_side.numbers);
    rows.gold_labels = std::move(gold_side.label_ids);
    rows.predicted_labels = std::move(predicted_side.label_ids);
    for (std::string_view label : task.labels) rows.labels.emplace_back(label);
    for (std::size_t i = 0; i < task.labels.size(); ++i)
        if (task.labels[i] == task.positive) rows.positive = static_cast<std::uint32_t>(i);
    return rows;
}

}  // namespace lowrank
