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
// Data-parallel training (data_parallel.hpp) hooks in at the step: of the M·n forward passes
// of a step over n ranks, rank k runs passes m·n + k (step_shape.ranks, batch_start's rank),
// each scaled by 1/(M·n) and with the dropout masks of its number; one MPI_Allreduce sums
// the gradient buffer with the loss and token count after it
// (parameter_set::gradients_and_extras()) before the norm is taken. The sum is what one
// process adds up with --accumulate M·n, so the runs agree to the order of the additions,
// and a checkpoint resumes under another layout of the same M·n. Everything after (clipping,
// AdamW, the schedule) is the same on every rank. Rank 0 alone evaluates, logs and writes
// checkpoints; a resumed run's state goes from rank 0 to the others.
#pragma once

#include "nn/model.hpp"
#include "nn/optimizer.hpp"
#include "train/data_parallel.hpp"
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

// The first setting of `now` that `before` lacks or holds otherwise, both fingerprints
// (loop_settings::fingerprint, JSON objects): "lr was 0.01, is now 0.002".
std::string settings_difference(const std::string& before, const std::string& now);

class training_loop {
public:
    // The gradient buffer's extras (parameter_set::allocate) the loop needs: the loss and the
    // token count, summed across ranks with the gradients.
    static constexpr std::size_t gradient_extras = 2;

    // warn: for what the user should know (a resume that finds no checkpoint). The model's
    // parameters hold gradient_extras. settings.shape.ranks is group's size.
    training_loop(model& target, objective& task, const loop_settings& settings, bool has_dev,
                  std::function<void(const std::string&)> warn, process_group& group);

    std::uint64_t total_steps() const { return total_steps_; }

    // Reads the checkpoint, if there is one (rank 0 alone), checking that it belongs to this
    // run. Apart from run(), so that a data-parallel run can share its failure
    // (process_group::together) before training.
    void resume();

    // Trains (from the checkpoint resume() read, if any: rank 0 sends it to the others) to
    // the last step, and writes the log. A NaN or infinite loss or gradient throws, naming
    // the step; the log so far is still written, and the last checkpoint is left as it was.
    void run();

    // Puts the values to save into the parameters: those of the best dev evaluation, or the
    // last ones without dev data.
    void restore_best();

private:
    void step(std::uint64_t s);
    void evaluate(std::uint64_t s);
    bool evaluates_at(std::uint64_t s) const;
    void sum_across_ranks();
    void read_checkpoint();
    void share_start();
    void checkpoint(std::uint64_t steps_done);
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
    process_group& group_;
    bool writer_;  // rank 0: evaluates, logs, checkpoints
    // The current step's figures, for its log line.
    double loss_ = 0, gradient_norm_ = 0;
    float learning_rate_ = 0;
    std::optional<double> dev_metric_;
    std::size_t tokens_ = 0;
};

}  // namespace lowrank
