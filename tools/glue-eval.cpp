// glue-eval: the GLUE metrics (accuracy, F1, Matthews correlation, Pearson, Spearman) of
// predictions against gold labels, for any pair of files or for a GLUE task's own files.
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/text.hpp"
#include "metrics/classification.hpp"
#include "metrics/glue.hpp"

#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <numeric>

using namespace lowrank;

namespace {

struct settings {
    std::string task_name, metric_list = "acc", gold_column, pred_column, positive = "1";
    bool json = false, confusion = false;
    int digits = 6;
    std::size_t bootstrap_resamples = 0;
};

struct report {
    const glue_task* task = nullptr;
    std::vector<metric_kind> metrics;
    std::vector<double> values;
    std::optional<double> score;
    std::vector<confidence_interval> intervals;  // one per metric, then the score's
    std::optional<confusion_matrix> confusion;
};

std::vector<metric_kind> parse_metric_list(const std::string& list) {
    std::vector<metric_kind> metrics;
    for (std::string_view name : split(list, ',')) {
        auto kind = metric_from_name(trim(name));
        if (!kind)
            throw usage_error(fmt::format("unknown metric '{}' (metrics: acc, f1, mcc, pearson, spearman)", name));
        metrics.push_back(*kind);
    }
    return metrics;
}

// GLUE's score for a task: the mean of its metrics, in percent.
double glue_score(const std::vector<double>& values) {
    return 100.0 * std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

std::string format_value(double value, int digits) {
    return std::isnan(value) ? "nan" : fmt::format("{:.{}f}", value, digits);
}

std::string text_report(const report& result, const scored_rows& rows, int digits) {
    std::string text;
    auto line = [&](std::string_view name, double value, std::size_t interval) {
        text += fmt::format("{}\t{}", name, format_value(value, digits));
        if (!result.intervals.empty())
            text += fmt::format("\t{}\t{}", format_value(result.intervals[interval].low, digits),
                                format_value(result.intervals[interval].high, digits));
        text += '\n';
    };
    for (std::size_t i = 0; i < result.metrics.size(); ++i) line(metric_name(result.metrics[i]), result.values[i], i);
    if (result.score) line("score", *result.score, result.metrics.size());
    if (result.confusion) {
        text += "\ngold\\predicted";
        for (const auto& label : rows.labels) text += "\t" + label;
        text += '\n';
        for (std::size_t gold = 0; gold < rows.labels.size(); ++gold) {
            text += rows.labels[gold];
            for (std::size_t predicted = 0; predicted < rows.labels.size(); ++predicted)
                text += fmt::format("\t{}", result.confusion->at(gold, predicted));
            text += '\n';
        }
    }
    return text;
}

std::string json_report(const report& result, const scored_rows& rows) {
    nlohmann::ordered_json json;
    if (result.task) json["task"] = result.task->name;
    json["rows"] = rows.size();
    json["metrics"] = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < result.metrics.size(); ++i)
        json["metrics"][std::string(metric_name(result.metrics[i]))] = result.values[i];
    if (result.score) json["score"] = *result.score;
    if (!result.intervals.empty()) {
        auto& intervals = json["ci95"] = nlohmann::ordered_json::object();
        for (std::size_t i = 0; i < result.intervals.size(); ++i) {
            std::string name = i < result.metrics.size() ? std::string(metric_name(result.metrics[i])) : "score";
            intervals[name] = {result.intervals[i].low, result.intervals[i].high};
        }
    }
    if (result.confusion) {
        auto& confusion = json["confusion"];
        confusion["labels"] = rows.labels;
        confusion["matrix"] = nlohmann::ordered_json::array();
        for (std::size_t gold = 0; gold < rows.labels.size(); ++gold) {
            std::vector<std::uint64_t> row;
            for (std::size_t predicted = 0; predicted < rows.labels.size(); ++predicted)
                row.push_back(result.confusion->at(gold, predicted));
            confusion["matrix"].push_back(row);
        }
    }
    return json.dump() + "\n";
}

void evaluate(const command_line& cli, const settings& options, const std::vector<std::string>& files) {
    report result;
    scored_rows rows;
    if (!options.task_name.empty()) {
        result.task = find_glue_task(options.task_name);
        if (!result.task) {
            std::vector<std::string> names;
            for (const auto& task : glue_tasks()) names.emplace_back(task.name);
            throw usage_error(fmt::format("unknown task '{}' (tasks: {})", options.task_name, join(names, ", ")));
        }
        if (cli.given("metric") || cli.given("gold-column") || cli.given("pred-column") || cli.given("positive"))
            throw usage_error("--task sets the metrics, columns and positive label; do not combine it with "
                              "--metric, --gold-column, --pred-column or --positive");
        result.metrics = result.task->metrics;
        rows = read_task_rows(*result.task, files[0], files[1]);
    } else {
        result.metrics = parse_metric_list(options.metric_list);
        bool labels = false, numbers = false;
        for (metric_kind kind : result.metrics) (is_regression_metric(kind) ? numbers : labels) = true;
        if (options.confusion) labels = true;
        auto source = [](const std::string& path, const std::string& column) {
            return value_source{path, column.empty() ? std::nullopt : std::optional(column)};
        };
        rows = read_generic_rows(source(files[0], options.gold_column), source(files[1], options.pred_column), labels,
                                 numbers, options.positive);
    }
    if (options.confusion) {
        if (rows.labels.empty()) throw usage_error("--confusion needs a classification task");
        result.confusion = count_confusion(rows.gold_labels, rows.predicted_labels, rows.labels.size());
    }

    result.values = compute_metrics(result.metrics, rows);
    if (result.task) result.score = glue_score(result.values);
    for (const auto& warning : metric_warnings(result.metrics, rows, result.values,
                                               result.task ? result.task->positive : options.positive))
        cli.warn(warning);

    if (options.bootstrap_resamples > 0) {
        bool with_score = result.score.has_value();
        result.intervals = bootstrap(rows.size(), options.bootstrap_resamples, cli.common().seed, 0.95,
                                     [&](std::span<const std::uint32_t> resample) {
                                         auto values = compute_metrics(result.metrics, rows, resample);
                                         if (with_score) values.push_back(glue_score(values));
                                         return values;
                                     });
    }

    output_stream out(cli.common().output, output_kind::text);
    out.write(options.json ? json_report(result, rows) : text_report(result, rows, options.digits));
    out.commit();
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("glue-eval", "GOLD PRED",
                     "Compute GLUE metrics of the predictions in PRED against the gold labels in GOLD. "
                     "Generic mode: one value per line in each file (or a column of a TSV file with a header "
                     "row), metrics chosen with --metric. Task mode (--task): GOLD is the task's dev file as "
                     "GLUE distributes it, PRED a submission file (index<TAB>prediction with a header row), "
                     "and the task's official metrics and GLUE score are printed. Output: one line per metric, "
                     "name<TAB>value.",
                     output_option | threads_option | seed_option);
    settings options;
    std::vector<std::string> files;
    cli.options().add_options()
        ("task", value(&options.task_name, "TASK"),
         "a GLUE task: cola, sst2, mrpc, stsb, qqp, mnli-m, mnli-mm, qnli, rte, wnli, ax")
        ("metric", value(&options.metric_list, "LIST")->default_value("acc"),
         "comma-separated metrics: acc, f1, mcc, pearson, spearman")
        ("gold-column", value(&options.gold_column, "COLUMN"),
         "read GOLD as a TSV with a header row and take this column (name or 1-based number)")
        ("pred-column", value(&options.pred_column, "COLUMN"),
         "read PRED as a TSV with a header row and take this column (name or 1-based number)")
        ("positive", value(&options.positive, "LABEL")->default_value("1"), "the positive label for f1")
        ("bootstrap", value(&options.bootstrap_resamples, "N")->default_value(0),
         "add a 95% confidence interval per metric from N bootstrap resamples (seeded by --seed)")
        ("confusion", flag(&options.confusion), "also print the confusion matrix (rows: gold, columns: predicted)")
        ("json", flag(&options.json), "print one JSON object instead of lines")
        ("digits", value(&options.digits, "N")->default_value(6), "digits after the decimal point");
    cli.operands(files, 2, 2);
    cli.epilog("Examples:\n"
               "  glue-eval --metric mcc,acc gold.txt pred.txt\n"
               "  glue-eval --task mrpc MRPC/dev.tsv MRPC.tsv\n"
               "  glue-eval --task stsb --bootstrap 1000 --json STS-B/dev.tsv STS-B.tsv");
    return cli.run(argc, argv, [&] {
        if (options.digits < 0 || options.digits > 17) throw usage_error("--digits must be between 0 and 17");
        if (files[0] == "-" && files[1] == "-") throw usage_error("GOLD and PRED cannot both be standard input");
        evaluate(cli, options, files);
    });
}
