// gpt2's objectives: lm on a token stream, lm-pairs, classify and regress on rows of ids.
#include "core/error.hpp"
#include "core/random.hpp"
#include "train/data.hpp"
#include "train/objective_parts.hpp"
#include "train/order.hpp"
#include "train/step.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>

namespace lowrank {
namespace {

// The streams of the seed that place LM windows: stream 2^62 + p for stream position p.
constexpr std::uint64_t window_streams = std::uint64_t{1} << 62;

// ------------------------------------------------------------------------------------ lm

class lm_objective : public objective {
public:
    lm_objective(gpt2_model& model, const objective_settings& settings, const std::string& train,
                 const std::vector<std::string>& dev)
        : pass_(model), train_(train, model.config().text.vocab_size), seed_(settings.seed) {
        metric_ = "loss";
        if (model.infix_length() > 0)
            throw usage_error("--infix-length: a token stream has no prompt to put the infix after; use --task "
                              "lm-pairs");
        const std::size_t room = model.config().text.max_positions - model.prefix_length();
        context_ = settings.context ? settings.context : room;
        if (context_ > room)
            throw usage_error(fmt::format("--context {}: the model has {} positions{}", context_,
                                          model.config().text.max_positions,
                                          model.prefix_length() ? fmt::format(", {} of them for the prefix",
                                                                              model.prefix_length())
                                                                : ""));
        if (train_.size() < context_ + 1)
            throw error_in(train, fmt::format("{} tokens, too few for one window of {} tokens and the one after "
                                              "(--context sets the window)", train_.size(), context_));
        if (!dev.empty()) {
            dev_.emplace(dev[0], model.config().text.vocab_size);
            if (dev_->size() < 2) throw error_in(dev[0], "fewer than 2 tokens: nothing to predict");
        }
    }

    std::size_t examples() const override { return (train_.size() - 1) / context_; }

    pass_result accumulate(std::uint64_t first, std::size_t count, float scale, std::uint64_t dropout_seed) override {
        const std::size_t T = context_;
        ids_.resize(count * T);
        targets_.resize(count * T);
        window_.resize(T + 1);
        for (std::size_t i = 0; i < count; ++i) {
            std::size_t start = random_generator(seed_, window_streams + first + i).below(train_.size() - T);
            train_.copy(start, T + 1, window_.data());
            std::copy_n(window_.begin(), T, ids_.begin() + static_cast<std::ptrdiff_t>(i * T));
            std::copy_n(window_.begin() + 1, T, targets_.begin() + static_cast<std::ptrdiff_t>(i * T));
        }
        auto result = pass_.accumulate({ids_.data(), targets_.data(), nullptr, count, T}, scale, dropout_seed);
        return {result.loss, count * T};
    }

