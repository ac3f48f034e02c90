// The bfloat16 products of matmul() (matmul.hpp), through oneDNN's matmul primitive, for
// matmul.cpp only. oneDNN (libdnnl.so.2) is opened at run time, like OpenBLAS, and only
// when bfloat16 is asked for: the tools that never use it do not pay for loading a 40 MB
// library, and a machine without it still runs everything in float32.
#pragma once

#include "nn/matmul.hpp"

#include <cstdint>
#include <string>

namespace lowrank::onednn {

// Why bfloat16 products cannot run here ("the CPU lacks AVX512-BF16", "cannot load
// libdnnl.so.2: ..."), or empty when they can. Loads oneDNN the first time.
const std::string& unavailable_reason();
// oneDNN's version and the implementation it chose ("oneDNN 2.6.3, brg:avx512_core_bf16").
std::string description();

// c (m×n) = alpha · a·op(b) + beta · c on the calling thread, with `a` (m×k, row-major,
// contiguous) and `b` in bfloat16: b is (k×n) contiguous, or stored (n×k) when
// transpose_b. The products accumulate in float32. unavailable_reason() must be empty.
void gemm_bf16(std::size_t m, std::size_t n, std::size_t k, const std::uint16_t* a, const std::uint16_t* b,
               bool transpose_b, float* c, std::size_t ldc, float alpha, float beta);

}  // namespace lowrank::onednn
