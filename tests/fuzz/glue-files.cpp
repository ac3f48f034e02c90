// Fuzz target: TSV reading and the GLUE gold/submission readers. The input is split at its
// first NUL byte into a gold file and a prediction file, read in generic and in task mode.
#include "core/error.hpp"
#include "metrics/glue.hpp"

#include "scratch_file.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto [gold_text, predicted_text] =
        split_at_nul(std::string_view(reinterpret_cast<const char*>(data), size));
    scratch_file gold_file("gold", gold_text), predicted_file("pred", predicted_text);
    const std::string& gold = gold_file.path();
    const std::string& predicted = predicted_file.path();
    using namespace lowrank;
    auto attempt = [](auto&& read) {
        try {
            scored_rows rows = read();
            compute_metrics({metric_kind::accuracy, metric_kind::f1, metric_kind::mcc, metric_kind::pearson,
                             metric_kind::spearman},
                            rows);
        } catch (const error&) {
        }
    };
    attempt([&] { return read_generic_rows({gold, std::nullopt}, {predicted, std::nullopt}, true, false, "1"); });
    attempt([&] { return read_generic_rows({gold, "2"}, {predicted, "prediction"}, false, true, "1"); });
    for (const char* task : {"cola", "stsb", "mnli-m"})
        attempt([&] { return read_task_rows(*find_glue_task(task), gold, predicted); });
    return 0;
}
