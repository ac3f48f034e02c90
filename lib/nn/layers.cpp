// LayerNorm, the activations and L2 normalisation (see layers.hpp).
#include "nn/layers.hpp"

#include "nn/partition.hpp"
#include "nn/vector_math.hpp"

#include <cmath>
#include <cstring>
#include <numbers>

namespace lowrank {
namespace {

// Rows per thread below which a second thread is not worth starting.
constexpr std::size_t rows_per_part = 64;
constexpr std::size_t elements_per_part = 1 << 15;

// Adds the per-part sums partial[part·width ..] in part order into target.
void add_parts(const std::vector<float>& partial, std::size_t parts, std::size_t width, float* target) {
    for (std::size_t part = 0; part < parts; ++part)
        for (std::size_t j = 0; j < width; ++j) target[j] += partial[part * width + j];
}

}  // namespace

// ------------------------------------------------------------------------------ LayerNorm

void layer_norm_forward(const layer_norm& norm, const float* x, std::size_t rows, float* y, float* mean, float* rstd) {
    const std::size_t width = norm.weight->size();
    const float* gamma = norm.weight->value;
    const float* beta = norm.bias->value;
    for_rows(rows, rows_per_part, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
            const float* in = x + r * width;
            float* out = y + r * width;
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (std::size_t j = 0; j < width; ++j) sum += in[j];
            float mu = sum / static_cast<float>(width);
            float squares = 0;
#pragma omp simd reduction(+ : squares)
            for (std::size_t j = 0; j < width; ++j) squares += (in[j] - mu) * (in[j] - mu);
            float s = 1.0f / std::sqrt(squares / static_cast<float>(width) + norm.epsilon);
            for (std::size_t j = 0; j < width; ++j) out[j] = (in[j] - mu) * s * gamma[j] + beta[j];
            mean[r] = mu;
            rstd[r] = s;
        }
    });
}

// With x̂ = (x − μ)·rstd and g = dy ⊙ γ:
//   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  dγ = Σ_rows dy ⊙ x̂,  dβ = Σ_rows dy.
void layer_norm_backward(const layer_norm& norm, const float* x, const float* mean, const float* rstd,
                         const float* dy, std::size_t rows, float* dx) {
    const std::size_t width = norm.weight->size();
    const float* gamma = norm.weight->value;
    float* dgamma = norm.weight->gradient;
    float* dbeta = norm.bias->gradient;
    std::size_t parts = part_count(rows, rows_per_part);
    std::vector<float> partial_gamma(dgamma ? parts * width : 0), partial_beta(dbeta ? parts * width : 0);
    for_each_part(rows, parts, [&](std::size_t part, std::size_t begin, std::size_t end) {
        float* pg = dgamma ? partial_gamma.data() + part * width : nullptr;
        float* pb = dbeta ? partial_beta.data() + part * width : nullptr;
        for (std::size_t r = begin; r < end; ++r) {
            const float* in = x + r * width;
            const float* d = dy + r * width;
            const float mu = mean[r], s = rstd[r];
            if (pg)
                for (std::size_t j = 0; j < width; ++j) pg[j] += d[j] * (in[j] - mu) * s;
            if (pb)
                for (std::size_t j = 0; j < width; ++j) pb[j] += d[j];
            if (!dx) continue;
            float g_sum = 0, gx_sum = 0;
#pragma omp simd reduction(+ : g_sum, gx_sum)
            for (std::size_t j = 0; j < width; ++j) {
                float g = d[j] * gamma[j];
                g_sum += g;
                gx_sum += g * (in[j] - mu) * s;
            }
            float g_mean = g_sum / static_cast<float>(width), gx_mean = gx_sum / static_cast<float>(width);
            float* out = dx + r * width;
            for (std::size_t j = 0; j < width; ++j)
                out[j] += s * (d[j] * gamma[j] - g_mean - (in[j] - mu) * s * gx_mean);
        }
    });
    if (dgamma) add_parts(partial_gamma, parts, width, dgamma);
    if (dbeta) add_parts(partial_beta, parts, width, dbeta);
}

// ----------------------------------------------------------------------------- Activations

std::optional<activation> activation_from_name(std::string_view name) {
    if (name == "gelu") return activation::gelu;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return activation::gelu_tanh;
    if (name == "quick_gelu") return activation::quick_gelu;
    return std::nullopt;
}

