#include "embed/report.hpp"

#include "nn/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace lowrank {
namespace {

constexpr std::size_t block_rows = 256;

double squared_norm(const float* x, std::size_t width) {
    double sum = 0;
    for (std::size_t j = 0; j < width; ++j) sum += static_cast<double>(x[j]) * x[j];
    return sum;
}

// Σ over i < j of e^{−2‖u_i − u_j‖²}, with ‖u − v‖² = ‖u‖² + ‖v‖² − 2 u·v from blocks of
// the Gram matrix. Blocks are taken in a fixed order: the same sum on any thread count.
double gaussian_potential_sum(const float* x, std::size_t rows, std::size_t width) {
    std::vector<double> norms(rows);
    for (std::size_t i = 0; i < rows; ++i) norms[i] = squared_norm(x + i * width, width);
    std::vector<float> gram(block_rows * rows);
    double total = 0;
    for (std::size_t first = 0; first < rows; first += block_rows) {
        std::size_t count = std::min(block_rows, rows - first);
        // gram = x[first..first+count) · x[first..rows)ᵀ
        std::size_t columns = rows - first;
        matmul({.m = count, .n = columns, .k = width, .a = x + first * width, .lda = width, .b = x + first * width,
                .ldb = width, .transpose_b = true, .c = gram.data(), .ldc = columns});
        for (std::size_t i = 0; i < count; ++i)
            for (std::size_t j = i + 1; j < columns; ++j) {
                double distance = norms[first + i] + norms[first + j] - 2.0 * gram[i * columns + j];
                total += std::exp(-2.0 * std::max(distance, 0.0));
            }
    }
    return total;
}

}  // namespace

embedding_report report_embeddings(const float* images, const float* texts, std::size_t rows, std::size_t width) {
    if (rows < 2) throw std::invalid_argument("report_embeddings needs two pairs or more");
    embedding_report report;
    report.pairs = rows;
    double distances = 0, cosines = 0;
    std::vector<double> image_sum(width), text_sum(width);
    for (std::size_t i = 0; i < rows; ++i) {
        const float *x = images + i * width, *y = texts + i * width;
        double distance = 0, dot = 0;
        for (std::size_t j = 0; j < width; ++j) {
            double d = static_cast<double>(x[j]) - y[j];
            distance += d * d;
            dot += static_cast<double>(x[j]) * y[j];
            image_sum[j] += x[j];
            text_sum[j] += y[j];
        }
        distances += distance;
        cosines += dot / std::sqrt(squared_norm(x, width) * squared_norm(y, width));
    }
    const double n = static_cast<double>(rows), distinct = n * (n - 1) / 2;
    report.alignment = distances / n;
    report.positive_cosine = cosines / n;
    // Σ_{i≠j} x_i·y_j = (Σ x)·(Σ y) − Σ x_i·y_i (the rows are unit vectors)
    double all = 0;
    for (std::size_t j = 0; j < width; ++j) all += image_sum[j] * text_sum[j];
    report.negative_cosine = (all - cosines) / (n * (n - 1));
    report.uniformity_images = std::log(gaussian_potential_sum(images, rows, width) / distinct);
    report.uniformity_texts = std::log(gaussian_potential_sum(texts, rows, width) / distinct);
    return report;
}

}  // namespace lowrank
