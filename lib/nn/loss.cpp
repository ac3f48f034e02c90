#include "nn/loss.hpp"

#include "nn/matmul.hpp"
#include "nn/partition.hpp"
#include "nn/vector_math.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowrank {

namespace {

// One row: −log softmax(row)[target]; with grad, grad = scale · (softmax − onehot(target))
// (grad may be row). A plain function with the pointers as parameters, so its loops vectorize.
double row_cross_entropy(const float* row, std::size_t classes, std::size_t target, float* grad, float scale) {
    float maximum = row[0];
#pragma omp simd reduction(max : maximum)
    for (std::size_t j = 0; j < classes; ++j) maximum = std::max(maximum, row[j]);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::size_t j = 0; j < classes; ++j) sum += vector_math::exp(row[j] - maximum);
    const float log_sum = maximum + std::log(sum);
    const double loss = static_cast<double>(log_sum) - row[target];
    if (grad) {
#pragma omp simd
        for (std::size_t j = 0; j < classes; ++j) grad[j] = scale * vector_math::exp(row[j] - log_sum);
        grad[target] -= scale;
    }
    return loss;
}

}  // namespace

cross_entropy_result cross_entropy(const float* logits, const std::int32_t* targets, std::size_t rows,
                                   std::size_t classes, float* dlogits, float scale) {
    std::size_t parts = part_count(rows, 8);
    std::vector<double> sums(parts, 0.0);
    std::vector<std::size_t> counts(parts, 0);
    for_each_part(rows, parts, [&](std::size_t part, std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
            float* grad = dlogits ? dlogits + r * classes : nullptr;
            if (targets[r] == ignore_index) {
                if (grad) std::fill(grad, grad + classes, 0.0f);
                continue;
            }
            sums[part] += row_cross_entropy(logits + r * classes, classes, static_cast<std::size_t>(targets[r]),
                                            grad, scale);
            ++counts[part];
        }
    });
    cross_entropy_result result;
    for (std::size_t part = 0; part < parts; ++part) {
        result.sum += sums[part];
        result.counted += counts[part];
    }
    return result;
}

double squared_error(const float* prediction, const float* target, std::size_t count, float* dprediction,
                     float scale) {
    double sum = 0;
    for (std::size_t i = 0; i < count; ++i) {
        double difference = static_cast<double>(prediction[i]) - target[i];
        sum += difference * difference;
        if (dprediction) dprediction[i] = static_cast<float>(scale * 2 * difference);
    }
    return sum;
}

namespace {

// similarity = u·vᵀ: (N, N)
std::vector<float> similarities(const float* u, const float* v, std::size_t n, std::size_t dim) {
    std::vector<float> s(n * n);
    matmul({.m = n, .n = n, .k = dim, .a = u, .lda = dim, .b = v, .ldb = dim, .transpose_b = true, .c = s.data(),
            .ldc = n});
    return s;
}

// Given G = d loss / d(u·vᵀ): du += G·v, dv += Gᵀ·u.
void similarity_backward(const std::vector<float>& g, const float* u, const float* v, std::size_t n, std::size_t dim,
                         const contrastive_gradients& gradients) {
    if (gradients.du)
        matmul({.m = n, .n = dim, .k = n, .a = g.data(), .lda = n, .b = v, .ldb = dim, .c = gradients.du, .ldc = dim,
                .beta = 1});
    if (gradients.dv)
        matmul({.m = n, .n = dim, .k = n, .a = g.data(), .lda = n, .transpose_a = true, .b = u, .ldb = dim,
                .c = gradients.dv, .ldc = dim, .beta = 1});
}

std::vector<std::int32_t> diagonal_targets(std::size_t n) {
    std::vector<std::int32_t> targets(n);
    for (std::size_t i = 0; i < n; ++i) targets[i] = static_cast<std::int32_t>(i);
    return targets;
}

// Given W = d loss / d(d²) for the squared distances d²_ij = ‖u_i − v_j‖²:
//   du_i += 2 Σ_j W_ij (u_i − v_j),  dv_j += 2 Σ_i W_ij (v_j − u_i).
void distance_backward(const std::vector<float>& w, const float* u, const float* v, std::size_t n, std::size_t dim,
                       const contrastive_gradients& gradients) {
    for (std::size_t i = 0; i < n; ++i) {
        float row = 0, column = 0;
        for (std::size_t j = 0; j < n; ++j) {
            row += w[i * n + j];
            column += w[j * n + i];
        }
        for (std::size_t c = 0; c < dim; ++c) {
            if (gradients.du) gradients.du[i * dim + c] += 2 * row * u[i * dim + c];
            if (gradients.dv) gradients.dv[i * dim + c] += 2 * column * v[i * dim + c];
        }
    }
    std::vector<float> minus_two(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) minus_two[i] = -2 * w[i];
    similarity_backward(minus_two, u, v, n, dim, gradients);
}

// d²_ij = ‖u_i‖² + ‖v_j‖² − 2 u_i·v_j
std::vector<float> squared_distances(const float* u, const float* v, std::size_t n, std::size_t dim) {
    std::vector<float> d = similarities(u, v, n, dim);
    std::vector<float> u_norm(n, 0.0f), v_norm(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < dim; ++c) {
            u_norm[i] += u[i * dim + c] * u[i * dim + c];
            v_norm[i] += v[i * dim + c] * v[i * dim + c];
        }
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) d[i * n + j] = std::max(0.0f, u_norm[i] + v_norm[j] - 2 * d[i * n + j]);
    return d;
}

}  // namespace

