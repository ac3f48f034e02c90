#include "train/loop.hpp"

#include "core/error.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/random.hpp"
#include "train/state.hpp"

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowrank {
namespace {

using clock_type = std::chrono::steady_clock;

// The streams of the seed that seed LoRA's dropout masks: one per micro-batch.
constexpr std::uint64_t dropout_streams = std::uint64_t{3} << 61;

std::string number_text(double value) { return std::isfinite(value) ? fmt::format("{:.6f}", value) : fmt::format("{}", value); }

}  // namespace

std::string settings_difference(const std::string& before, const std::string& now) {
    auto saved = nlohmann::json::parse(before, nullptr, false), current = nlohmann::json::parse(now, nullptr, false);
    if (!saved.is_object() || !current.is_object()) return "the settings differ";
    auto shown = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    for (auto& [key, value] : current.items())
        if (!saved.contains(key) || saved[key] != value)
            return fmt::format("{} was {}, is now {}", key, saved.contains(key) ? shown(saved[key]) : "unset", shown(value));
    return "the settings differ";
}

training_loop::training_loop(model& target, objective& task, const loop_settings& settings, bool has_dev,
                             std::function<void(const std::string&)> warn, process_group& group)
    : model_(target), task_(task), settings_(settings), has_dev_(has_dev),
      optimizer_(target.parameters(), settings.adamw), warn_(std::move(warn)), group_(group),
      writer_(group.rank() == 0) {
    if (settings.shape.ranks != group.size()) throw std::logic_error("training_loop: step_shape.ranks is not the group's size");
    if (target.parameters().gradients_and_extras().size() != target.parameters().gradients().size() + gradient_extras)
        throw std::logic_error("training_loop: the parameters hold no room for the loss and token count");
    const std::size_t per_step = settings.shape.examples_per_step();
    if (settings.steps) {
        total_steps_ = *settings.steps;
    } else {
        double examples = settings.epochs.value_or(1.0) * static_cast<double>(task.examples());
        total_steps_ = static_cast<std::uint64_t>(std::ceil(examples / static_cast<double>(per_step) - 1e-9));
    }
    if (total_steps_ == 0) throw usage_error("the run has no step: give --steps or more --epochs");
    log_ = fmt::format("step\tepoch\tloss\tlr\tgrad_norm\tdev_{}\ttokens_per_s\telapsed_s\n", task.metric());
}

std::string training_loop::layout() const {
    nlohmann::json names = nlohmann::json::array();
    for (const parameter& p : model_.parameters())
        if (p.trainable) names.push_back({p.name, p.shape});
    return names.dump();
}

bool training_loop::evaluates_at(std::uint64_t s) const {
    if (!has_dev_) return false;
    if (s + 1 == total_steps_) return true;
    if (settings_.eval_every > 0) return (s + 1) % settings_.eval_every == 0;
    const std::uint64_t per_step = settings_.shape.examples_per_step(), examples = task_.examples();
    return (s + 1) * per_step / examples > s * per_step / examples;  // an epoch ends in this step
}

void training_loop::step(std::uint64_t s) {
    parameter_set& parameters = model_.parameters();
    parameters.zero_gradients();
    const step_shape& shape = settings_.shape;
    // The step's passes over all ranks, numbered as one process would run them; this rank
    // runs micro·ranks + rank for each of its micro-batches.
    const std::size_t passes = shape.micro_batches * shape.ranks;
    const float scale = 1.0f / static_cast<float>(passes);
    loss_ = 0;
    tokens_ = 0;
    for (std::size_t micro = 0; micro < shape.micro_batches; ++micro) {
        const std::size_t pass_number = micro * shape.ranks + group_.rank();
        std::uint64_t dropout_seed = random_generator(settings_.seed, dropout_streams + s * passes + pass_number).next() | 1;
        pass_result pass = task_.accumulate(batch_start(shape, s, micro, group_.rank()), shape.batch_size, scale, dropout_seed);
        loss_ += pass.loss / static_cast<double>(passes);
        tokens_ += pass.tokens;
    }
    sum_across_ranks();
    gradient_norm_ = clip_gradient_norm(parameters, settings_.max_grad_norm);
    if (!std::isfinite(loss_) || !std::isfinite(gradient_norm_)) {
        std::string what = !std::isfinite(loss_) ? fmt::format("the loss is {}", loss_)
                                                 : fmt::format("the gradient norm is {}", gradient_norm_);
        std::string kept = settings_.checkpoint_dir.empty()
                               ? "no checkpoint was written"
                               : fmt::format("the checkpoint in {} is left as it was", settings_.checkpoint_dir);
        // Every rank holds the same sums: they stop together, and rank 0 tells why.
        group_.fail_together(error(fmt::format("step {}: {}; training stopped ({})", s + 1, what, kept)));
    }
    learning_rate_ = scheduled_learning_rate(settings_.learning_rate, s, settings_.warmup, total_steps_, settings_.decay);
    optimizer_.step(learning_rate_);
    task_.after_step();
}

// The gradients, the loss and the token count, summed over the ranks in one call: the
// extras ride at the end of the gradient buffer. Alone, nothing to do (and the loss stays
// a double).
void training_loop::sum_across_ranks() {
    if (group_.size() == 1) return;
    std::span<float> buffer = model_.parameters().gradients_and_extras();
    float* extras = buffer.data() + buffer.size() - gradient_extras;
    extras[0] = static_cast<float>(loss_);
    extras[1] = static_cast<float>(tokens_);  // exact to 2^24 tokens a step; beyond, only the speed's figure rounds
    group_.sum(buffer);
    loss_ = extras[0];
    tokens_ = static_cast<std::size_t>(extras[1]);
}

void training_loop::evaluate(std::uint64_t s) {
    dev_metric_ = task_.evaluate(settings_.shape.batch_size);
    bool better = !best_metric_ ||
                  (task_.higher_is_better() ? *dev_metric_ > *best_metric_ : *dev_metric_ < *best_metric_);
    if (better) {
        best_metric_ = dev_metric_;
        best_step_ = s + 1;
        auto values = model_.parameters().trainable_values();
        best_values_.assign(values.begin(), values.end());
    }
}

void training_loop::checkpoint(std::uint64_t steps_done) {
    training_state state;
    state.steps = steps_done;
    state.elapsed = elapsed_before_;
    state.best_metric = best_metric_;
    state.best_step = best_step_;
    state.settings = settings_.fingerprint;
    state.layout = layout();
    state.log = log_;
    auto values = model_.parameters().trainable_values();
    state.values.assign(values.begin(), values.end());
    state.first_moment.assign(optimizer_.first_moment().begin(), optimizer_.first_moment().end());
    state.second_moment.assign(optimizer_.second_moment().begin(), optimizer_.second_moment().end());
    state.best_values = best_values_;
    save_training_state(settings_.checkpoint_dir, state);
}

void training_loop::resume() {
    if (writer_) read_checkpoint();
}

// Rank 0's starting point (resume()) into the other ranks: the step, the values and AdamW's
// moments. What only rank 0 uses (the log, the best values) stays there.
void training_loop::share_start() {
    if (group_.size() == 1 || !settings_.resume) return;
    group_.broadcast(std::as_writable_bytes(std::span(&first_step_, 1)));
    group_.broadcast(std::as_writable_bytes(model_.parameters().trainable_values()));
    group_.broadcast(std::as_writable_bytes(optimizer_.first_moment()));
    group_.broadcast(std::as_writable_bytes(optimizer_.second_moment()));
    optimizer_.set_steps(first_step_);
}

void training_loop::read_checkpoint() {
    auto state = load_training_state(settings_.checkpoint_dir);
    if (!state) {
        warn_(fmt::format("--resume: no checkpoint in {}; starting from the first step", settings_.checkpoint_dir));
        return;
    }
    const std::string path = checkpoint_path(settings_.checkpoint_dir);
    if (state->settings != settings_.fingerprint) {
        throw error_in(path, fmt::format("written by a run with other settings ({}); resume with the same ones",
                                         settings_difference(state->settings, settings_.fingerprint)));
    }
    auto values = model_.parameters().trainable_values();
    if (state->layout != layout() || state->values.size() != values.size())
        throw error_in(path, "its trained parameters are not this run's");
    if (state->steps > total_steps_)
        throw error_in(path, fmt::format("holds {} steps, more than this run's {}", state->steps, total_steps_));
    std::copy(state->values.begin(), state->values.end(), values.begin());
    std::copy(state->first_moment.begin(), state->first_moment.end(), optimizer_.first_moment().begin());
    std::copy(state->second_moment.begin(), state->second_moment.end(), optimizer_.second_moment().begin());
    optimizer_.set_steps(state->steps);
    first_step_ = state->steps;
    elapsed_before_ = state->elapsed;
    best_metric_ = state->best_metric;
    best_step_ = state->best_step;
    best_values_ = std::move(state->best_values);
    log_ = std::move(state->log);
}

void training_loop::write_log() const {
    if (settings_.log_path.empty() || !writer_) return;
    output_stream out(settings_.log_path, output_kind::text);
    out.write(log_);
    out.commit();
}

void training_loop::run() {
    share_start();
    const auto start = clock_type::now();
    const double elapsed_at_start = elapsed_before_;
    std::size_t tokens = 0;
    progress bar("training", "steps", total_steps_, settings_.quiet || !writer_);
    bar.advance(first_step_);
    const std::uint64_t per_step = settings_.shape.examples_per_step();
    try {
        for (std::uint64_t s = first_step_; s < total_steps_; ++s) {
            step(s);
            tokens += tokens_;
            dev_metric_.reset();
            if (writer_ && evaluates_at(s)) evaluate(s);
            double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
            elapsed_before_ = elapsed_at_start + seconds;
            log_ += fmt::format("{}\t{:.4f}\t{}\t{:.6g}\t{}\t{}\t{:.0f}\t{:.3f}\n", s + 1,
                                static_cast<double>((s + 1) * per_step) / static_cast<double>(task_.examples()),
                                number_text(loss_), learning_rate_, number_text(gradient_norm_),
                                dev_metric_ ? number_text(*dev_metric_) : "", static_cast<double>(tokens) / seconds,
                                elapsed_before_);
            bool last = s + 1 == total_steps_;
            if (writer_ && !settings_.checkpoint_dir.empty() &&
                (last || (settings_.checkpoint_every > 0 && (s + 1) % settings_.checkpoint_every == 0)))
                checkpoint(s + 1);
            bar.advance();
        }
    } catch (const error&) {
        bar.finish();
        write_log();
        throw;
    }
    bar.finish();
    write_log();
}

void training_loop::restore_best() {
    if (best_values_.empty()) return;
    auto values = model_.parameters().trainable_values();
    std::copy(best_values_.begin(), best_values_.end(), values.begin());
}

}  // namespace lowrank
