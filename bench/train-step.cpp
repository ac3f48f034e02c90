// The training-step benchmark's own side: a GPT-2-shaped model (4 layers, width 256,
// 4 heads, context 128, vocabulary 8192: model-init's "small" preset), batch 16, one step =
// forward, LM loss, backward, AdamW; full fine-tuning or LoRA r=8 on q and v.
//
// usage: train-step full|lora THREADS STEPS     prints: tokens/s  peak-MB  GFLOP/s
//        train-step sgemm THREADS               prints: sgemm GFLOP/s (2048³ products)
//        train-step backend                     prints: the matrix-product backend
#include "core/random.hpp"
#include "core/threads.hpp"
#include "nn/lora.hpp"
#include "nn/matmul.hpp"
#include "train/step.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/resource.h>

using namespace lowrank;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

double sgemm_peak() {
    const std::size_t n = 2048;
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
    gemm product{.m = n, .n = n, .k = n, .a = a.data(), .lda = n, .b = b.data(), .ldb = n, .c = c.data(), .ldc = n};
    matmul(product);
    int repeats = 0;
    auto start = clock_type::now();
    do {
        matmul(product);
        ++repeats;
    } while (seconds_since(start) < 2.0);
    return 2.0 * n * n * n * repeats / seconds_since(start) / 1e9;
}

// Multiply-adds ×2 of one step, counted as for any implementation of the model (attention
// over the full T×T square, as PyTorch computes it): forward 2·P per token for the P
// weights of the matrix products (the tied head included) plus 4·T·C per layer for the
// scores and the weighted sum; backward twice that for full fine-tuning, and for LoRA the
// input gradients only (the frozen weights get none) plus the branches' own products.
double step_flops(const model_config& config, bool lora, std::size_t rank, std::size_t batch) {
    const double T = static_cast<double>(config.text.max_positions), C = static_cast<double>(config.text.transformer.width);
    const double L = static_cast<double>(config.text.transformer.layers), V = static_cast<double>(config.text.vocab_size);
    const double inner = static_cast<double>(config.text.transformer.inner), r = static_cast<double>(rank);
    double weights = L * (3 * C * C + C * C + 2 * C * inner) + V * C;
    double attention = L * 4 * T * C;
    double forward = 2 * weights + attention;
    double per_token = lora ? forward + (2 * weights + 2 * attention) + L * 2 * (2 * 2 * C * r) * 3
                            : 3 * forward;
    return per_token * T * static_cast<double>(batch);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "backend") {
        std::printf("%s\n", matmul_backend().c_str());
        return 0;
    }
    if (argc < 3) {
        std::fprintf(stderr, "usage: train-step full|lora|sgemm THREADS [STEPS] | backend\n");
        return 2;
    }
    std::string method = argv[1];
    set_thread_count(std::atoi(argv[2]));
    if (method == "sgemm") {
        std::printf("%.1f\n", sgemm_peak());
        return 0;
    }
    const int steps = argc > 3 ? std::atoi(argv[3]) : 10;
    const std::size_t batch = 16, rank = 8;
    model_config config = parse_model_config(*preset_config(architecture::gpt2, "small"), "preset");
    const std::size_t time = config.text.max_positions, vocab = config.text.vocab_size;
    gpt2_model model(config);
    bool lora = method == "lora";
    if (lora) {
        for (transformer_block& block : model.stack().blocks())
            for (const char* slice : {"q", "v"}) {
                lora_branch& branch =
                    add_lora(model.parameters(), *find_lora_target(block, slice), {.rank = rank, .alpha = 16});
                branch.a->trainable = branch.b->trainable = true;
            }
    } else {
        for (parameter& p : model.parameters()) p.trainable = true;
    }
    model.parameters().allocate();
    model.initialize(1);
    std::uint64_t stream = 1000;
    for (transformer_block& block : model.stack().blocks())
        for (lora_branch& branch : block.qkv.lora) initialize_lora(branch, lora_init::kaiming, 1, ++stream);

    random_generator random(2);
    std::vector<std::int32_t> ids(batch * time), targets(batch * time, ignore_index);
    for (auto& id : ids) id = static_cast<std::int32_t>(random.below(vocab));
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t t = 0; t + 1 < time; ++t) targets[b * time + t] = ids[b * time + t + 1];
    lm_trainer trainer(model, {});
    lm_batch data{ids.data(), targets.data(), nullptr, batch, time};
    for (int i = 0; i < 2; ++i) trainer.step(data, 1e-4f, 0);  // warm-up
    auto start = clock_type::now();
    for (int i = 0; i < steps; ++i) trainer.step(data, 1e-4f, 0);
    double elapsed = seconds_since(start);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("%.1f %.1f %.1f\n", static_cast<double>(batch * time) * steps / elapsed, usage.ru_maxrss / 1024.0,
                step_flops(config, lora, rank, batch) * steps / elapsed / 1e9);
    return 0;
}
