#include "core/threads.hpp"
#include "formats/dtype.hpp"
#include "nn/matmul.hpp"
#include "nn_testing.hpp"

#include <cstring>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// The plain loop matmul() must agree with, in double.
void reference_matmul(const gemm& p, std::vector<double>& c) {
    for (std::size_t i = 0; i < p.m; ++i)
        for (std::size_t j = 0; j < p.n; ++j) {
            double sum = 0;
            for (std::size_t l = 0; l < p.k; ++l) {
                double a = p.transpose_a ? p.a[l * p.lda + i] : p.a[i * p.lda + l];
                double b = p.transpose_b ? p.b[j * p.ldb + l] : p.b[l * p.ldb + j];
                sum += a * b;
            }
            double& out = c[i * p.ldc + j];
            out = p.alpha * sum + (p.beta == 0 ? 0.0 : p.beta * out);
        }
}

void check_product(std::size_t m, std::size_t n, std::size_t k, bool transpose_a, bool transpose_b, float alpha,
                   float beta, std::size_t padding) {
    std::size_t lda = (transpose_a ? m : k) + padding, ldb = (transpose_b ? k : n) + padding, ldc = n + padding;
    auto a = random_values((transpose_a ? k : m) * lda, 1);
    auto b = random_values((transpose_b ? n : k) * ldb, 2);
    auto c = random_values(m * ldc, 3);
    std::vector<double> expected(c.begin(), c.end());
    gemm product{.m = m, .n = n, .k = k, .a = a.data(), .lda = lda, .transpose_a = transpose_a, .b = b.data(),
                 .ldb = ldb, .transpose_b = transpose_b, .c = c.data(), .ldc = ldc, .alpha = alpha, .beta = beta};
    reference_matmul(product, expected);
    matmul(product);
    double worst = 0;
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < ldc; ++j) {
            double error = std::abs(c[i * ldc + j] - expected[i * ldc + j]);
            worst = std::max(worst, error / (1.0 + std::abs(expected[i * ldc + j])));
        }
    INFO("m=" << m << " n=" << n << " k=" << k << " ta=" << transpose_a << " tb=" << transpose_b
              << " alpha=" << alpha << " beta=" << beta << " padding=" << padding);
    CHECK(worst < 1e-5);
}

}  // namespace

TEST_CASE("matmul agrees with a plain loop: transposes, strides, alpha, beta, odd sizes") {
    for (bool transpose_a : {false, true})
        for (bool transpose_b : {false, true}) {
            check_product(7, 5, 3, transpose_a, transpose_b, 1, 0, 0);
            check_product(33, 17, 65, transpose_a, transpose_b, 0.5f, 1, 3);
            check_product(1, 9, 4, transpose_a, transpose_b, -2, 0.25f, 1);
        }
    check_product(4, 4, 0, false, false, 1, 0.5f, 0);  // k = 0: c = beta·c
    check_product(4, 4, 0, false, false, 1, 0, 0);
}

TEST_CASE("matmul splits big products over threads with the same result as one thread") {
    int saved = thread_count();
    for (bool transpose_b : {false, true}) {
        const std::size_t m = 300, n = 260, k = 128;
        auto a = random_values(m * k, 4), b = random_values(n * k, 5);
        std::vector<float> one(m * n), two(m * n), columns(8 * n), columns_two(8 * n);
        gemm product{.m = m, .n = n, .k = k, .a = a.data(), .lda = k, .b = b.data(),
                     .ldb = transpose_b ? k : n, .transpose_b = transpose_b, .c = one.data(), .ldc = n};
        set_thread_count(1);
        matmul(product);
        check_product(m, n, k, false, transpose_b, 1, 0, 0);
        gemm few_rows = product;  // 8 rows: split by columns
        few_rows.m = 8;
        few_rows.c = columns.data();
        matmul(few_rows);
        set_thread_count(2);
        product.c = two.data();
        matmul(product);
        few_rows.c = columns_two.data();
        matmul(few_rows);
        check_product(m, n, k, false, transpose_b, 1, 0, 0);
        CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(columns.data(), columns_two.data(), columns.size() * sizeof(float)) == 0);
    }
    set_thread_count(saved);
}

