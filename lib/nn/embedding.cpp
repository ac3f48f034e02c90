// Embedding lookups, and LoRA on a token embedding (see layers.hpp).
#include "nn/layers.hpp"

#include "nn/matmul.hpp"
#include "nn/partition.hpp"

#include <algorithm>
#include <cstring>

namespace lowrank {
namespace {

// Rows per thread below which a second thread is not worth starting.
constexpr std::size_t rows_per_part = 64;

thread_local std::vector<float> gathered_buffer, gradient_buffer;

// The branch's hidden values for rows [first, first + count): h[i] = A[:, ids[first + i]],
// (count, r).
float* gather_columns(const lora_branch& branch, const std::int32_t* ids, row_slice rows) {
    const std::size_t rank = branch.rank(), entries = branch.a->shape[1];
    if (gathered_buffer.size() < rows.count * rank) gathered_buffer.resize(rows.count * rank);
    float* hidden = gathered_buffer.data();
    for (std::size_t i = 0; i < rows.count; ++i) {
        const auto id = static_cast<std::size_t>(ids[rows.first + i]);
        for (std::size_t k = 0; k < rank; ++k) hidden[i * rank + k] = branch.a->value[k * entries + id];
    }
    return hidden;
}

}  // namespace

void embedding_forward(const parameter& table, const std::int32_t* ids, std::size_t rows, float* y, bool accumulate) {
    const std::size_t width = table.shape[1];
    for_rows(rows, rows_per_part, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
            const float* source = table.value + static_cast<std::size_t>(ids[r]) * width;
            float* out = y + r * width;
            if (accumulate)
                for (std::size_t j = 0; j < width; ++j) out[j] += source[j];
            else
                std::memcpy(out, source, width * sizeof(float));
        }
    });
}

// Each thread owns a range of table rows and walks all ids, so every table row sums its
// gradients in row order whatever the thread count.
void embedding_backward(const parameter& table, const std::int32_t* ids, std::size_t rows, const float* dy) {
    if (!table.gradient) return;
    const std::size_t entries = table.shape[0], width = table.shape[1];
    std::size_t parts = rows >= rows_per_part ? part_count(entries, 1) : 1;
    for_each_part(entries, parts, [&](std::size_t, std::size_t first, std::size_t last) {
        for (std::size_t r = 0; r < rows; ++r) {
            auto id = static_cast<std::size_t>(ids[r]);
            if (id < first || id >= last) continue;
            float* target = table.gradient + id * width;
            const float* source = dy + r * width;
            for (std::size_t j = 0; j < width; ++j) target[j] += source[j];
        }
    });
}

bool embedding::trains() const {
    return table->trainable ||
           std::any_of(lora.begin(), lora.end(), [](const lora_branch& b) { return b.a->trainable || b.b->trainable; });
}

void embedding_forward(const embedding& layer, const std::int32_t* ids, std::size_t rows, float* y,
                       const linear_state& state) {
    embedding_forward(*layer.table, ids, rows, y, false);
    const std::size_t width = layer.table->shape[1];
    for (const lora_branch& branch : layer.lora) {
        const row_slice slice = lora_rows(branch, rows, state);
        if (slice.count == 0) continue;
        const std::size_t rank = branch.rank();
        // y[rows] += s · h·Bᵀ
        matmul({.m = slice.count, .n = width, .k = rank, .a = gather_columns(branch, ids, slice), .lda = rank,
                .b = branch.b->value, .ldb = rank, .transpose_b = true, .c = y + slice.first * width, .ldc = width,
                .alpha = branch.scale, .beta = 1});
    }
}

void embedding_backward(const embedding& layer, const std::int32_t* ids, std::size_t rows, const float* dy,
                        const linear_state& state) {
    embedding_backward(*layer.table, ids, rows, dy);
    const std::size_t width = layer.table->shape[1];
    for (const lora_branch& branch : layer.lora) {
        const row_slice slice = lora_rows(branch, rows, state);
        if (slice.count == 0) continue;
        const std::size_t rank = branch.rank(), entries = branch.a->shape[1];
        const float* d = dy + slice.first * width;
        if (branch.b->gradient)  // dB (C×r) += s · dyᵀ·h
            matmul({.m = width, .n = rank, .k = slice.count, .a = d, .lda = width, .transpose_a = true,
                    .b = gather_columns(branch, ids, slice), .ldb = rank, .c = branch.b->gradient, .ldc = rank,
                    .alpha = branch.scale, .beta = 1});
        if (!branch.a->gradient) continue;
        // g = s · dy·B: (count, r); dA[:, ids[r]] += g[r], in row order
        if (gradient_buffer.size() < slice.count * rank) gradient_buffer.resize(slice.count * rank);
        float* g = gradient_buffer.data();
        matmul({.m = slice.count, .n = rank, .k = width, .a = d, .lda = width, .b = branch.b->value, .ldb = rank,
                .c = g, .ldc = rank, .alpha = branch.scale});
        for (std::size_t i = 0; i < slice.count; ++i) {
            const auto id = static_cast<std::size_t>(ids[slice.first + i]);
            for (std::size_t k = 0; k < rank; ++k) branch.a->gradient[k * entries + id] += g[i * rank + k];
        }
    }
}

}  // namespace lowrank
