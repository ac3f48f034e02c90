#include "train/run.hpp"

#include "core/error.hpp"
#include "core/output.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

namespace lowrank {
namespace {

namespace fs = std::filesystem;

// A file or folder to be made at `path` needs its parent folder.
void check_parent(const std::string& path) {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent)) throw error_in(path, "cannot create: No such file or directory");
}

// Where the outputs go must be able to take them, before hours of training: a folder for a
// PEFT adapter (absent, empty, or holding an adapter it replaces), a file otherwise; the
// log's folder; the checkpoint folder, made now. Under mpirun, standard output is a terminal
// that Open MPI lends each rank: the trained tensors go to a file.
void check_outputs(const training_settings& settings, const process_group& group) {
    if (!settings.loop.log_path.empty() && settings.loop.log_path != "-") check_parent(settings.loop.log_path);
    if (!settings.loop.checkpoint_dir.empty()) {
        std::error_code failure;
        fs::create_directories(settings.loop.checkpoint_dir, failure);
        if (failure) throw error_in(settings.loop.checkpoint_dir, failure.message());
    }
    const std::string& path = settings.output;
    if (path != "-" && !path.empty()) check_parent(path);
    if (settings.method.kind == method_kind::lora) {
        if (path == "-" || path.empty())
            throw usage_error("--method lora writes a PEFT adapter folder: give it with -o FOLDER");
        if (fs::exists(path)) {
            if (!fs::is_directory(path))
                throw error_in(path, "exists and is not a folder (--method lora writes a PEFT adapter folder)");
            if (!fs::is_empty(path) && !fs::exists(fs::path(path) / "adapter_config.json"))
                throw error_in(path, "is a folder that holds other things than an adapter; give a new or empty one");
        }
        return;
    }
    if ((path == "-" || path.empty()) && group.size() > 1)
        throw usage_error("under mpirun, give -o FILE: Open MPI lends the ranks a terminal for standard output");
    if (path == "-" || path.empty()) refuse_binary_on_terminal("the trained tensors (safetensors)");
    else if (fs::is_directory(path))
        throw error_in(path, fmt::format("is a folder; --method {} writes one safetensors file",
                                         method_name(settings.method.kind)));
}

// What a resumed run must share with the run that wrote the checkpoint: every setting that
// changes the numbers (not the output paths, the thread count or how often to checkpoint).
// The forward passes of a step count over all ranks: a checkpoint resumes under any layout
// of the same global batch (2 ranks × --accumulate 1, or one process with --accumulate 2).
std::string fingerprint(const training_settings& settings, const step_shape& shape) {
    const method_settings& m = settings.method;
    const objective_settings& o = settings.objective;
    const loop_settings& l = settings.loop;
    auto text = [](float value) { return fmt::format("{}", value); };  // 0.01, not 0.009999999776482582
    nlohmann::json files = nlohmann::json::array();
    for (const auto* group : {&settings.train, &settings.dev})
        for (const std::string& path : *group) {
            std::error_code failure;
            auto size = fs::file_size(path, failure);
            files.push_back(fmt::format("{} ({} bytes)", path, failure ? 0 : size));
        }
    nlohmann::json json = {
        {"model", settings.model_path}, {"data", files}, {"method", method_name(m.kind)},
        {"rank", m.lora.rank}, {"alpha", text(m.lora.alpha)}, {"rslora", m.lora.rslora}, {"lora_dropout", text(m.lora.dropout)},
        {"targets", m.targets}, {"init", m.init == lora_init::gaussian ? "gaussian" : "kaiming"},
        {"adapter_size", m.adapter_size}, {"prefix_length", m.prefix_length}, {"infix_length", m.infix_length},
        {"task", task_name(o.task)}, {"seed", o.seed}, {"context", o.context},
        {"pad_id", o.pad_id ? nlohmann::json(*o.pad_id) : nlohmann::json(nullptr)}, {"label_column", o.label_column},
        {"loss_mask", o.loss_mask}, {"metric", o.metric}, {"loss", static_cast<int>(o.loss)}, {"lambda", text(o.lambda)},
        {"margin", text(o.margin)}, {"temperature", o.temperature ? text(*o.temperature) : "model's"},
        {"lr", text(l.learning_rate)}, {"warmup", l.warmup}, {"schedule", static_cast<int>(l.decay)},
        {"weight_decay", text(l.adamw.weight_decay)}, {"max_grad_norm", l.max_grad_norm},
        {"batch_size", l.shape.batch_size}, {"accumulate", shape.micro_batches * shape.ranks},
        {"epochs", l.epochs ? nlohmann::json(*l.epochs) : nlohmann::json(nullptr)},
        {"steps", l.steps ? nlohmann::json(*l.steps) : nlohmann::json(nullptr)}, {"eval_every", l.eval_every}};
    return json.dump();
}

