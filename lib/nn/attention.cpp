// Multi-head scaled dot-product attention (see layers.hpp). Each (sample, head) pair is an
// independent problem of a few small matrix products; the pairs are split over the threads.
#include "nn/layers.hpp"

#include "nn/matmul.hpp"
#include "nn/partition.hpp"
#include "nn/vector_math.hpp"

#include <algorithm>
#include <cstring>

namespace lowrank {
namespace {

// How many keys query t sees.
std::size_t visible_keys(const attention_shape& shape, std::size_t b, std::size_t t) {
    std::size_t keys = shape.lengths ? static_cast<std::size_t>(std::max(shape.lengths[b], 0)) : shape.time;
    keys = std::min(keys, shape.time);
    return shape.causal ? std::min(keys, t + 1) : keys;
}

// In place over a row of scores: softmax over the first `keys` entries, zeros after.
void masked_softmax(float* row, std::size_t keys, std::size_t time) {
    if (keys == 0) {
        std::fill(row, row + time, 0.0f);
        return;
    }
    float maximum = row[0];
    for (std::size_t j = 1; j < keys; ++j) maximum = std::max(maximum, row[j]);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::size_t j = 0; j < keys; ++j) {
        row[j] = vector_math::exp(row[j] - maximum);
        sum += row[j];
    }
    float inverse = 1.0f / sum;
    for (std::size_t j = 0; j < keys; ++j) row[j] *= inverse;
    std::fill(row + keys, row + time, 0.0f);
}

struct head_view {
    const float *q, *k, *v;
};

// The q, k and v columns of one (sample, head) pair: pair = b·heads + h.
head_view head(const attention_shape& shape, const float* qkv, std::size_t pair) {
    std::size_t b = pair / shape.heads, h = pair % shape.heads, width = shape.width();
    const float* q = qkv + b * shape.time * 3 * width + h * shape.head_dim;
    return {q, q + width, q + 2 * width};
}

// Runs body(pair, scratch) for every (sample, head) pair on the threads; scratch is a T×T
// buffer of the thread's own when `with_scratch`.
template <class Body>
void for_each_head(const attention_shape& shape, bool with_scratch, Body&& body) {
    std::size_t pairs = shape.batch * shape.heads;
    std::size_t parts = part_count(pairs, 1);
    std::vector<float> scratch(with_scratch ? parts * shape.time * shape.time : 0);
    for_each_part(pairs, parts, [&](std::size_t part, std::size_t begin, std::size_t end) {
        float* own = with_scratch ? scratch.data() + part * shape.time * shape.time : nullptr;
        for (std::size_t pair = begin; pair < end; ++pair) body(pair, own);
    });
}

}  // namespace

namespace {

// Queries are taken a block of rows at a time, each against the keys it may see: with a
// causal mask, query block [i, i + 32) needs keys 0..i + 31 only, so about half of the
// score and weighted-sum products are never computed.
constexpr std::size_t causal_block = 32;

// The keys a block of queries [first, last) of sample b needs: those any of them sees.
std::size_t block_keys(const attention_shape& shape, std::size_t b, std::size_t last) {
    return visible_keys(shape, b, last - 1);
}

}  // namespace

void attention_forward(const attention_shape& shape, const float* qkv, float* probabilities, float* y) {
    const std::size_t T = shape.time, D = shape.head_dim, C = shape.width();
    const std::size_t block = shape.causal ? causal_block : T;
    for_each_head(shape, false, [&](std::size_t pair, float*) {
        head_view view = head(shape, qkv, pair);
        std::size_t b = pair / shape.heads, h = pair % shape.heads;
        float* p = probabilities + pair * T * T;
        for (std::size_t first = 0; first < T; first += block) {
            std::size_t last = std::min(T, first + block), rows = last - first, keys = block_keys(shape, b, last);
            // scores = q·kᵀ · scale: (rows, keys)
            matmul({.m = rows, .n = keys, .k = D, .a = view.q + first * 3 * C, .lda = 3 * C, .b = view.k,
                    .ldb = 3 * C, .transpose_b = true, .c = p + first * T, .ldc = T, .alpha = shape.scale});
            for (std::size_t t = first; t < last; ++t) masked_softmax(p + t * T, visible_keys(shape, b, t), T);
            // y = p·v: (rows, D), into the head's columns of y
            matmul({.m = rows, .n = D, .k = keys, .a = p + first * T, .lda = T, .b = view.v, .ldb = 3 * C,
                    .c = y + (b * T + first) * C + h * D, .ldc = C});
        }
    });
}

