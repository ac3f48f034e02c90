// lora-merge: merge LoRA adapters (PEFT folders) and lora-train's trained tensors into a
// base model, a safetensors file or a sharded Hugging Face checkpoint, streaming tensor by
// tensor; or subtract them again (--unmerge).
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "formats/sharded.hpp"
#include "peft/merge.hpp"

#include <fmt/format.h>

using namespace lowrank;

namespace {

struct settings {
    bool unmerge = false, dry_run = false, verify = false, residual_base = false;
};

std::string plan_table(const std::vector<plan_row>& rows) {
    std::string text = "tensor\tfile\tdtype\tshape\tupdate\tbase_norm\tdelta_norm\tmax_delta\n";
    for (const auto& row : rows)
        text += fmt::format("{}\t{}\t{}\t{}\t{}\t{:.6g}\t{:.6g}\t{:.6g}\n", row.tensor, row.file, row.dtype, row.shape,
                            row.update, row.base_norm, row.delta_norm, row.max_delta);
    return text;
}

void merge(const command_line& cli, const settings& options, const std::vector<std::string>& operands) {
    const std::string& output = cli.common().output;
    if (options.verify && options.dry_run) throw usage_error("--verify checks a written output; --dry-run writes none");
    if (options.verify && output == "-") throw usage_error("--verify reads the output back: give -o FILE");
    safetensors_checkpoint base(operands[0], page_loading::lazy);
    std::vector<weighted_adapter> adapters;
    for (std::size_t i = 1; i < operands.size(); ++i) {
        auto [path, weight] = parse_adapter_operand(operands[i]);
        adapters.push_back({adapter(path), weight});
    }
    if (!options.dry_run || cli.given("output")) check_merge_output(base, adapters, output);
    if (!options.dry_run && output == "-") refuse_binary_on_terminal("a safetensors file");

    merge_plan plan = plan_merge(base, adapters, {options.unmerge, options.residual_base});
    for (const auto& warning : plan.warnings) cli.warn(warning);
    if (options.dry_run) {
        output_stream out("-", output_kind::text);
        out.write(plan_table(describe_plan(base, adapters, plan)));
        out.commit();
        return;
    }
    auto checked = write_merged(base, adapters, plan, {output, options.verify, cli.common().quiet});
    if (checked)
        fmt::print("verified: {} changed tensors equal W0 + ΔW to within rounding (largest difference {:.3g}, in "
                   "'{}'), {} unchanged tensors identical to the base's\n",
                   checked->changed, checked->max_difference, checked->worst_tensor, checked->unchanged);
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("lora-merge", "BASE ADAPTER[:WEIGHT]...",
                     "Merge adapters into a base model: W = W0 + sum of weight * scale * B A for each LoRA adapter "
                     "(a PEFT folder), computed in float32 and written in each tensor's own dtype. BASE is a "
                     ".safetensors file or a Hugging Face checkpoint folder (sharded or not); the output keeps its "
                     "files, tensor order, names and metadata, with unchanged tensors copied byte for byte. An "
                     "ADAPTER may also be a trained-tensor file of lora-train (full, top2, bitfit, head), whose tensors "
                     "replace the base's.");
    settings options;
    std::vector<std::string> operands;
    cli.options().add_options()
        ("unmerge", flag(&options.unmerge), "subtract the adapters instead: W = W0 - sum of weight * scale * B A")
        ("dry-run", flag(&options.dry_run),
         "check everything and print the plan (which tensors change, and how much) as TSV; write nothing")
        ("verify", flag(&options.verify),
         "read the output back before putting it in place and check W - W0 against the adapters")
        ("residual-base", flag(&options.residual_base),
         "accept adapters whose initialisation changed the base (PiSSA, OLoRA, LoftQ, CorDA...): BASE is the "
         "residual model it left");
    cli.operands(operands, 2, static_cast<std::size_t>(-1));
    cli.epilog("Examples:\n"
               "  lora-merge gpt2/model.safetensors my-adapter -o merged.safetensors\n"
               "  lora-merge --dry-run base/ task-a:0.7 task-b:0.3\n"
               "  lora-merge --verify llama-shards/ adapter -o merged-shards/");
    return cli.run(argc, argv, [&] { merge(cli, options, operands); });
}
