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
#include "peft/routes.hpp"

#include <cmath>
#include <deque>
#include <fmt/format.h>
#include <limits>
#include <numeric>
#include <set>

using namespace lowrank;

namespace {

struct settings {
    std::string model_path, format, label_names, route_path;
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
    check_patch_shape(input.patch_count, input.patch_features, vision, input.path);
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

// The --adapter operands: adapters for every row, and named ones, route i for the i-th name.
struct adapter_operands {
    std::vector<std::string> paths;
    std::vector<std::size_t> routes;  // per path: its route, or lora_branch::every_row
    std::vector<std::string> names;   // by route
};

adapter_operands parse_adapters(const settings& options) {
    adapter_operands operands;
    for (const std::string& operand : options.adapters) {
        auto named = parse_named_adapter(operand);
        operands.paths.push_back(named ? named->path : operand);
        operands.routes.push_back(named ? operands.names.size() : lora_branch::every_row);
        if (!named) continue;
        if (std::find(operands.names.begin(), operands.names.end(), named->name) != operands.names.end())
            throw usage_error(fmt::format("--adapter {}: the name '{}' is given twice", operand, named->name));
        operands.names.push_back(named->name);
    }
    if (!operands.names.empty() && options.route_path.empty())
        throw usage_error("adapters given as NAME=DIR need --route, the file that names each row's adapter");
    if (operands.names.empty() && !options.route_path.empty())
        throw usage_error("--route needs adapters given as NAME=DIR");
    return operands;
}

// The model with its adapters; a routed adapter's head tensors are kept aside, by route.
struct loaded_model {
    std::unique_ptr<model> network;
    std::vector<std::vector<replacement>> heads;
};

loaded_model load_model(const command_line& cli, const settings& options, const adapter_operands& operands) {
    checkpoint file(options.model_path);
    loaded_model loaded{std::make_unique<model>(file.config()), {}};
    model& m = *loaded.network;
    std::deque<adapter> adapters;  // attach_adapter keeps pointers into them: never moved
    for (const std::string& path : operands.paths) adapters.emplace_back(path);
    auto sites = lora_sites_of(m);
    auto head = m.head_parameters();
    std::set<const parameter*> from_adapters;
    for (std::size_t i = 0; i < adapters.size(); ++i) {
        // Modules (adapters, prefix vectors) serve every row: a named adapter cannot add them.
        if (adapters[i].kind() == adapter::format::trained_tensors && method_adds_modules(adapters[i].method()) &&
            operands.routes[i] == lora_branch::every_row)
            for (const parameter* p : attach_modules(adapters[i], m)) from_adapters.insert(p);
        for (const parameter* p : attach_adapter(adapters[i], m.parameters(), sites, fmt::format("adapter{}", i),
                                                 operands.routes[i], head))
            from_adapters.insert(p);
    }
    m.parameters().allocate();
    auto result = load_parameters(m.parameters(), file, m.arch(),
                                  {[&](const parameter& p) { return from_adapters.contains(&p); }});
    for (const auto& warning : result.warnings) cli.warn(warning);
    loaded.heads.resize(operands.names.size());
    for (std::size_t i = 0; i < adapters.size(); ++i) {
        std::string tag = fmt::format("adapter{}", i);
        if (operands.routes[i] == lora_branch::every_row)
            load_adapter(adapters[i], m.parameters(), tag);
        else
            loaded.heads[operands.routes[i]] = load_routed_adapter(adapters[i], m.parameters(), tag);
        for (const auto& warning : adapters[i].warnings()) cli.warn(warning);
    }
    return loaded;
}

// Each input row's route (empty without --route).
std::vector<std::size_t> read_input_routes(const settings& options, const adapter_operands& operands,
                                           std::size_t rows) {
    if (options.route_path.empty()) return {};
    auto routes = read_routes(options.route_path, operands.names);
    if (routes.size() != rows)
        throw error_in(options.route_path, fmt::format("{} routes for {} input rows", routes.size(), rows));
    return routes;
}

// One batch of rows in the order they go through the model: in route order when routed,
// copied into buffers of their own; else the input's rows as they are.
class batch_rows {
public:
    batch_rows(const input_rows& input, const std::vector<std::int32_t>& lengths,
               const std::vector<std::size_t>& routes, std::size_t route_count, std::size_t begin,
               std::size_t count)
        : count(count) {
        ids = input.ids.data() + begin * input.time;
        patches = input.patches.data() + begin * input.patch_count * input.patch_features;
        this->lengths = lengths.empty() ? nullptr : lengths.data() + begin;
        if (routes.empty()) {
            order.resize(count);
            std::iota(order.begin(), order.end(), std::size_t{0});
            return;
        }
        routed_batch routed = route_batch(std::span(routes).subspan(begin, count), route_count);
        order = std::move(routed.order);
        ranges = std::move(routed.ranges);
        gather(ids, input.time, own_ids_);
        gather(this->lengths, 1, own_lengths_);
        gather(patches, input.patch_count * input.patch_features, own_patches_);
    }