// With P the softmax weights and dP = dy·vᵀ:
//   dv = Pᵀ·dy,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dq = scale · dS·k,  dk = scale · dSᵀ·q.
void attention_backward(const attention_shape& shape, const float* qkv, const float* probabilities, const float* dy,
                        float* dqkv) {
    const std::size_t T = shape.time, D = shape.head_dim, C = shape.width();
    const std::size_t block = shape.causal ? causal_block : T;
    for_each_head(shape, true, [&](std::size_t pair, float* ds) {
        head_view view = head(shape, qkv, pair);
        std::size_t b = pair / shape.heads, h = pair % shape.heads;
        const float* p = probabilities + pair * T * T;
        const float* d_out = dy + b * T * C + h * D;
        float* dq = dqkv + b * T * 3 * C + h * D;
        float* dk = dq + C;
        float* dv = dq + 2 * C;
        // dk and dv gather contributions from every block of queries
        for (std::size_t t = 0; t < T; ++t) {
            std::fill(dk + t * 3 * C, dk + t * 3 * C + D, 0.0f);
            std::fill(dv + t * 3 * C, dv + t * 3 * C + D, 0.0f);
        }
        for (std::size_t first = 0; first < T; first += block) {
            std::size_t last = std::min(T, first + block), rows = last - first, keys = block_keys(shape, b, last);
            const float* p_block = p + first * T;
            const float* d_block = d_out + first * C;
            // dP = dy·vᵀ: (rows, keys)
            matmul({.m = rows, .n = keys, .k = D, .a = d_block, .lda = C, .b = view.v, .ldb = 3 * C,
                    .transpose_b = true, .c = ds, .ldc = T});
            // dv += Pᵀ·dy: (keys, D)
            matmul({.m = keys, .n = D, .k = rows, .a = p_block, .lda = T, .transpose_a = true, .b = d_block,
                    .ldb = C, .c = dv, .ldc = 3 * C, .beta = 1});
            for (std::size_t r = 0; r < rows; ++r) {
                float* row = ds + r * T;
                const float* weights = p_block + r * T;
                float dot = 0;
#pragma omp simd reduction(+ : dot)
                for (std::size_t j = 0; j < keys; ++j) dot += row[j] * weights[j];
                for (std::size_t j = 0; j < keys; ++j) row[j] = weights[j] * (row[j] - dot);
            }
            // dq = scale · dS·k: (rows, D);  dk += scale · dSᵀ·q: (keys, D)
            matmul({.m = rows, .n = D, .k = keys, .a = ds, .lda = T, .b = view.k, .ldb = 3 * C,
                    .c = dq + first * 3 * C, .ldc = 3 * C, .alpha = shape.scale});
            matmul({.m = keys, .n = D, .k = rows, .a = ds, .lda = T, .transpose_a = true,
                    .b = view.q + first * 3 * C, .ldb = 3 * C, .c = dk, .ldc = 3 * C, .alpha = shape.scale,
                    .beta = 1});
        }
    });
}

void attention_decode(const attention_shape& shape, const float* qkv, const std::int32_t* positions, float* keys,
                      float* values, float* y) {
    const std::size_t D = shape.head_dim, C = shape.width(), capacity = shape.time;
    for (std::size_t b = 0; b < shape.batch; ++b) {
        const auto position = static_cast<std::size_t>(positions[b]);
        std::memcpy(keys + (b * capacity + position) * C, qkv + b * 3 * C + C, C * sizeof(float));
        std::memcpy(values + (b * capacity + position) * C, qkv + b * 3 * C + 2 * C, C * sizeof(float));
    }
    for_each_head(shape, false, [&](std::size_t pair, float*) {
        std::size_t b = pair / shape.heads, h = pair % shape.heads;
        const std::size_t keys_seen = static_cast<std::size_t>(positions[b]) + 1;
        const float* q = qkv + b * 3 * C + h * D;
        std::vector<float> scores(keys_seen);
        for (std::size_t j = 0; j < keys_seen; ++j) {
            const float* k = keys + (b * capacity + j) * C + h * D;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (std::size_t d = 0; d < D; ++d) dot += q[d] * k[d];
            scores[j] = dot * shape.scale;
        }
        masked_softmax(scores.data(), keys_seen, keys_seen);
        float* out = y + b * C + h * D;
        std::fill(out, out + D, 0.0f);
        for (std::size_t j = 0; j < keys_seen; ++j) {
            const float* v = values + (b * capacity + j) * C + h * D;
            for (std::size_t d = 0; d < D; ++d) out[d] += scores[j] * v[d];
        }
    });
}

}  // namespace lowrank
