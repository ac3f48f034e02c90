// The one matrix-product interface of the library: every matrix product of the models goes
// through matmul(), so that the backend (OpenBLAS's sgemm today; a bf16 backend may sit
// beside it) and the threading are decided in one place.
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

// The backend in words, for benchmarks and --version-like reports:
// "OpenBLAS 0.3.21 ... (SkylakeX kernels)".
std::string matmul_backend();

}  // namespace lowrank
