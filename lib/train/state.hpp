// Training checkpoints: everything a run needs to continue as if it had never stopped, in
// one safetensors file (CHECKPOINT-DIR/checkpoint.safetensors) written atomically, so that
// a run killed at any moment leaves the previous checkpoint whole:
//   values, first_moment, second_moment   the trainable parameters and AdamW's moments,
//                                         flat, in parameter_set order
//   best_values                           the values of the best dev evaluation so far
//   log                                   the TSV log's text so far (bytes)
//   __metadata__ "lowrank_checkpoint"     JSON: the steps done, elapsed seconds, the best
//                                         metric and its step, the run's settings and the
//                                         trainable parameters' names and shapes
// There is no random state to keep: what each step reads and its dropout masks are pure
// functions of the seed and the step number.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

struct training_state {
    std::uint64_t steps = 0;     // optimizer steps done
    double elapsed = 0;          // seconds of training so far
    std::optional<double> best_metric;
    std::uint64_t best_step = 0;
    std::string settings;        // what must match to continue (JSON)
    std::string layout;          // the trainable parameters' names and shapes (JSON)
    std::string log;
    std::vector<float> values, first_moment, second_moment, best_values;
};

std::string checkpoint_path(const std::string& folder);

// Writes the state atomically into `folder` (created if missing).
void save_training_state(const std::string& folder, const training_state& state);
// The state in `folder`, or nothing when it holds no checkpoint. A checkpoint that does not
// read is an error naming it.
std::optional<training_state> load_training_state(const std::string& folder);

}  // namespace lowrank
