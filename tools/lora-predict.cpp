// lora-predict: runs a gpt2, vit or clip model (with LoRA adapters) on token ids or image
// patches, in batches on all threads: logits, GLUE-style labels or scores, CLIP
// embeddings, or generated text.
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/text.hpp"
#include "formats/npy.hpp"
#include "nn/generate.hpp"
#include "nn/model.hpp"
#include "peft/apply.hpp"

#include <cmath>
#include <deque>
#include <fmt/format.h>
#include <limits>
#include <set>

using namespace lowrank;

namespace {

struct settings {
    std::string model_path, format, label_names;
    std::vector<std::string> adapters;
    std::int64_t pad_id = -1, stop_id = -1;
    std::size_t batch_size = 32, generate = 0, top_k = 1;
    float temperature = 1;
};

// The input array: token ids (N, T) or patches (N, patches, C·P·P).
struct input_rows {
    std::string path;
    std::size_t rows = 0, time = 0;
    std::vector<std::int32_t> ids;
    std::vector<float> patches;
    std::size_t patch_count = 0, patch_features = 0;
};

input_rows read_input(const std::string& path) {
    npy_array array(path);
    input_rows input;
    input.path = path;
    const auto& shape = array.shape();
    bool integer = array.type() != dtype::f16 && array.type() != dtype::f32 && array.type() != dtype::f64;
    if (integer) {
        if (shape.size() != 2) throw error_in(path, fmt::format("token ids must be an array (N, T), not {}-dimensional", shape.size()));
        input.rows = shape[0];
        input.time = shape[1];
        for (std::int64_t id : array.to_int64()) {
            if (id < std::numeric_limits<std::int32_t>::min() || id > std::numeric_limits<std::int32_t>::max())
                throw error_in(path, fmt::format("token id {} does not fit 32 bits", id));
            input.ids.push_back(static_cast<std::int32_t>(id));
        }
    } else {
        if (shape.size() != 3)
            throw error_in(path, fmt::format("patches must be an array (N, patches, C·P·P), not {}-dimensional", shape.size()));
        input.rows = shape[0];
        input.patch_count = shape[1];
        input.patch_features = shape[2];
        input.patches = array.to_float();
        for (float value : input.patches)
            if (!std::isfinite(value)) throw error_in(path, "patches hold a NaN or an infinity");
    }
    if (input.rows == 0) throw error_in(path, "no rows");
    return input;
}

void check_patches(const input_rows& input, const vision_tower_config& vision) {
    if (input.patches.empty())
        throw error_in(input.path, "holds token ids; this model's vision tower takes patches (N, patches, C·P·P)");
    if (input.patch_count != vision.patches() || input.patch_features != vision.patch_features())
        throw error_in(input.path, fmt::format("patches of shape ({}, {}), the model takes ({}, {}): {} patches of "
                                               "{}×{}×{}", input.patch_count, input.patch_features, vision.patches(),
                                               vision.patch_features(), vision.patches(), vision.channels,
                                               vision.patch_size, vision.patch_size));
}

std::vector<std::string> label_names(const settings& options, const model_config& config) {
    std::vector<std::string> names;
    if (!options.label_names.empty()) {
        for (std::string_view name : split(options.label_names, ',')) names.emplace_back(trim(name));
        if (names.size() != config.label_count())
            throw usage_error(fmt::format("--label-names gives {} labels, the model has {}", names.size(),
                                          config.label_count()));
        return names;
    }
    bool generic = true;  // transformers' LABEL_0, LABEL_1...: print the ids instead
    for (std::size_t i = 0; i < config.labels.size(); ++i) generic = generic && config.labels[i] == fmt::format("LABEL_{}", i);
    for (std::size_t i = 0; i < config.labels.size(); ++i) names.push_back(generic ? std::to_string(i) : config.labels[i]);
    return names;
}

// Writes rows of logits: (N, columns...) as .npy, labels or scores as GLUE submissions.
class prediction_writer {
public:
    prediction_writer(const std::string& path, const std::string& format, std::vector<std::size_t> row_shape,
                      std::size_t rows, std::vector<std::string> labels)
        : format_(format), labels_(std::move(labels)),
          out_(path, format == "labels" || format == "scores" ? output_kind::text : output_kind::binary) {
        if (format_ == "logits" || format_ == "embeddings")
            npy_.emplace(out_, dtype::f32, std::move(row_shape), rows);
        else
            out_.write("index\tprediction\n");
    }
    void write(const float* values, std::size_t count, std::size_t columns) {
        if (npy_) {
            npy_->write_rows(values, count);
            return;
        }
        std::string text;
        for (std::size_t r = 0; r < count; ++r, ++index_) {
            const float* row = values + r * columns;
            if (format_ == "scores")
                text += fmt::format("{}\t{}\n", index_, row[0]);
            else
                text += fmt::format("{}\t{}\n", index_, labels_[static_cast<std::size_t>(std::max_element(row, row + columns) - row)]);
        }
        out_.write(text);
    }
    void commit() {
        if (npy_) npy_->finish();
        out_.commit();
    }

private:
    std::string format_;
    std::vector<std::string> labels_;
    output_stream out_;
    std::optional<npy_writer> npy_;
    std::size_t index_ = 0;
};

std::unique_ptr<model> load_model(const command_line& cli, const settings& options) {
    checkpoint file(options.model_path);
    auto loaded = std::make_unique<model>(file.config());
    std::deque<adapter> adapters;  // attach_adapter keeps pointers into them: never moved
    for (const std::string& path : options.adapters) adapters.emplace_back(path);
    auto layers = linear_layers(*loaded);
    std::set<const parameter*> from_adapters;
    for (std::size_t i = 0; i < adapters.size(); ++i)
        for (const parameter* p : attach_adapter(adapters[i], loaded->parameters(), layers, fmt::format("adapter{}", i)))
            from_adapters.insert(p);
    loaded->parameters().allocate();
    auto result = load_parameters(loaded->parameters(), file, loaded->arch(),
                                  {[&](const parameter& p) { return from_adapters.contains(&p); }});
    for (const auto& warning : result.warnings) cli.warn(warning);
    for (std::size_t i = 0; i < adapters.size(); ++i) {
        load_adapter(adapters[i], loaded->parameters(), fmt::format("adapter{}", i));
        for (const auto& warning : adapters[i].warnings()) cli.warn(warning);
    }
    return loaded;
}

std::string default_format(const model& m) {
    if (m.clip) return "embeddings";
    if (m.config.head == head_kind::language_model) return "logits";
    return m.config.head == head_kind::regression ? "scores" : "labels";
}

void check_format(const model& m, const std::string& format) {
    std::vector<std::string> allowed = {default_format(m)};
    if (m.config.head != head_kind::language_model && !m.clip) allowed.push_back("logits");
    if (std::find(allowed.begin(), allowed.end(), format) == allowed.end())
        throw usage_error(fmt::format("--format {}: this {} model writes {}", format, architecture_name(m.arch()),
                                      join(allowed, " or ")));
}

void generate_text(const command_line& cli, const settings& options, gpt2_model& gpt2, const input_rows& input,
                   const std::vector<std::int32_t>& lengths) {
    generation_settings generation{options.generate, options.top_k, options.temperature, std::nullopt,
                                   cli.common().seed};
    if (cli.given("stop-id")) {
        if (options.stop_id >= 0) generation.stop_id = static_cast<std::int32_t>(options.stop_id);
    } else {
        generation.stop_id = gpt2.config().text.eos_token_id;
    }
    output_stream out(cli.common().output, output_kind::text);
    progress bar("generating", "rows", input.rows, cli.common().quiet);
    for (std::size_t begin = 0; begin < input.rows; begin += options.batch_size) {
        std::size_t count = std::min(options.batch_size, input.rows - begin);
        std::vector<std::vector<std::int32_t>> sequences;
        try {
            sequences = generate(gpt2, input.ids.data() + begin * input.time, count, input.time,
                                 lengths.data() + begin, generation, begin);
        } catch (const error& failure) {
            throw error_in(input.path, failure.what());
        }
        std::string text;
        for (const auto& sequence : sequences) text += fmt::format("{}\n", fmt::join(sequence, " "));
        out.write(text);
        bar.advance(count);
    }
    out.commit();
}

void predict(const command_line& cli, const settings& options, const std::string& input_path) {
    auto loaded = load_model(cli, options);
    model& m = *loaded;
    input_rows input = read_input(input_path);
    std::string format = options.format.empty() ? default_format(m) : options.format;
    if (options.generate == 0) check_format(m, format);
    const std::size_t N = input.rows, T = input.time;
    std::vector<std::int32_t> lengths;
    if (m.gpt2 && input.ids.empty())
        throw error_in(input.path, "holds patches; a gpt2 model takes token ids (an integer array (N, T))");
    if (!input.ids.empty()) {
        if (m.vit) throw error_in(input.path, "holds token ids; a vit model takes patches (N, patches, C·P·P)");
        check_token_ids(input.ids, T, m.config.text, input.path);
        std::optional<std::int32_t> pad =
            options.pad_id >= 0 ? std::optional(static_cast<std::int32_t>(options.pad_id)) : m.config.text.pad_token_id;
        lengths = token_lengths(input.ids, T, pad);
    } else {
        check_patches(input, m.config.vision);
    }
    if (options.generate > 0) {
        if (!m.gpt2 || m.config.head != head_kind::language_model)
            throw usage_error("--generate needs a gpt2 language model");
        generate_text(cli, options, *m.gpt2, input, lengths);
        return;
    }

    std::vector<std::size_t> row_shape;
    std::size_t columns = m.config.label_count();
    if (m.gpt2 && m.config.head == head_kind::language_model) {
        row_shape = {T, m.config.text.vocab_size};
        columns = T * m.config.text.vocab_size;
    } else if (m.clip) {
        columns = m.config.projection_dim;
        row_shape = {columns};
    } else {
        row_shape = {columns};
    }
    std::vector<std::string> labels;
    if (format == "labels") labels = label_names(options, m.config);
    prediction_writer writer(cli.common().output, format, row_shape, N, labels);
    progress bar("predicting", "rows", N, cli.common().quiet);
    std::vector<float> values;
    for (std::size_t begin = 0; begin < N; begin += options.batch_size) {
        std::size_t count = std::min(options.batch_size, N - begin);
        values.resize(count * columns);
        const std::int32_t* ids = input.ids.data() + begin * T;
        const float* patches = input.patches.data() + begin * input.patch_count * input.patch_features;
        if (m.gpt2) {
            const float* hidden = m.gpt2->forward(ids, count, T, lengths.data() + begin, false);
            if (m.config.head == head_kind::language_model)
                m.gpt2->lm_logits(hidden, count * T, values.data());
            else
                m.gpt2->score_forward(hidden, count, T, lengths.data() + begin, values.data());
        } else if (m.vit) {
            const float* logits = m.vit->forward(patches, count, false);
            std::copy(logits, logits + count * columns, values.begin());
        } else {
            const float* embeds = input.ids.empty() ? m.clip->encode_image(patches, count, false)
                                                    : m.clip->encode_text(ids, count, T, false);
            std::vector<float> norms(count);
            l2_normalize_forward(embeds, count, columns, values.data(), norms.data());
        }
        writer.write(values.data(), count, columns);
        bar.advance(count);
    }
    writer.commit();
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("lora-predict", "INPUT",
                     "Run a gpt2, vit or clip model, with LoRA adapters, on INPUT: token ids (an integer .npy of "
                     "shape (N, T), as bpe-encode writes them, right-padded) or image patches (a float .npy of "
                     "shape (N, patches, C·P·P), as vit-patchify writes them). Writes logits (.npy), labels or "
                     "scores (GLUE submission TSV: index<TAB>prediction), CLIP embeddings (.npy, L2-normalised), "
                     "or, with --generate, text continued by a language model (one line of ids per row).",
                     output_option | threads_option | seed_option);
    settings options;
    std::vector<std::string> operands;
    cli.options().add_options()
        ("model", value(&options.model_path, "MODEL"),
         "the model: a .safetensors file, a sharded checkpoint's index, or a folder (required)")
        ("adapter", value(&options.adapters, "PATH")->composing(),
         "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors), or a file of tensors "
         "lora-train trained in full (full, top2, bitfit); repeatable, the adapters add up")
        ("format", value(&options.format, "FORMAT"),
         "what to write: logits, labels, scores or embeddings (default: labels for classifiers, scores for "
         "regression, logits for language models, embeddings for clip)")
        ("label-names", value(&options.label_names, "LIST"),
         "comma-separated label strings by class id, for --format labels (default: the config's id2label, or "
         "the ids)")
        ("pad-id", value(&options.pad_id, "ID"),
         "the padding token: trailing ones are masked and skipped (default: the config's pad_token_id)")
        ("batch-size", value(&options.batch_size, "N")->default_value(32), "rows per batch")
        ("generate", value(&options.generate, "N")->default_value(0),
         "continue each row by up to N tokens (gpt2 language models)")
        ("top-k", value(&options.top_k, "K")->default_value(1),
         "with --generate: 1 takes the most likely token; K > 1 samples among the K most likely; 0 among all")
        ("temperature", value(&options.temperature, "T")->default_value(1.0f, "1"),
         "with --generate: divide the logits by T before sampling")
        ("stop-id", value(&options.stop_id, "ID"),
         "with --generate: a row ends after this token (default: the config's eos_token_id; -1: none)");
    cli.operands(operands, 1, 1);
    cli.epilog("Examples:\n"
               "  lora-predict --model classifier.safetensors --label-names neg,pos ids.npy -o SST-2.tsv\n"
               "  lora-predict --model gpt2.safetensors --adapter adapter/ --generate 20 prompts.npy\n"
               "  lora-predict --model vit.safetensors --format logits patches.npy -o logits.npy");
    return cli.run(argc, argv, [&] {
        if (options.model_path.empty()) throw usage_error("--model is required");
        if (options.batch_size == 0) throw usage_error("--batch-size must be at least 1");
        if (!(options.temperature > 0)) throw usage_error("--temperature must be positive");
        if (options.generate == 0 && (cli.given("top-k") || cli.given("temperature") || cli.given("stop-id")))
            throw usage_error("--top-k, --temperature and --stop-id go with --generate");
        if (options.generate > 0 && cli.given("format")) throw usage_error("--generate writes text; drop --format");
        predict(cli, options, operands[0]);
    });
}
