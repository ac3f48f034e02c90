// Linear layers and their LoRA branches (see layers.hpp).
#include "nn/layers.hpp"

#include "nn/matmul.hpp"
#include "nn/partition.hpp"

#include <cstring>
#include <stdexcept>

namespace lowrank {
namespace {

constexpr std::size_t rows_per_part = 64;

// A per-thread buffer that grows as needed and is reused from call to call.
float* scratch(std::vector<float>& buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

// Whether element `index` survives dropout with the seed: a stateless hash (splitmix64's
// finaliser) of (seed, index), so the backward pass recomputes the forward pass's mask.
bool keeps(std::uint64_t seed, std::uint64_t index, std::uint32_t threshold) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<std::uint32_t>(z >> 32) >= threshold;
}

std::uint64_t branch_seed(std::uint64_t seed, std::size_t branch) { return seed ^ (0xD1B54A32D192ED03ull * (branch + 1)); }

// out = x with each element dropped with probability p and the others scaled by 1/(1−p).
// The backward pass applies the same mask to the gradient.
void apply_dropout(const float* x, std::size_t count, float p, std::uint64_t seed, float* out) {
    auto threshold = static_cast<std::uint32_t>(static_cast<double>(p) * 4294967296.0);
    float keep_scale = 1.0f / (1.0f - p);
    for_rows(count, 1 << 15, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) out[i] = keeps(seed, i, threshold) ? x[i] * keep_scale : 0.0f;
    });
}

bool drops(const lora_branch& branch, const linear_state& state) { return branch.dropout > 0 && state.dropout_seed != 0; }

// The branch's input: x, or x after dropout (into a scratch buffer).
const float* branch_input(const linear& layer, const lora_branch& branch, std::size_t index, const float* x,
                          std::size_t rows, const linear_state& state, std::vector<float>& buffer) {
    if (!drops(branch, state)) return x;
    float* dropped = scratch(buffer, rows * layer.in);
    apply_dropout(x, rows * layer.in, branch.dropout, branch_seed(state.dropout_seed, index), dropped);
    return dropped;
}

thread_local std::vector<float> dropped_buffer, hidden_gradient_buffer, input_gradient_buffer;

}  // namespace

row_slice lora_rows(const lora_branch& branch, std::size_t rows, const linear_state& state) {
    if (branch.route == lora_branch::every_row) return {0, rows};
    if (branch.route >= state.routes.size()) throw std::logic_error("a routed LoRA branch called without its route");
    const item_range& items = state.routes[branch.route];
    return {items.begin * state.item_rows, (items.end - items.begin) * state.item_rows};
}

void linear_forward(const linear& layer, const float* x, std::size_t rows, float* y, std::size_t y_stride,
                    bool accumulate, const linear_state& state) {
    const bool conv1d = layer.layout == weight_layout::in_out;
    if (layer.bias) {
        const float* bias = layer.bias->value;
        for_rows(rows, rows_per_part, [&](std::size_t begin, std::size_t end) {
            for (std::size_t r = begin; r < end; ++r) {
                float* out = y + r * y_stride;
                if (accumulate)
                    for (std::size_t j = 0; j < layer.out; ++j) out[j] += bias[j];
                else
                    std::memcpy(out, bias, layer.out * sizeof(float));
            }
        });
    }
    // y = x·Wᵀ (W: out×in) or x·W (W: in×out)
    matmul({.m = rows, .n = layer.out, .k = layer.in, .a = x, .lda = layer.in, .b = layer.weight->value,
            .ldb = conv1d ? layer.out : layer.in, .transpose_b = !conv1d, .c = y, .ldc = y_stride,
            .beta = (layer.bias || accumulate) ? 1.0f : 0.0f});
    for (std::size_t i = 0; i < layer.lora.size(); ++i) {
        const lora_branch& branch = layer.lora[i];
        const std::size_t rank = branch.rank();
        const auto [first, count] = lora_rows(branch, rows, state);
        if (count == 0) continue;
        const float* input = branch_input(layer, branch, i, x + first * layer.in, count, state, dropped_buffer);
        float* hidden = state.lora_hidden[i] + first * rank;
        // hidden = drop(x)·Aᵀ: (count, r), on the branch's rows
        matmul({.m = count, .n = rank, .k = layer.in, .a = input, .lda = layer.in, .b = branch.a->value,
                .ldb = layer.in, .transpose_b = true, .c = hidden, .ldc = rank});
        // y[rows, slice] += s · hidden·Bᵀ
        matmul({.m = count, .n = branch.width(), .k = rank, .a = hidden, .lda = rank, .b = branch.b->value,
                .ldb = rank, .transpose_b = true, .c = y + first * y_stride + branch.column, .ldc = y_stride,
                .alpha = branch.scale, .beta = 1});
    }
}