    // The mean loss over consecutive windows of the dev stream.
    double evaluate(std::size_t batch_size) override {
        const std::size_t T = std::min(context_, dev_->size() - 1), windows = (dev_->size() - 1) / T;
        double sum = 0;
        std::size_t counted = 0;
        for (std::size_t begin = 0; begin < windows; begin += batch_size) {
            std::size_t count = std::min(batch_size, windows - begin);
            ids_.resize(count * T);
            targets_.resize(count * T);
            for (std::size_t i = 0; i < count; ++i) {
                dev_->copy((begin + i) * T, T, ids_.data() + i * T);
                dev_->copy((begin + i) * T + 1, T, targets_.data() + i * T);
            }
            auto loss = pass_.evaluate({ids_.data(), targets_.data(), nullptr, count, T});
            sum += loss.sum;
            counted += loss.counted;
        }
        return sum / static_cast<double>(counted);
    }

private:
    lm_pass pass_;
    token_stream train_;
    std::optional<token_stream> dev_;
    std::uint64_t seed_;
    std::size_t context_ = 0;
    std::vector<std::int32_t> ids_, targets_, window_;
};

// ------------------------------------------------------------- rows of ids: pairs, labels

// Rows for gpt2's sequence tasks: ids (N, T) right-padded, each row's length and where its
// infix goes (after x in a pair, else after the tokens), which tokens the LM loss counts
// (lm-pairs), and the labels (classify, regress).
struct sequence_set {
    std::string path;
    std::size_t rows = 0, time = 0;
    std::vector<std::int32_t> ids, lengths, splits;
    std::vector<std::uint8_t> counted;  // lm-pairs: (N, T)
    label_column labels;
};

// The rows of one file as they are: its ids, lengths and path.
sequence_set rows_as_read(const std::string& path, token_rows ids) {
    sequence_set set;
    set.path = path;
    set.rows = ids.rows;
    set.time = ids.time;
    set.ids = std::move(ids.ids);
    set.lengths = std::move(ids.lengths);
    return set;
}

// X Y: row b is x_b's tokens then y_b's; the loss counts y's.
sequence_set read_pairs(const std::string& x_path, const std::string& y_path, const text_tower_config& config,
                        std::optional<std::int32_t> pad_id) {
    token_rows x = read_token_rows(x_path, config, pad_id), y = read_token_rows(y_path, config, pad_id);
    check_same_rows(x_path, x.rows, y_path, y.rows, "rows of continuations");
    sequence_set set;
    set.path = x_path;
    set.rows = x.rows;
    set.time = x.time + y.time;
    set.ids.assign(set.rows * set.time, 0);
    set.counted.assign(set.rows * set.time, 0);
    for (std::size_t b = 0; b < set.rows; ++b) {
        const std::size_t lx = static_cast<std::size_t>(x.lengths[b]), ly = static_cast<std::size_t>(y.lengths[b]);
        std::int32_t* row = set.ids.data() + b * set.time;
        std::copy_n(x.row(b), lx, row);
        std::copy_n(y.row(b), ly, row + lx);
        for (std::size_t t = std::max<std::size_t>(lx, 1); t < lx + ly; ++t) set.counted[b * set.time + t] = 1;
        set.lengths.push_back(static_cast<std::int32_t>(lx + ly));
        set.splits.push_back(static_cast<std::int32_t>(lx));
    }
    return set;
}

// IDS MASK: the mask (N, T) is 1 on the tokens the loss counts; the infix goes before the first.
sequence_set read_masked(const std::string& ids_path, const std::string& mask_path, const text_tower_config& config,
                         std::optional<std::int32_t> pad_id) {
    token_rows ids = read_token_rows(ids_path, config, pad_id);
    npy_array mask(mask_path);
    if (mask.shape() != std::vector<std::size_t>{ids.rows, ids.time})
        throw error_in(mask_path, fmt::format("a loss mask of shape ({}), the ids are ({}, {})",
                                              fmt::join(mask.shape(), ", "), ids.rows, ids.time));
    auto values = mask.to_int64();
    sequence_set set = rows_as_read(ids_path, std::move(ids));
    set.counted.assign(values.size(), 0);
    for (std::size_t b = 0; b < set.rows; ++b) {
        std::int32_t split = set.lengths[b];
        for (std::size_t t = 0; t < set.time; ++t) {
            std::int64_t value = values[b * set.time + t];
            if (value != 0 && value != 1)
                throw error_in(mask_path, fmt::format("row {}, position {}: {} in a loss mask (0 or 1)", b, t, value));
            if (value == 1 && t < static_cast<std::size_t>(set.lengths[b])) {
                split = std::min(split, static_cast<std::int32_t>(t));
                if (t > 0) set.counted[b * set.time + t] = 1;
            }
        }
        set.splits.push_back(split);
    }
    return set;
}

sequence_set read_labelled(const std::string& ids_path, const std::string& labels_path,
                           const objective_settings& settings, const model_config& config) {
    sequence_set set = rows_as_read(
        ids_path, read_token_rows(ids_path, config.text, settings.pad_id ? settings.pad_id : config.text.pad_token_id));
    set.splits = set.lengths;
    set.labels = read_labels(labels_path, settings.label_column, settings.task == task_kind::regress,
                             class_names(settings, config));
    check_same_rows(ids_path, set.rows, labels_path, set.labels.size(), "labels");
    return set;
}

// A batch of rows, cut to its longest row.
struct sequence_batch {
    std::size_t batch = 0, time = 0, tokens = 0;
    std::vector<std::int32_t> ids, lengths, splits, targets;
    std::vector<std::int32_t> classes;
    std::vector<float> values;
};

void gather(const sequence_set& set, std::span<const std::size_t> rows, sequence_batch& out) {
    out.batch = rows.size();
    out.time = 1;
    out.tokens = 0;
    for (std::size_t row : rows) {
        out.time = std::max<std::size_t>(out.time, static_cast<std::size_t>(set.lengths[row]));
        out.tokens += static_cast<std::size_t>(set.lengths[row]);
    }
    const std::size_t T = out.time;
    out.ids.assign(out.batch * T, 0);
    out.targets.assign(set.counted.empty() ? 0 : out.batch * T, ignore_index);
    out.lengths.clear();
    out.splits.clear();
    out.classes.clear();
    out.values.clear();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::size_t row = rows[i];
        std::copy_n(set.ids.data() + row * set.time, T, out.ids.data() + i * T);
        out.lengths.push_back(set.lengths[row]);
        out.splits.push_back(set.splits[row]);
        if (!set.counted.empty())  // position t predicts token t + 1
            for (std::size_t t = 0; t + 1 < T; ++t)
                if (set.counted[row * set.time + t + 1]) out.targets[i * T + t] = out.ids[i * T + t + 1];
        if (!set.labels.classes.empty()) out.classes.push_back(set.labels.classes[row]);
        if (!set.labels.values.empty()) out.values.push_back(set.labels.values[row]);
    }
}

class sequence_objective : public objective {
public:
    sequence_objective(gpt2_model& model, const objective_settings& settings, sequence_set train,
                       std::optional<sequence_set> dev)
        : model_(model), pass_(model), task_(settings.task), train_(std::move(train)), dev_(std::move(dev)),
          order_(train_.rows, settings.seed, true) {
        metric_ = settings.metric.empty() ? task_metrics(task_).front() : settings.metric;
        const std::size_t positions = model.config().text.max_positions, extra = model.prefix_length() + model.infix_length();
        for (const sequence_set* set : {&train_, dev_ ? &*dev_ : nullptr})
            if (set && set->time + extra > positions)
                throw error_in(set->path, fmt::format("{} tokens per row and {} prefix and infix vectors need {} "
                                                      "positions, but the model has {}", set->time, extra,
                                                      set->time + extra, positions));
    }

