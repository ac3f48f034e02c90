// Fuzz target: TSV reading and the GLUE gold/submission readers. The input is split at its
// first NUL byte into a gold file and a prediction file, read in generic and in task mode.
#include "core/error.hpp"
#include "metrics/glue.hpp"

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

std::string scratch_file(const char* name, std::string_view contents) {
    std::string path = "/dev/shm/lowrank-fuzz-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::size_t split = input.find('\0');
    std::string gold = scratch_file("gold", input.substr(0, split));
    std::string predicted = scratch_file("pred", split == std::string_view::npos ? "" : input.substr(split + 1));
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
    ::unlink(gold.c_str());
    ::unlink(predicted.c_str());
    return 0;
}