void linear_backward(const linear& layer, const float* x, std::size_t rows, const float* dy, std::size_t dy_stride,
                     float* dx, const linear_state& state) {
    const bool conv1d = layer.layout == weight_layout::in_out;
    if (dx)  // dx += dy·W (W: out×in) or dy·Wᵀ (W: in×out)
        matmul({.m = rows, .n = layer.in, .k = layer.out, .a = dy, .lda = dy_stride, .b = layer.weight->value,
                .ldb = conv1d ? layer.out : layer.in, .transpose_b = conv1d, .c = dx, .ldc = layer.in, .beta = 1});
    if (float* dw = layer.weight->gradient) {
        if (conv1d)  // dW (in×out) += xᵀ·dy
            matmul({.m = layer.in, .n = layer.out, .k = rows, .a = x, .lda = layer.in, .transpose_a = true, .b = dy,
                    .ldb = dy_stride, .c = dw, .ldc = layer.out, .beta = 1});
        else  // dW (out×in) += dyᵀ·x
            matmul({.m = layer.out, .n = layer.in, .k = rows, .a = dy, .lda = dy_stride, .transpose_a = true, .b = x,
                    .ldb = layer.in, .c = dw, .ldc = layer.in, .beta = 1});
    }
    if (layer.bias && layer.bias->gradient) {
        // db += Σ_rows dy: each thread sums its columns over all rows, in row order.
        float* db = layer.bias->gradient;
        for_rows(layer.out, 16, [&](std::size_t begin, std::size_t end) {
            for (std::size_t r = 0; r < rows; ++r) {
                const float* d = dy + r * dy_stride;
                for (std::size_t j = begin; j < end; ++j) db[j] += d[j];
            }
        });
    }
    for (std::size_t i = 0; i < layer.lora.size(); ++i) {
        const lora_branch& branch = layer.lora[i];
        const std::size_t rank = branch.rank(), width = branch.width();
        // Only the branch's rows: x, dy, dx and the hidden buffer from its first row on.
        const auto [first, count] = lora_rows(branch, rows, state);
        if (count == 0) continue;
        const float* x_rows = x + first * layer.in;
        const float* dy_slice = dy + first * dy_stride + branch.column;
        float* dx_rows = dx ? dx + first * layer.in : nullptr;
        // g = dy[rows, slice]·B: (count, r), the gradient of the branch's hidden before scaling
        float* g = scratch(hidden_gradient_buffer, count * rank);
        matmul({.m = count, .n = rank, .k = width, .a = dy_slice, .lda = dy_stride, .b = branch.b->value,
                .ldb = rank, .c = g, .ldc = rank});
        if (branch.b->gradient)  // dB (width×r) += s · dy_sliceᵀ·hidden
            matmul({.m = width, .n = rank, .k = count, .a = dy_slice, .lda = dy_stride, .transpose_a = true,
                    .b = state.lora_hidden[i] + first * rank, .ldb = rank, .c = branch.b->gradient, .ldc = rank,
                    .alpha = branch.scale, .beta = 1});
        if (branch.a->gradient) {  // dA (r×in) += s · gᵀ·drop(x)
            const float* input = branch_input(layer, branch, i, x_rows, count, state, dropped_buffer);
            matmul({.m = rank, .n = layer.in, .k = count, .a = g, .lda = rank, .transpose_a = true, .b = input,
                    .ldb = layer.in, .c = branch.a->gradient, .ldc = layer.in, .alpha = branch.scale, .beta = 1});
        }
        if (!dx_rows) continue;
        if (!drops(branch, state)) {  // dx += s · g·A
            matmul({.m = count, .n = layer.in, .k = rank, .a = g, .lda = rank, .b = branch.a->value, .ldb = layer.in,
                    .c = dx_rows, .ldc = layer.in, .alpha = branch.scale, .beta = 1});
            continue;
        }
        // dx += mask ⊙ (s · g·A) / (1 − p)
        float* d_input = scratch(input_gradient_buffer, count * layer.in);
        matmul({.m = count, .n = layer.in, .k = rank, .a = g, .lda = rank, .b = branch.a->value, .ldb = layer.in,
                .c = d_input, .ldc = layer.in, .alpha = branch.scale});
        float* masked = scratch(dropped_buffer, count * layer.in);
        apply_dropout(d_input, count * layer.in, branch.dropout, branch_seed(state.dropout_seed, i), masked);
        for_rows(count * layer.in, 1 << 15, [&](std::size_t begin, std::size_t end) {
            for (std::size_t j = begin; j < end; ++j) dx_rows[j] += masked[j];
        });
    }
}

}  // namespace lowrank
