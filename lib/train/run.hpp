// A whole training run, as lora-train makes it: load the base model, add and mark what the
// method trains, read the data, train, write the method's output.
#pragma once

#include "train/loop.hpp"
#include "train/method.hpp"
#include "train/objective.hpp"

#include <functional>
#include <string>
#include <vector>

namespace lowrank {

struct training_settings {
    std::string model_path;
    std::vector<std::string> train, dev;  // the task's operands, and the same for dev data
    std::string output;                   // a PEFT folder (lora), or a file ("-": standard output)
    method_settings method;
    objective_settings objective;
    loop_settings loop;
};

struct training_messages {
    std::function<void(const std::string&)> notice;  // the trainable-parameter count
    std::function<void(const std::string&)> warn;
};

// Checks the settings and the output before anything is read, then runs: alone, or as one
// rank of a data-parallel job (data_parallel.hpp; rank 0 alone prints and writes). Errors
// name the file (and row, line, tensor) at fault; nothing is written when the run fails
// before training, and only the log (see training_loop::run) when it fails during training.
void run_training(const training_settings& settings, const training_messages& messages, process_group& group);

}  // namespace lowrank