    std::size_t examples() const override { return train_.rows; }

    pass_result accumulate(std::uint64_t first, std::size_t count, float scale, std::uint64_t dropout_seed) override {
        rows_.resize(count);
        for (std::size_t i = 0; i < count; ++i) rows_[i] = order_.example(first + i);
        gather(train_, rows_, batch_);
        if (task_ == task_kind::lm_pairs) {
            auto result = pass_.accumulate(lm_view(), scale, dropout_seed);
            return {result.loss, batch_.tokens};
        }
        const sequence_batch& b = batch_;
        const float* hidden = model_.forward(b.ids.data(), b.batch, b.time, b.lengths.data(), true, dropout_seed);
        const std::size_t K = model_.config().label_count();
        logits_.resize(b.batch * K);
        model_.score_forward(hidden, b.batch, b.time, b.lengths.data(), logits_.data());
        d_logits_.resize(b.batch * K);
        const float per_row = scale / static_cast<float>(b.batch);
        double sum = task_ == task_kind::classify
                         ? cross_entropy(logits_.data(), b.classes.data(), b.batch, K, d_logits_.data(), per_row).sum
                         : squared_error(logits_.data(), b.values.data(), b.batch, d_logits_.data(), per_row);
        d_hidden_.assign(b.batch * b.time * model_.width(), 0.0f);
        model_.score_backward(hidden, b.batch, b.time, b.lengths.data(), d_logits_.data(), d_hidden_.data());
        model_.backward(d_hidden_.data());
        return {sum / static_cast<double>(b.batch), b.tokens};
    }