    std::size_t count;
    const std::int32_t* ids;
    const std::int32_t* lengths;
    const float* patches;
    std::vector<std::size_t> order;  // order[i]: the batch's row at position i
    std::vector<item_range> ranges;  // by route: positions

    // values (count, columns) in route order -> the batch's row order.
    void restore_order(std::vector<float>& values, std::size_t columns) const {
        if (ranges.empty()) return;
        std::vector<float> ordered(values.size());
        for (std::size_t i = 0; i < count; ++i)
            std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(i * columns), columns,
                        ordered.begin() + static_cast<std::ptrdiff_t>(order[i] * columns));
        values = std::move(ordered);
    }

private:
    // Copies rows of `width` elements into `buffer` in route order and points `rows` there.
    template <class T>
    void gather(const T*& rows, std::size_t width, std::vector<T>& buffer) {
        if (!rows || width == 0) return;
        buffer.resize(count * width);
        for (std::size_t i = 0; i < count; ++i) std::copy_n(rows + order[i] * width, width, buffer.data() + i * width);
        rows = buffer.data();
    }
    std::vector<std::int32_t> own_ids_, own_lengths_;
    std::vector<float> own_patches_;
};

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

void generate_text(const command_line& cli, const settings& options, model& m, const input_rows& input,
                   const std::vector<std::int32_t>& lengths, const std::vector<std::size_t>& routes,
                   std::size_t route_count) {
    generation_settings generation{options.generate, options.top_k, options.temperature, std::nullopt,
                                   cli.common().seed};
    if (cli.given("stop-id")) {
        if (options.stop_id >= 0) generation.stop_id = static_cast<std::int32_t>(options.stop_id);
    } else {
        generation.stop_id = m.config.text.eos_token_id;
    }
    output_stream out(cli.common().output, output_kind::text);
    progress bar("generating", "rows", input.rows, cli.common().quiet);
    for (std::size_t begin = 0; begin < input.rows; begin += options.batch_size) {
        std::size_t count = std::min(options.batch_size, input.rows - begin);
        batch_rows batch(input, lengths, routes, route_count, begin, count);
        m.set_routes(batch.ranges);
        std::vector<std::size_t> row_numbers(count);
        for (std::size_t i = 0; i < count; ++i) row_numbers[i] = begin + batch.order[i];
        std::vector<std::vector<std::int32_t>> sequences;
        try {
            sequences = generate(*m.gpt2, batch.ids, count, input.time, batch.lengths, generation, row_numbers);
        } catch (const error& failure) {
            throw error_in(input.path, failure.what());
        }
        std::vector<std::string> lines(count);
        for (std::size_t i = 0; i < count; ++i) lines[batch.order[i]] = fmt::format("{}\n", fmt::join(sequences[i], " "));
        std::string text;
        for (const std::string& line : lines) text += line;
        out.write(text);
        bar.advance(count);
    }
    out.commit();
}

// The batch's predictions, (count, columns) in the batch's order of rows. A routed
// adapter's head runs again on its rows, with its tensors swapped in.
void predict_batch(model& m, const batch_rows& batch, std::size_t T, bool text, std::size_t columns,
                   const std::vector<std::vector<replacement>>& heads, std::vector<float>& values) {
    const std::size_t count = batch.count;
    values.resize(count * columns);
    auto each_routed_head = [&](auto&& run_head) {
        for (std::size_t route = 0; route < batch.ranges.size(); ++route) {
            const item_range& rows = batch.ranges[route];
            if (heads[route].empty() || rows.begin == rows.end) continue;
            replacement_scope scope(heads[route]);
            run_head(rows.begin, rows.end - rows.begin);
        }
    };
    if (m.gpt2) {
        const float* hidden = m.gpt2->forward(batch.ids, count, T, batch.lengths, false);
        if (m.config.head == head_kind::language_model) {
            m.gpt2->lm_logits(hidden, count * T, values.data());
        } else {
            m.gpt2->score_forward(hidden, count, T, batch.lengths, values.data());
            each_routed_head([&](std::size_t first, std::size_t rows) {
                m.gpt2->score_forward(hidden + first * T * m.gpt2->width(), rows, T, batch.lengths + first,
                                      values.data() + first * columns);
            });
        }
    } else if (m.vit) {
        const float* logits = m.vit->forward(batch.patches, count, false);
        std::copy(logits, logits + count * columns, values.begin());
        each_routed_head([&](std::size_t first, std::size_t rows) {
            m.vit->head_forward(m.vit->pooled() + first * m.vit->tower().width(), rows, values.data() + first * columns);
        });
    } else {
        if (text)
            m.clip->embed_texts(batch.ids, count, T, values.data());
        else
            m.clip->embed_images(batch.patches, count, values.data());
    }
    batch.restore_order(values, columns);
}

void predict(const command_line& cli, const settings& options, const adapter_operands& adapters,
             const std::string& input_path) {
    loaded_model loaded = load_model(cli, options, adapters);
    model& m = *loaded.network;
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
    std::vector<std::size_t> routes = read_input_routes(options, adapters, N);
    if (options.generate > 0) {
        if (!m.gpt2 || m.config.head != head_kind::language_model)
            throw usage_error("--generate needs a gpt2 language model");
        generate_text(cli, options, m, input, lengths, routes, adapters.names.size());
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
        batch_rows batch(input, lengths, routes, adapters.names.size(), begin, count);
        m.set_routes(batch.ranges);
        predict_batch(m, batch, T, !input.ids.empty(), columns, loaded.heads, values);
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
        ("adapter", value(&options.adapters, "[NAME=]PATH")->composing(),
         "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors), or a file of tensors "
         "lora-train trained (full, top2, bitfit, head, adapter-h, adapter-l, prefix-embed, prefix-layer); repeatable, "
         "the adapters add up. NAME=PATH: an adapter only for the rows --route gives it")
        ("route", value(&options.route_path, "FILE"),
         "one line per input row: the NAME of the adapter it goes through, or - for none; rows of "
         "different adapters share each batch")
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
               "  lora-predict --model gpt2.safetensors --adapter sst2=sst2/ --adapter cola=cola/ --route tasks.txt "
               "ids.npy\n"
               "  lora-predict --model vit.safetensors --format logits patches.npy -o logits.npy");
    return cli.run(argc, argv, [&] {
        if (options.model_path.empty()) throw usage_error("--model is required");
        if (options.batch_size == 0) throw usage_error("--batch-size must be at least 1");
        if (!(options.temperature > 0)) throw usage_error("--temperature must be positive");
        if (options.generate == 0 && (cli.given("top-k") || cli.given("temperature") || cli.given("stop-id")))
            throw usage_error("--top-k, --temperature and --stop-id go with --generate");
        if (options.generate > 0 && cli.given("format")) throw usage_error("--generate writes text; drop --format");
        adapter_operands adapters = parse_adapters(options);
        if (operands[0] == "-" && options.route_path == "-")
            throw usage_error("INPUT and --route cannot both be standard input");
        predict(cli, options, adapters, operands[0]);
    });
}
