// lora-train: fine-tunes a gpt2, vit or clip model with LoRA or one of the methods the LoRA
// paper compares it with, on a language-modelling, classification, regression or CLIP
// objective; writes a PEFT adapter (or the trained tensors), a TSV log and checkpoints.
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "train/run.hpp"

#include <cmath>
#include <fmt/format.h>

using namespace lowrank;

namespace {

struct options_text {
    std::string task = "lm", method = "lora", targets = "q,v", rank_pattern, init = "kaiming", loss = "infonce",
                schedule = "linear", label_names;
    std::int64_t pad_id = -1;
    double epochs = 0;
    float temperature = 0;
};

// Options that only mean something with some methods or tasks: refused elsewhere, so that a
// mistyped command line does not silently train something else.
void check_option_scope(const command_line& cli, const training_settings& s) {
    auto refuse = [&](std::initializer_list<const char*> names, bool applies, std::string_view where) {
        for (const char* name : names)
            if (cli.given(name) && !applies) throw usage_error(fmt::format("--{} goes with {}", name, where));
    };
    const method_kind m = s.method.kind;
    const task_kind t = s.objective.task;
    refuse({"rank", "alpha", "targets", "rank-pattern", "lora-dropout", "init", "rslora"}, m == method_kind::lora,
           "--method lora");
    refuse({"adapter-size"}, m == method_kind::adapter_h || m == method_kind::adapter_l,
           "--method adapter-h or adapter-l");
    refuse({"prefix-length", "infix-length"}, m == method_kind::prefix_embed || m == method_kind::prefix_layer,
           "--method prefix-embed or prefix-layer");
    refuse({"loss", "lambda", "margin", "temperature"}, t == task_kind::clip, "--task clip");
    refuse({"lambda", "temperature"}, s.objective.loss == contrastive_kind::infonce, "--loss infonce");
    refuse({"margin"}, s.objective.loss == contrastive_kind::triplet || s.objective.loss == contrastive_kind::contrastive,
           "--loss triplet or contrastive");
    refuse({"loss-mask"}, t == task_kind::lm_pairs, "--task lm-pairs");
    refuse({"label-column"}, t == task_kind::classify || t == task_kind::regress, "--task classify or regress");
    refuse({"label-names"}, t == task_kind::classify, "--task classify");
    refuse({"context"}, t == task_kind::lm, "--task lm");
    refuse({"eval-every", "metric"}, !s.dev.empty(), "--dev");
    refuse({"checkpoint-every", "resume"}, !s.loop.checkpoint_dir.empty(), "--checkpoint-dir");
}

void check_values(const command_line& cli, const training_settings& s, const options_text& text) {
    if (s.model_path.empty()) throw usage_error("--model is required");
    if (cli.given("epochs") && cli.given("steps")) throw usage_error("give --epochs or --steps, not both");
    if (cli.given("epochs") && !(text.epochs > 0)) throw usage_error("--epochs must be positive");
    if (s.method.lora.rank == 0) throw usage_error("--rank must be at least 1");
    if (!(s.method.lora.alpha > 0)) throw usage_error("--alpha must be positive");
    if (!(s.method.lora.dropout >= 0 && s.method.lora.dropout < 1)) throw usage_error("--lora-dropout must be in [0, 1)");
    if (s.method.adapter_size == 0) throw usage_error("--adapter-size must be at least 1");
    if ((s.method.kind == method_kind::prefix_embed || s.method.kind == method_kind::prefix_layer) &&
        s.method.prefix_length + s.method.infix_length == 0)
        throw usage_error("--prefix-length and --infix-length are both 0: nothing to train");
    if (s.loop.shape.batch_size == 0) throw usage_error("--batch-size must be at least 1");
    if (s.loop.shape.micro_batches == 0) throw usage_error("--accumulate must be at least 1");
    if (!(s.loop.learning_rate >= 0) || !std::isfinite(s.loop.learning_rate)) throw usage_error("--lr must be a number ≥ 0");
    if (!(s.loop.adamw.weight_decay >= 0)) throw usage_error("--weight-decay must be ≥ 0");
    if (!(s.loop.max_grad_norm >= 0)) throw usage_error("--max-grad-norm must be ≥ 0 (0: no clipping)");
    if (!(s.objective.lambda >= 0 && s.objective.lambda <= 1)) throw usage_error("--lambda must be in [0, 1]");
    if (cli.given("temperature") && !(text.temperature > 0)) throw usage_error("--temperature must be positive");
    if (cli.given("steps") && *s.loop.steps == 0) throw usage_error("--steps must be at least 1");
}

training_settings make_settings(const command_line& cli, training_settings s, const options_text& text) {
    auto method = method_from_name(text.method);
    if (!method)
        throw usage_error(fmt::format("--method {}: expected lora, full, top2, bitfit, head, adapter-h, adapter-l, "
                                      "prefix-embed or prefix-layer", text.method));
    s.method.kind = *method;
    auto task = task_from_name(text.task);
    if (!task) throw usage_error(fmt::format("--task {}: expected lm, lm-pairs, classify, regress or clip", text.task));
    s.objective.task = *task;
    if (text.init != "gaussian" && text.init != "kaiming")
        throw usage_error(fmt::format("--init {}: expected gaussian or kaiming", text.init));
    s.method.init = text.init == "gaussian" ? lora_init::gaussian : lora_init::kaiming;
    s.method.targets.clear();
    for (std::string_view target : split(text.targets, ',')) s.method.targets.emplace_back(trim(target));
    if (!cli.given("alpha")) s.method.lora.alpha = static_cast<float>(s.method.lora.rank);
    for (std::string_view entry : split(text.rank_pattern, ',')) {
        if (trim(entry).empty()) continue;
        auto equals = entry.find('=');
        std::string name(trim(entry.substr(0, equals)));
        auto rank = equals == std::string_view::npos ? std::nullopt : parse_integer(trim(entry.substr(equals + 1)));
        if (!rank || *rank < 1)
            throw usage_error(fmt::format("--rank-pattern: '{}' is not TARGET=RANK with a rank of at least 1", entry));
        if (std::find(s.method.targets.begin(), s.method.targets.end(), name) == s.method.targets.end())
            throw usage_error(fmt::format("--rank-pattern: '{}' is not one of --targets", name));
        s.method.rank_pattern.emplace_back(name, static_cast<std::size_t>(*rank));
    }
    auto loss = contrastive_from_name(text.loss);
    if (!loss) throw usage_error(fmt::format("--loss {}: expected infonce, triplet, npair or contrastive", text.loss));
    s.objective.loss = *loss;
    if (!cli.given("margin") && *loss == contrastive_kind::contrastive) s.objective.margin = 1.0f;
    auto decay = lr_decay_from_name(text.schedule);
    if (!decay) throw usage_error(fmt::format("--schedule {}: expected linear, cosine or constant", text.schedule));
    s.loop.decay = *decay;
    if (cli.given("pad-id")) {
        if (text.pad_id < 0 || text.pad_id > INT32_MAX) throw usage_error("--pad-id must be a token id (≥ 0)");
        s.objective.pad_id = static_cast<std::int32_t>(text.pad_id);
    }
    if (cli.given("temperature")) s.objective.temperature = text.temperature;
    for (std::string_view name : split(text.label_names, ','))
        if (cli.given("label-names")) s.objective.label_names.emplace_back(trim(name));
    if (cli.given("epochs")) s.loop.epochs = text.epochs;
    if (!cli.given("steps")) s.loop.steps.reset();
    s.output = cli.common().output;
    s.loop.quiet = cli.common().quiet;
    s.objective.seed = cli.common().seed;
    check_values(cli, s, text);
    check_option_scope(cli, s);
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("lora-train", "TRAIN...",
                     "Fine-tune MODEL (a gpt2, vit or clip model: safetensors with its config) on TRAIN with LoRA or "
                     "one of the methods the LoRA paper compares it with, and write what was trained: a PEFT adapter "
                     "folder for LoRA, a safetensors file of the trained tensors for the other methods. TRAIN is, "
                     "by --task: lm: TOKENS, a token stream (.u16, .u32 or a 1-D .npy from bpe-encode); lm-pairs: X "
                     "Y, prompts and continuations (integer .npy (N, T) each), or IDS MASK with --loss-mask; "
                     "classify, regress: INPUT LABELS, token ids (N, T) for gpt2 or patches (N, patches, C·P·P) "
                     "from vit-patchify for vit, and labels (.npy, or a TSV column with --label-column); clip: "
                     "PATCHES CAPTIONS. Prints the trainable and total parameter counts on stderr first.",
                     output_option | threads_option | seed_option);
    training_settings s;
    options_text text;
    std::uint64_t steps = 0;
    cli.options().add_options()
        ("model", value(&s.model_path, "MODEL"), "the base model: a .safetensors file or a folder (required)")
        ("task", value(&text.task, "TASK")->default_value(text.task), "lm, lm-pairs, classify, regress or clip")
        ("method", value(&text.method, "METHOD")->default_value(text.method),
         "lora, full, top2, bitfit, head, adapter-h, adapter-l, prefix-embed or prefix-layer")
        ("rank", value(&s.method.lora.rank, "R")->default_value(8), "LoRA: the rank r of B·A")
        ("alpha", value(&s.method.lora.alpha, "ALPHA"), "LoRA: B·A is scaled by ALPHA/r (default: ALPHA = r)")
        ("targets", value(&text.targets, "LIST")->default_value(text.targets),
         "LoRA: the layers of each block: q, k, v, o, fc1, fc2, or layer names (c_attn, q_proj...); "
         "also the token embedding (wte, token_embedding)")
        ("rank-pattern", value(&text.rank_pattern, "LIST"),
         "LoRA: other ranks for some targets, TARGET=R,... (scaled by ALPHA over their rank; PEFT's rank_pattern)")
        ("lora-dropout", value(&s.method.lora.dropout, "P")->default_value(0.0f, "0"),
         "LoRA: dropout on the branch's input, in training")
        ("init", value(&text.init, "INIT")->default_value(text.init),
         "LoRA: A's initialisation: gaussian (N(0, 1/r²)) or kaiming (U(±1/√in)); B = 0")
        ("rslora", flag(&s.method.lora.rslora), "LoRA: scale by ALPHA/√r (rank-stabilised LoRA)")
        ("adapter-size", value(&s.method.adapter_size, "R")->default_value(8), "adapters: the bottleneck's width r")
        ("prefix-length", value(&s.method.prefix_length, "N")->default_value(10),
         "prefix tuning: trained vectors before the input (l_p)")
        ("infix-length", value(&s.method.infix_length, "N")->default_value(0),
         "prefix tuning: trained vectors after the prompt (l_i)")
        ("loss", value(&text.loss, "LOSS")->default_value(text.loss), "clip: infonce, triplet, npair or contrastive")
        ("lambda", value(&s.objective.lambda, "L")->default_value(0.5f, "0.5"),
         "clip, infonce: the weight of the image-to-text direction (1 − L: text-to-image)")
        ("margin", value(&s.objective.margin, "M")->default_value(0.2f, "0.2"),
         "clip: the margin of the triplet loss (contrastive: default 1)")
        ("temperature", value(&text.temperature, "T"),
         "clip, infonce: the initial temperature τ (default: the model's e^−logit_scale; 0.07 in a new model)")
        ("lr", value(&s.loop.learning_rate, "LR")->default_value(2e-4f, "0.0002"), "the peak learning rate")
        ("warmup", value(&s.loop.warmup, "N")->default_value(0), "steps of linear warm-up from 0")
        ("schedule", value(&text.schedule, "DECAY")->default_value(text.schedule),
         "after the warm-up: linear or cosine decay to 0, or constant")
        ("weight-decay", value(&s.loop.adamw.weight_decay, "W")->default_value(0.01f, "0.01"),
         "AdamW's decoupled weight decay (not on biases and LayerNorms)")
        ("max-grad-norm", value(&s.loop.max_grad_norm, "N")->default_value(1.0, "1"),
         "clip the gradients' global norm to N (0: no clipping)")
        ("batch-size", value(&s.loop.shape.batch_size, "N")->default_value(8), "examples per forward pass")
        ("accumulate", value(&s.loop.shape.micro_batches, "N")->default_value(1),
         "forward passes whose gradients make one step")
        ("epochs", value(&text.epochs, "E"), "train for E passes over TRAIN (default 1)")
        ("steps", value(&steps, "N"), "train for N steps")
        ("context", value(&s.objective.context, "T"),
         "lm: tokens per window (default: the model's positions, less the prefix)")
        ("pad-id", value(&text.pad_id, "ID"),
         "rows of token ids: the padding token, trailing ones are masked (default: the config's pad_token_id)")
        ("label-column", value(&s.objective.label_column, "COLUMN"),
         "read LABELS as a TSV with a header row and take this column (name or 1-based number)")
        ("label-names", value(&text.label_names, "LIST"),
         "classify: the classes' names by id, comma-separated, as a TSV's labels may give them (default: the "
         "config's id2label)")
        ("loss-mask", flag(&s.objective.loss_mask), "lm-pairs: the operands are IDS and a 0/1 MASK of the tokens the loss counts")
        ("dev", value(&s.dev, "FILE")->composing(),
         "dev data, the same files as TRAIN (repeat the option for each), evaluated during training")
        ("eval-every", value(&s.loop.eval_every, "N")->default_value(0),
         "evaluate the dev data every N steps (0: at the end of each epoch) and at the end")
        ("metric", value(&s.objective.metric, "METRIC"),
         "the dev metric: loss; classify: acc, f1, mcc; regress: pearson, spearman; clip: acc (default: the "
         "first); the output keeps the best evaluation's weights")
        ("log", value(&s.loop.log_path, "FILE"),
         "write the TSV log: step, epoch, loss, lr, grad_norm, dev metric, tokens_per_s, elapsed_s")
        ("checkpoint-dir", value(&s.loop.checkpoint_dir, "DIR"), "keep a checkpoint of the run in DIR")
        ("checkpoint-every", value(&s.loop.checkpoint_every, "N")->default_value(0),
         "write the checkpoint every N steps (0: only at the end)")
        ("resume", flag(&s.loop.resume), "continue from the checkpoint in --checkpoint-dir, if there is one");
    cli.operands(s.train, 1, 2);
    cli.epilog("Examples:\n"
               "  lora-train --model gpt2.safetensors --rank 8 --steps 1000 --log log.tsv -o adapter/ train.u16\n"
               "  lora-train --model classifier.safetensors --task classify --dev dev.npy --dev dev-labels.npy \\\n"
               "      --epochs 3 -o adapter/ train.npy train-labels.npy\n"
               "  lora-train --model gpt2.safetensors --method adapter-h --adapter-size 16 -o adapter.safetensors "
               "train.u16");
    cli.speaks(process_group::launched_rank() == 0);
    int status = cli.run(argc, argv, [&] {
        // Under mpirun, one rank of a data-parallel job (data_parallel.hpp).
        process_group& group = process_group::world();
        training_settings settings;
        group.together([&] {
            if (cli.given("steps")) s.loop.steps = steps;
            settings = make_settings(cli, s, text);
        });
        run_training(settings, {[&](const std::string& line) {
                                    if (!cli.common().quiet) fmt::print(stderr, "{}\n", line);
                                },
                                [&](const std::string& message) { cli.warn(message); }}, group);
    });
    return process_group::finish(status);
}