std::string_view activation_name(activation kind) {
    switch (kind) {
    case activation::gelu: return "gelu";
    case activation::gelu_tanh: return "gelu_new";
    case activation::quick_gelu: return "quick_gelu";
    }
    return "?";
}

namespace {

constexpr float sqrt_2_over_pi = 0.7978845608028654f;  // √(2/π)
constexpr float gelu_cubic = 0.044715f;
constexpr float quick_gelu_factor = 1.702f;

// Runs function(begin, end) over ranges of [0, count) on the threads.
template <class Function>
void elementwise(std::size_t count, Function function) {
    for_rows(count, elements_per_part, function);
}

// The activations and their derivatives over [begin, end): plain functions with the
// pointers as parameters, so that the loops vectorize.
void gelu_forward(const float* x, float* y, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
        y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(std::numbers::sqrt2 / 2)));
}

void gelu_tanh_forward(const float* x, float* y, std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + vector_math::tanh(sqrt_2_over_pi * (v + gelu_cubic * v * v * v)));
    }
}

void quick_gelu_forward(const float* x, float* y, std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) y[i] = x[i] * vector_math::sigmoid(quick_gelu_factor * x[i]);
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x)
void gelu_backward(const float* x, const float* dy, float* dx, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + std::erf(v * static_cast<float>(std::numbers::sqrt2 / 2)));
        float pdf = std::exp(-0.5f * v * v) * static_cast<float>(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

// u = √(2/π)(x + 0.044715x³):  d/dx = 0.5(1 + tanh u) + 0.5x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
void gelu_tanh_backward(const float* x, const float* dy, float* dx, std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
        float v = x[i];
        float t = vector_math::tanh(sqrt_2_over_pi * (v + gelu_cubic * v * v * v));
        float du = sqrt_2_over_pi * (1.0f + 3.0f * gelu_cubic * v * v);
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

// d/dx x·σ(ax) = σ(ax) + a·x·σ(ax)(1 − σ(ax))
void quick_gelu_backward(const float* x, const float* dy, float* dx, std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
        float s = vector_math::sigmoid(quick_gelu_factor * x[i]);
        dx[i] = dy[i] * (s + quick_gelu_factor * x[i] * s * (1.0f - s));
    }
}

}  // namespace

void activation_forward(activation kind, const float* x, float* y, std::size_t count) {
    auto function = kind == activation::gelu ? gelu_forward : kind == activation::gelu_tanh ? gelu_tanh_forward
                                                                                             : quick_gelu_forward;
    elementwise(count, [=](std::size_t begin, std::size_t end) { function(x, y, begin, end); });
}

void activation_backward(activation kind, const float* x, const float* dy, float* dx, std::size_t count) {
    auto function = kind == activation::gelu ? gelu_backward : kind == activation::gelu_tanh ? gelu_tanh_backward
                                                                                              : quick_gelu_backward;
    elementwise(count, [=](std::size_t begin, std::size_t end) { function(x, dy, dx, begin, end); });
}

// ------------------------------------------------------------------------ L2 normalisation

void l2_normalize_forward(const float* x, std::size_t rows, std::size_t width, float* y, float* norms) {
    for_rows(rows, rows_per_part, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
            const float* in = x + r * width;
            float squares = 0;
#pragma omp simd reduction(+ : squares)
            for (std::size_t j = 0; j < width; ++j) squares += in[j] * in[j];
            float norm = std::sqrt(squares);
            float inverse = norm > 0 ? 1.0f / norm : 0.0f;
            for (std::size_t j = 0; j < width; ++j) y[r * width + j] = in[j] * inverse;
            norms[r] = norm;
        }
    });
}

void l2_normalize_backward(const float* y, const float* norms, const float* dy, std::size_t rows, std::size_t width,
                           float* dx) {
    for_rows(rows, rows_per_part, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
            if (norms[r] == 0) continue;
            const float* out = y + r * width;
            const float* d = dy + r * width;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (std::size_t j = 0; j < width; ++j) dot += out[j] * d[j];
            float inverse = 1.0f / norms[r];
            for (std::size_t j = 0; j < width; ++j) dx[r * width + j] += (d[j] - out[j] * dot) * inverse;
        }
    });
}

}  // namespace lowrank
