// model-init: a randomly initialised gpt2, vit or clip model (Hugging Face's initialisation,
// seeded), written as safetensors with its config in the metadata; or, with --from, an
// existing model with a new part (a classification head on a pre-trained language model).
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "core/text.hpp"
#include "core/memory.hpp"
#include "nn/checkpoint.hpp"
#include "nn/model.hpp"

#include <fmt/format.h>

using namespace lowrank;
using json = nlohmann::json;

namespace {

struct settings {
    std::string arch_name, preset, config_path, from;
    std::vector<std::string> assignments;
    std::size_t labels = 0;
};

std::string_view model_type(architecture arch) {
    switch (arch) {
    case architecture::gpt2: return "gpt2";
    case architecture::vit: return "clip_vision_model";
    case architecture::clip: return "clip";
    }
    return "";
}

json base_config(architecture arch, const settings& options) {
    if (!options.from.empty()) {
        json config = checkpoint(options.from).config().json;
        // A vit from a CLIP model: its vision tower, as transformers' CLIPVisionModel takes it.
        if (arch == architecture::vit && config.value("model_type", "") == "clip" && config.contains("vision_config")) {
            json vision = config["vision_config"];
            vision["model_type"] = model_type(arch);
            return vision;
        }
        if (config.value("model_type", "") != model_type(arch))
            throw error_in(options.from, fmt::format("is a {} model, not {}", config.value("model_type", "?"),
                                                     architecture_name(arch)));
        return config;
    }
    if (!options.preset.empty()) {
        auto preset = preset_config(arch, options.preset);
        if (!preset)
            throw usage_error(fmt::format("unknown preset '{}' for {} (presets: {})", options.preset,
                                          architecture_name(arch), join(preset_names(arch), ", ")));
        return *preset;
    }
    if (!options.config_path.empty()) {
        input_text file(options.config_path);
        json config = json::parse(file.text().begin(), file.text().end(), nullptr, false);
        if (!config.is_object()) throw error_in(options.config_path, "not a JSON object");
        if (!config.contains("model_type")) config["model_type"] = model_type(arch);
        if (config["model_type"] != model_type(arch))
            throw error_in(options.config_path, fmt::format("model_type {} is not {}'s ({})",
                                                            config["model_type"].dump(), architecture_name(arch),
                                                            model_type(arch)));
        return config;
    }
    return {{"model_type", model_type(arch)}};  // Hugging Face's defaults
}

// --labels N: the number of classes of the head (gpt2: the sequence-classification head;
// one label is regression).
void apply_labels(json& config, architecture arch, std::size_t labels) {
    if (arch == architecture::clip) throw usage_error("--labels: clip models have no classification head");
    set_config_field(config, arch, fmt::format("num_labels={}", labels));
    if (arch == architecture::gpt2) {
        config["architectures"] = {"GPT2ForSequenceClassification"};
        config["problem_type"] = labels == 1 ? "regression" : "single_label_classification";
    }
}

void initialize_model(const command_line& cli, const settings& options) {
    auto arch = architecture_from_name(options.arch_name);
    if (!arch) throw usage_error(fmt::format("--arch '{}': expected gpt2, vit or clip", options.arch_name));
    if (!options.preset.empty() + !options.config_path.empty() + !options.from.empty() > 1)
        throw usage_error("--preset, --config and --from exclude each other");
    json config = base_config(*arch, options);
    for (const std::string& assignment : options.assignments) set_config_field(config, *arch, assignment);
    if (cli.given("labels")) {
        if (options.labels == 0) throw usage_error("--labels must be at least 1");
        apply_labels(config, *arch, options.labels);
    }
    model_config parsed;
    try {
        parsed = parse_model_config(config, options.config_path.empty() ? "the configuration" : options.config_path);
    } catch (const error& failure) {
        if (options.config_path.empty()) throw usage_error(failure.what());  // from --preset/--set: the command line
        throw;
    }
    model created(parsed);
    double count = 0;  // in floating point: absurd widths must not wrap around
    for (const auto& p : created.parameters()) {
        double elements = 1;
        for (std::size_t dimension : p.shape) elements *= static_cast<double>(dimension);
        count += elements;
    }
    check_fits_in_memory(4 * count, fmt::format("{}: a model of {:.3g} parameters",
                                                options.config_path.empty() ? "the configuration" : options.config_path,
                                                count));
    created.parameters().allocate();
    created.initialize(cli.common().seed);
    if (!options.from.empty()) {
        // The source's tensors replace the fresh values; what it lacks (a new head) keeps them.
        checkpoint source(options.from);
        auto loaded = load_parameters(created.parameters(), source, parsed.arch,
                                      {.may_be_missing = [](const parameter&) { return true; }});
        for (const parameter* fresh : loaded.missing)
            cli.warn(fmt::format("{}: no tensor '{}': initialised", options.from, fresh->name));
        for (const auto& warning : loaded.warnings) cli.warn(warning);
    }
    output_stream out(cli.common().output, output_kind::binary);
    save_parameters(out, created.parameters(), parsed.json);
    out.commit();
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("model-init", "",
                     "Write a randomly initialised model as safetensors, with Hugging Face's tensor names and "
                     "initialisation (seeded) and its config (Hugging Face config.json fields) in the metadata. "
                     "The config comes from a preset, a config.json file, or Hugging Face's defaults, changed "
                     "field by field with --set.",
                     output_option | threads_option | seed_option);
    settings options;
    cli.options().add_options()
        ("arch", value(&options.arch_name, "ARCH"), "the architecture: gpt2, vit or clip (required)")
        ("preset", value(&options.preset, "NAME"),
         "a config preset: tiny, small; gpt2 also gpt2, gpt2-medium; vit and clip also clip-vit-b-32")
        ("config", value(&options.config_path, "FILE"), "read the config from a Hugging Face config.json")
        ("from", value(&options.from, "MODEL"),
         "start from MODEL (its config and weights; for vit, a clip MODEL's vision tower); tensors it lacks, "
         "such as the head --labels adds, are initialised")
        ("set", value(&options.assignments, "KEY=VALUE")->composing(),
         "set a config field (repeatable); VALUE is JSON or a string; clip's tower fields as "
         "text_config.KEY or vision_config.KEY")
        ("labels", value(&options.labels, "N"),
         "the number of classes of a classification head (gpt2: GPT2ForSequenceClassification, 1 = regression; "
         "vit: its classifier)");
    std::vector<std::string> none;
    cli.operands(none, 0, 0);
    cli.epilog("Examples:\n"
               "  model-init --arch gpt2 --preset small --seed 1 -o gpt2-small.safetensors\n"
               "  model-init --arch gpt2 --preset tiny --labels 3 -o classifier.safetensors\n"
               "  model-init --arch gpt2 --from pretrained.safetensors --labels 4 -o classifier.safetensors\n"
               "  model-init --arch clip --preset tiny --set projection_dim=64 -o clip.safetensors");
    return cli.run(argc, argv, [&] {
        if (options.arch_name.empty()) throw usage_error("--arch is required (gpt2, vit or clip)");
        initialize_model(cli, options);
    });
}
