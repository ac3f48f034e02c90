// The training loop: AdamW with warm-up and linear or cosine decay, weight decay, gradient
// clipping and accumulation; the data order of order.hpp; dev evaluation that keeps the
// best values; a TSV log; checkpoints and resuming; a stop at the first NaN or infinity.
//
// Step s (from 0) of a run of S steps:
//   gradients = Σ_m (1/M) ∇ mean loss of micro-batch m      (M = micro-batches, each of
//               batch_size examples at stream positions batch_start(shape, s, m))
//   stop if the loss or the gradients' norm is not finite (nothing of this step is applied)
//   clip the global gradient norm to max_grad_norm;  AdamW at lr(s) (warm-up, then decay)
//   evaluate the dev data every eval_every steps (default: at each epoch's end) and at the
//   last step, keeping a copy of the values when the metric is the best so far
//   checkpoint every checkpoint_every steps and at the end
//
// Data-parallel training hooks in at the step: each rank runs its share of the micro-batch
// positions (step_shape.ranks, batch_start's rank), the one gradient buffer
// (parameter_set::gradients()) is summed across ranks before the norm is taken, and the
// losses are averaged; everything else (the order, the schedule, the optimizer) is the same
// on every rank.
#pragma once

#include "nn/model.hpp"
#include "nn/optimizer.hpp"
#include "train/objective.hpp"
#include "train/order.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lowrank {

struct loop_settings {
    float learning_rate = 2e-4f;
    std::uint64_t warmup = 0;  // steps
    lr_decay decay = lr_decay::linear;
    adamw_settings adamw;
    double max_grad_norm = 1.0;  // 0: no clipping
    step_shape shape;
    std::optional<double> epochs;        // the run's length: epochs, or
    std::optional<std::uint64_t> steps;  // steps (one of them; default 1 epoch)
    std::uint64_t eval_every = 0;        // 0: at the end of each epoch
    std::uint64_t seed = 0;
    std::string log_path;                // the TSV log ("": none)
    std::string checkpoint_dir;          // "": no checkpoints
    std::uint64_t checkpoint_every = 0;  // 0: only at the end
    bool resume = false;
    std::string fingerprint;             // the settings a resumed run must share (JSON text)
    bool quiet = false;                  // no progress bar
};

class training_loop {
public:
    // warn: for what the user should know (a resume that finds no checkpoint).
    training_loop(model& target, objective& task, const loop_settings& settings, bool has_dev,
                  std::function<void(const std::string&)> warn);

    std::uint64_t total_steps() const { return total_steps_; }

    // Trains (from the checkpoint, when resuming and there is one) to the last step, and
    // writes the log. A NaN or infinite loss or gradient throws, naming the step; the log so
    // far is still written, and the last checkpoint is left as it was.
    void run();

    // Puts the values to save into the parameters: those of the best dev evaluation, or the
    // last ones without dev data.
    void restore_best();

private:
    void step(std::uint64_t s);
    void evaluate(std::uint64_t s);
    bool evaluates_at(std::uint64_t s) const;
    void checkpoint(std::uint64_t steps_done);
    void resume();
    std::string layout() const;
    void write_log() const;

    model& model_;
    objective& task_;
    loop_settings settings_;
    bool has_dev_;
    adamw optimizer_;
    std::uint64_t total_steps_ = 0, first_step_ = 0;
    std::string log_;
    std::optional<double> best_metric_;
    std::uint64_t best_step_ = 0;
    std::vector<float> best_values_;
    double elapsed_before_ = 0;  // seconds of training before this process resumed
    std::function<void(const std::string&)> warn_;
    // The current step's figures, for its log line.
    double loss_ = 0, gradient_norm_ = 0;
    float learning_rate_ = 0;
    std::optional<double> dev_metric_;
    std::size_t tokens_ = 0;
};

}  // namespace lowrank