    double evaluate(std::size_t batch_size) override {
        const sequence_set& dev = *dev_;
        const std::size_t K = model_.config().label_count();
        double loss = 0;
        std::size_t counted = 0;
        std::vector<std::int32_t> predicted;
        std::vector<float> scores;
        for (std::size_t begin = 0; begin < dev.rows; begin += batch_size) {
            rows_.resize(std::min(batch_size, dev.rows - begin));
            std::iota(rows_.begin(), rows_.end(), begin);
            gather(dev, rows_, batch_);
            const sequence_batch& b = batch_;
            if (task_ == task_kind::lm_pairs) {
                auto part = pass_.evaluate(lm_view());
                loss += part.sum;
                counted += part.counted;
                continue;
            }
            const float* hidden = model_.forward(b.ids.data(), b.batch, b.time, b.lengths.data(), false);
            logits_.resize(b.batch * K);
            model_.score_forward(hidden, b.batch, b.time, b.lengths.data(), logits_.data());
            counted += b.batch;
            if (task_ == task_kind::classify) {
                loss += cross_entropy(logits_.data(), b.classes.data(), b.batch, K, nullptr, 0).sum;
                for (std::size_t i = 0; i < b.batch; ++i) {
                    const float* row = logits_.data() + i * K;
                    predicted.push_back(static_cast<std::int32_t>(std::max_element(row, row + K) - row));
                }
            } else {
                loss += squared_error(logits_.data(), b.values.data(), b.batch, nullptr, 0);
                scores.insert(scores.end(), logits_.begin(), logits_.begin() + static_cast<std::ptrdiff_t>(b.batch));
            }
        }
        if (metric_ == "loss") return loss / static_cast<double>(std::max<std::size_t>(counted, 1));
        if (task_ == task_kind::classify) return classification_metric(metric_, dev.labels.classes, predicted, K);
        return regression_metric(metric_, dev.labels.values, scores);
    }

private:
    lm_batch lm_view() const {
        return {batch_.ids.data(), batch_.targets.data(), batch_.lengths.data(), batch_.batch, batch_.time,
                batch_.splits.data()};
    }

    gpt2_model& model_;
    lm_pass pass_;
    task_kind task_;
    sequence_set train_;
    std::optional<sequence_set> dev_;
    data_order order_;
    std::vector<std::size_t> rows_;
    sequence_batch batch_;
    std::vector<float> logits_, d_logits_;
    large_vector<float> d_hidden_;
};

}  // namespace

std::unique_ptr<objective> make_text_objective(gpt2_model& model, const objective_settings& settings,
                                               const std::vector<std::string>& train,
                                               const std::vector<std::string>& dev) {
    if (settings.task == task_kind::lm) return std::make_unique<lm_objective>(model, settings, train[0], dev);
    const model_config& config = model.config();
    auto read = [&](const std::vector<std::string>& files) {
        if (settings.task != task_kind::lm_pairs) return read_labelled(files[0], files[1], settings, config);
        auto pad = settings.pad_id ? settings.pad_id : config.text.pad_token_id;
        return settings.loss_mask ? read_masked(files[0], files[1], config.text, pad)
                                  : read_pairs(files[0], files[1], config.text, pad);
    };
    sequence_set train_set = read(train);
    std::optional<sequence_set> dev_set;
    if (!dev.empty()) dev_set = read(dev);
    return std::make_unique<sequence_objective>(model, settings, std::move(train_set), std::move(dev_set));
}

}  // namespace lowrank