// The base file's pages of the parameters that train were copied out at loading: give them
// back (full fine-tuning would otherwise hold the model twice).
void release_trained(const checkpoint& base, const parameter_set& parameters) {
    const safetensors_checkpoint& files = base.files();
    for (const parameter& p : parameters) {
        if (!p.trainable) continue;
        const auto* found = files.find(p.name);
        if (!found && p.name.starts_with("transformer.")) found = files.find(p.name.substr(12));
        if (found) files.files()[found->file].release(*found->tensor);
    }
}

// Every rank must train alike: rank 0's settings (the data files' sizes included) against
// each rank's own, which another command line (mpirun's A : B form) or another copy of the
// data on another host would make differ.
void check_same_settings(const std::string& fingerprint, process_group& group) {
    if (group.size() == 1) return;
    std::uint64_t length = fingerprint.size();
    group.broadcast(std::as_writable_bytes(std::span(&length, 1)));
    std::string reference = group.rank() == 0 ? fingerprint : std::string(length, '\0');
    group.broadcast(std::as_writable_bytes(std::span(reference.data(), reference.size())));
    group.together([&] {
        if (reference != fingerprint)
            throw error(fmt::format("settings differ from rank 0's ({}): every rank runs the same command on the same files",
                                    settings_difference(reference, fingerprint)));
    });
}

}  // namespace

void run_training(const training_settings& settings, const training_messages& messages, process_group& group) {
    // Rank 0 speaks for the job: the others' warnings and notices are the same ones.
    const std::function<void(const std::string&)> silent = [](const std::string&) {};
    const auto& notice = group.rank() == 0 ? messages.notice : silent;
    const auto& warn = group.rank() == 0 ? messages.warn : silent;
    loop_settings loop = settings.loop;
    loop.seed = settings.objective.seed;
    loop.shape.ranks = group.size();
    loop.fingerprint = fingerprint(settings, loop.shape);
    // Set up on every rank (each reads the model and the data itself); a failure anywhere
    // stops them all before training.
    std::optional<checkpoint> base;
    std::optional<model> target;
    std::unique_ptr<objective> task;
    std::optional<training_loop> trainer;
    group.together([&] {
        if (group.rank() == 0) check_outputs(settings, group);
        base.emplace(settings.model_path);
        target.emplace(base->config());
        const bool logit_scale = settings.objective.task == task_kind::clip && settings.objective.loss == contrastive_kind::infonce;
        apply_method(*target, settings.method, logit_scale);
        target->parameters().allocate(training_loop::gradient_extras);
        auto loaded = load_parameters(target->parameters(), *base, target->arch(), {added_by_method});
        for (const auto& warning : loaded.warnings) warn(warning);
        release_trained(*base, target->parameters());
        initialize_method(*target, settings.method, settings.objective.seed);
        task = make_objective(*target, settings.objective, settings.train, settings.dev);
        trainer.emplace(*target, *task, loop, !settings.dev.empty(), warn, group);
        if (loop.resume) trainer->resume();
    });
    check_same_settings(loop.fingerprint, group);
    notice(trainable_parameters_line(target->parameters()));
    group.as_rank([&] { trainer->run(); });
    if (group.rank() != 0) return;
    trainer->restore_best();
    save_method_output(settings.output, *target, settings.method, {settings.model_path, settings.objective.task});
}

}  // namespace lowrank
