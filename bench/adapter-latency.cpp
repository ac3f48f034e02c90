// The LoRA paper's inference-latency table in miniature: one forward pass of the GPT-2-shaped
// model of the training-step benchmark (4 layers, width 256, 4 heads; 128 tokens a row) at
// batch 1, 16 and 32, with LoRA merged into the weights (the base model's cost: nothing is
// added), LoRA unmerged (r = 8 on q and v), Houlsby's adapters and Lin's (bottleneck 8).
// Adapters add sequential work no merge removes; the paper measured 20-30% more latency at
// batch 1 on a GPU.
//
// usage: adapter-latency THREADS     prints, per batch size: the median milliseconds of each
//                                    variant, and the adapters' and unmerged LoRA's overhead
#include "core/random.hpp"
#include "core/threads.hpp"
#include "nn/lora.hpp"
#include "train/method.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

using namespace lowrank;
using clock_type = std::chrono::steady_clock;

namespace {

struct variant {
    std::unique_ptr<model> network;
    std::vector<double> milliseconds;
};

variant make_variant(method_kind kind) {
    model_config config = parse_model_config(*preset_config(architecture::gpt2, "small"), "preset");
    variant made{std::make_unique<model>(config), {}};
    method_settings settings;
    settings.kind = kind;
    settings.lora.rank = 8;
    settings.adapter_size = 8;
    if (kind != method_kind::full) apply_method(*made.network, settings, false);
    for (parameter& p : made.network->parameters()) p.trainable = false;  // inference
    made.network->parameters().allocate();
    made.network->initialize(1);
    initialize_method(*made.network, settings, 1);
    return made;
}

double median(std::vector<double> values) {
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: adapter-latency THREADS\n");
        return 2;
    }
    set_thread_count(std::atoi(argv[1]));
    // The variants take turns, pass by pass, so that a machine busy with other work slows
    // them alike; each gets the median of its passes.
    std::vector<variant> variants;
    for (method_kind kind : {method_kind::full, method_kind::adapter_h, method_kind::adapter_l, method_kind::lora})
        variants.push_back(make_variant(kind));  // full: the base's weights, i.e. LoRA merged
    for (std::size_t batch : {1, 16, 32}) {
        const std::size_t time = 128;
        random_generator random(2);
        std::vector<std::int32_t> ids(batch * time);
        for (auto& id : ids) id = static_cast<std::int32_t>(random.below(8192));
        for (variant& v : variants) {
            v.milliseconds.clear();
            v.network->gpt2->forward(ids.data(), batch, time, nullptr, false);  // warm-up
        }
        auto begin = clock_type::now();
        for (std::size_t round = 0; round < 5 || (round < 100 && std::chrono::duration<double>(clock_type::now() - begin).count() < 4.0); ++round)
            for (variant& v : variants) {
                auto start = clock_type::now();
                v.network->gpt2->forward(ids.data(), batch, time, nullptr, false);
                v.milliseconds.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
            }
        double merged = median(variants[0].milliseconds);
        std::printf("%zu %.2f", batch, merged);
        for (std::size_t i = 1; i < variants.size(); ++i) {
            double ms = median(variants[i].milliseconds);
            std::printf(" %.2f %.1f", ms, 100.0 * (ms - merged) / merged);
        }
        std::printf("\n");
    }
    return 0;
}