TEST_CASE("matmul names its backend") { CHECK(matmul_backend().find("OpenBLAS") != std::string::npos); }

namespace {

// The product in double of a and b rounded to bfloat16: what a bfloat16 product must give,
// up to float32 accumulation.
double worst_bfloat16_error(const gemm& p, const std::vector<float>& before) {
    auto rounded = [](float x) { return bfloat16_to_float(float_to_bfloat16(x)); };
    double worst = 0;
    for (std::size_t i = 0; i < p.m; ++i)
        for (std::size_t j = 0; j < p.n; ++j) {
            double sum = 0;
            for (std::size_t l = 0; l < p.k; ++l) {
                float a = p.transpose_a ? p.a[l * p.lda + i] : p.a[i * p.lda + l];
                float b = p.transpose_b ? p.b[j * p.ldb + l] : p.b[l * p.ldb + j];
                sum += static_cast<double>(rounded(a)) * rounded(b);
            }
            double expected = p.alpha * sum + p.beta * static_cast<double>(before[i * p.ldc + j]);
            worst = std::max(worst, std::abs(p.c[i * p.ldc + j] - expected) / (1.0 + std::abs(expected)));
        }
    return worst;
}

}  // namespace

TEST_CASE("bfloat16 products: operands rounded to bfloat16, float32 sums; the same twice on a thread count") {
    int saved = thread_count();
    std::string unavailable = set_matmul_precision(matmul_precision::bfloat16);
    if (!unavailable.empty()) {
        // Without AVX512-BF16 or oneDNN the products stay float32 and say why.
        MESSAGE("bfloat16 products unavailable here: " << unavailable);
        CHECK(current_matmul_precision() == matmul_precision::float32);
        check_product(40, 300, 200, false, true, 1, 0, 0);
        return;
    }
    CHECK(current_matmul_precision() == matmul_precision::bfloat16);
    CHECK(matmul_backend().find("oneDNN") != std::string::npos);
    struct shape {
        std::size_t m, n, k;
        bool transpose_a, transpose_b;
        float alpha, beta;
        std::size_t padding;
    };
    for (shape s : {shape{300, 260, 128, false, true, 1, 0, 0}, shape{300, 260, 128, false, false, 0.5f, 1, 3},
                    shape{8, 700, 512, false, true, 1, 1, 0}, shape{8, 700, 512, false, false, 2, 0.5f, 5},
                    shape{129, 96, 200, true, false, 1, 0, 1}}) {
        std::size_t lda = (s.transpose_a ? s.m : s.k) + s.padding, ldb = (s.transpose_b ? s.k : s.n) + s.padding,
                    ldc = s.n + s.padding;
        auto a = random_values((s.transpose_a ? s.k : s.m) * lda, 6);
        auto b = random_values((s.transpose_b ? s.n : s.k) * ldb, 7);
        auto c = random_values(s.m * ldc, 8);
        for (int threads : {1, 2}) {
            set_thread_count(threads);
            std::vector<float> out = c;
            gemm product{.m = s.m, .n = s.n, .k = s.k, .a = a.data(), .lda = lda, .transpose_a = s.transpose_a,
                         .b = b.data(), .ldb = ldb, .transpose_b = s.transpose_b, .c = out.data(), .ldc = ldc,
                         .alpha = s.alpha, .beta = s.beta};
            matmul(product);
            INFO("m=" << s.m << " n=" << s.n << " k=" << s.k << " threads=" << threads);
            // float32 sums of k terms: rounding grows with k
            CHECK(worst_bfloat16_error(product, c) < 1e-6 + 1e-7 * static_cast<double>(s.k));
            std::vector<float> again = c;
            product.c = again.data();
            matmul(product);
            CHECK(again == out);
        }
    }
    set_matmul_precision(matmul_precision::float32);
    set_thread_count(saved);
}