double info_nce_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float logit_scale, float lambda,
                     const contrastive_gradients& gradients) {
    std::vector<float> logits = similarities(u, v, n, dim);
    const float temperature_inverse = std::exp(logit_scale);
    for (float& value : logits) value *= temperature_inverse;
    std::vector<float> transposed(n * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) transposed[j * n + i] = logits[i * n + j];
    auto targets = diagonal_targets(n);
    const float mean = 1.0f / static_cast<float>(n);
    std::vector<float> row_gradient(n * n), column_gradient(n * n);
    double rows = cross_entropy(logits.data(), targets.data(), n, n, row_gradient.data(), mean).sum * mean;
    double columns = cross_entropy(transposed.data(), targets.data(), n, n, column_gradient.data(), mean).sum * mean;
    // d loss / d logits, then through logits = e^{logit_scale}·S
    std::vector<float> g(n * n);
    double d_logit_scale = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            float d = gradients.scale * (lambda * row_gradient[i * n + j] + (1 - lambda) * column_gradient[j * n + i]);
            d_logit_scale += static_cast<double>(d) * logits[i * n + j];
            g[i * n + j] = d * temperature_inverse;
        }
    similarity_backward(g, u, v, n, dim, gradients);
    if (gradients.d_logit_scale) *gradients.d_logit_scale += static_cast<float>(d_logit_scale);
    return lambda * rows + (1 - lambda) * columns;
}

double n_pair_loss(const float* u, const float* v, std::size_t n, std::size_t dim,
                   const contrastive_gradients& gradients) {
    std::vector<float> logits = similarities(u, v, n, dim);
    auto targets = diagonal_targets(n);
    const float mean = 1.0f / static_cast<float>(n);
    double loss = cross_entropy(logits.data(), targets.data(), n, n, logits.data(), gradients.scale * mean).sum * mean;
    similarity_backward(logits, u, v, n, dim, gradients);
    return loss;
}

double triplet_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float margin,
                    const contrastive_gradients& gradients) {
    if (n < 2) return 0;
    std::vector<float> d = squared_distances(u, v, n, dim);
    const double mean = 1.0 / (static_cast<double>(n) * static_cast<double>(n - 1));
    std::vector<float> w(n * n, 0.0f);
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            if (j == i) continue;
            float hinge = margin + d[i * n + i] - d[i * n + j];
            if (hinge <= 0) continue;
            loss += hinge;
            auto weight = static_cast<float>(gradients.scale * mean);
            w[i * n + i] += weight;
            w[i * n + j] -= weight;
        }
    distance_backward(w, u, v, n, dim, gradients);
    return loss * mean;
}

double contrastive_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float margin,
                        const contrastive_gradients& gradients) {
    std::vector<float> d = squared_distances(u, v, n, dim);
    const double positive_mean = 0.5 / static_cast<double>(n);
    const double negative_mean = n > 1 ? 0.5 / (static_cast<double>(n) * static_cast<double>(n - 1)) : 0.0;
    std::vector<float> w(n * n, 0.0f);
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            float squared = d[i * n + j];
            if (i == j) {
                loss += positive_mean * squared;
                w[i * n + j] = static_cast<float>(gradients.scale * positive_mean);
                continue;
            }
            float distance = std::sqrt(std::max(squared, 1e-12f));
            if (distance >= margin) continue;
            loss += negative_mean * (margin - distance) * (margin - distance);
            // d/d(d²) of (m − d)² = −(m − d) / d
            w[i * n + j] = static_cast<float>(-gradients.scale * negative_mean * (margin - distance) / distance);
        }
    distance_backward(w, u, v, n, dim, gradients);
    return loss;
}

}  // namespace lowrank
