// The one matrix-product interface of the library: every matrix product of the models goes
// through matmul(), so that the backend and the threading are decided in one place:
// OpenBLAS's sgemm in float32, or, when bfloat16 is asked for and the CPU has AVX512-BF16,
// oneDNN's bfloat16 matmul.
//
//     c (m×n) = alpha · op(a) · op(b) + beta · c
//
// Row-major, float32. op(a) is a (m×k), or its transpose when transpose_a (then a is stored
// k×m); op(b) is b (k×n), or its transpose when transpose_b (b stored n×k). Strides are in
// elements between consecutive stored rows, so sub-matrices (one attention head's columns
// of a fused q/k/v buffer) are operands as they are.
#pragma once

#include <cstddef>
#include <string>

namespace lowrank {

struct gemm {
    std::size_t m = 0, n = 0, k = 0;
    const float* a = nullptr;
    std::size_t lda = 0;
    bool transpose_a = false;
    const float* b = nullptr;
    std::size_t ldb = 0;
    bool transpose_b = false;
    float* c = nullptr;
    std::size_t ldc = 0;
    float alpha = 1, beta = 0;
};

// Runs the product on up to thread_count() threads: the rows (or, for few rows, the
// columns) of c are split in fixed blocks, each computed by one single-threaded sgemm, so
// the result depends only on the shapes and the thread count. Small products, and
// products inside a parallel_for, run on the calling thread.
void matmul(const gemm& product);

// How products compute. float32: exactly (OpenBLAS). bfloat16: the products of at least
// 2^21 multiply-adds round a and b to bfloat16 (8 bits of mantissa; round to nearest
// even) and accumulate in float32, about 3.5 times as fast on AVX512-BF16 CPUs; smaller
// ones (attention's per-head products) stay float32. Rounding changes each operand by at
// most 2^-9 of itself, so products keep errors of that order: for inference (embeddings
// within a cosine of 0.999 of float32's), not for training.
enum class matmul_precision { float32, bfloat16 };

// Sets the precision of the products that follow, in the whole process. Returns why
// bfloat16 cannot be used here ("the CPU lacks AVX512-BF16", "cannot load oneDNN..."),
// and then products stay float32; empty when the precision is in use.
std::string set_matmul_precision(matmul_precision precision);
matmul_precision current_matmul_precision();

// The backend in words, for benchmarks and --version-like reports:
// "OpenBLAS 0.3.21 ... (SkylakeX kernels)", and oneDNN's when bfloat16 is in use.
std::string matmul_backend();

}  // namespace lowrank
