#include "nn/matmul.hpp"

#include "core/error.hpp"
#include "core/threads.hpp"
#include "formats/dtype.hpp"
#include "nn/onednn.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <dlfcn.h>
#include <fmt/format.h>
#include <mutex>
#include <vector>

namespace lowrank {
namespace {

// OpenBLAS is opened at run time rather than linked, for one reason: its kernels are chosen
// once, when the library loads, from OPENBLAS_CORETYPE or from the CPU id, and OpenBLAS
// 0.3.21 does not know recent AVX-512 CPUs (AMD Zen 4/5): it falls back to its AVX2 kernels,
// which run sgemm at about half the speed of its AVX-512 ones on the same CPU. Loading it
// ourselves lets us ask for the AVX-512 kernels where the CPU has them, unless the user
// chose with OPENBLAS_CORETYPE. Its own threads are not used (one thread per call): the
// products are split over our threads, which do not busy-wait between calls.
constexpr int row_major = 101, no_transpose = 111, transpose = 112;

using sgemm_function = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                                float*, int);
using set_threads_function = void (*)(int);
using get_threads_function = int (*)();
using text_function = char* (*)();

struct blas_library {
    sgemm_function sgemm = nullptr;
    set_threads_function set_threads = nullptr;
    get_threads_function get_threads = nullptr;
    std::string description;
};

bool has_avx512() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
}

// Sets an environment variable for the library's initialisation only, unless the user set it.
class temporary_environment {
public:
    temporary_environment(const char* name, const char* value) : name_(name) {
        if (value && !std::getenv(name)) set_ = setenv(name, value, 0) == 0;
    }
    ~temporary_environment() {
        if (set_) unsetenv(name_);
    }

private:
    const char* name_;
    bool set_ = false;
};

blas_library open_blas() {
    blas_library blas;
    void* handle = nullptr;
    {
        temporary_environment kernels("OPENBLAS_CORETYPE", has_avx512() ? "SkylakeX" : nullptr);
        temporary_environment threads("OPENBLAS_NUM_THREADS", "1");
        for (const char* name : {"libopenblas.so.0", "libopenblas.so"})
            if ((handle = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    }
    if (!handle) throw error(fmt::format("cannot load OpenBLAS (libopenblas.so.0): {}", dlerror()));
    blas.sgemm = reinterpret_cast<sgemm_function>(dlsym(handle, "cblas_sgemm"));
    blas.set_threads = reinterpret_cast<set_threads_function>(dlsym(handle, "openblas_set_num_threads"));
    blas.get_threads = reinterpret_cast<get_threads_function>(dlsym(handle, "openblas_get_num_threads"));
    auto config = reinterpret_cast<text_function>(dlsym(handle, "openblas_get_config"));
    auto core = reinterpret_cast<text_function>(dlsym(handle, "openblas_get_corename"));
    if (!blas.sgemm || !blas.set_threads || !blas.get_threads)
        throw error("libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads");
    blas.description = fmt::format("{} ({} kernels)", config ? config() : "OpenBLAS", core ? core() : "unknown");
    blas.set_threads(1);
    return blas;
}

const blas_library& blas() {
    static std::once_flag opened;
    static blas_library library;
    std::call_once(opened, [] { library = open_blas(); });
    return library;
}

void sgemm(const blas_library& library, const gemm& p) {
    auto checked = [](std::size_t value) { return static_cast<int>(std::max<std::size_t>(value, 1)); };
    library.sgemm(row_major, p.transpose_a ? transpose : no_transpose, p.transpose_b ? transpose : no_transpose,
                  static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k), p.alpha, p.a, checked(p.lda),
                  p.b, checked(p.ldb), p.beta, p.c, checked(p.ldc));
}

// The product restricted to rows [begin, end) of c.
gemm row_block(const gemm& p, std::size_t begin, std::size_t end) {
    gemm block = p;
    block.m = end - begin;
    block.a = p.transpose_a ? p.a + begin : p.a + begin * p.lda;
    block.c = p.c + begin * p.ldc;
    return block;
}

// The product restricted to columns [begin, end) of c.
gemm column_block(const gemm& p, std::size_t begin, std::size_t end) {
    gemm block = p;
    block.n = end - begin;
    block.b = p.transpose_b ? p.b + begin * p.ldb : p.b + begin;
    block.c = p.c + begin;
    return block;
}

// Below this many multiply-adds a product is not worth waking a second thread for, nor
// rounding to bfloat16.
constexpr double parallel_threshold = 1 << 21;
// Blocks are cut at multiples of this many rows or columns (the kernels' tile sizes).
constexpr std::size_t block_alignment = 16;

std::atomic<matmul_precision> precision{matmul_precision::float32};

// Runs block(product restricted to a block of rows or columns of c) for a fixed split of
// c over the threads (by rows, unless prefer_columns and there are enough columns), or
// block(p) on the calling thread when splitting does not pay.
template <class Block>
void split_product(const gemm& p, bool prefer_columns, Block&& block) {
    std::size_t parts = static_cast<std::size_t>(thread_count());
    double work = static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    bool columns_possible = p.n >= parts * 2 * block_alignment;
    bool split_rows = p.m >= parts * 2 * block_alignment && !(prefer_columns && columns_possible);
    bool split_columns = !split_rows && columns_possible;
    if (parts <= 1 || work < parallel_threshold || (!split_rows && !split_columns)) {
        block(p);
        return;
    }
    std::size_t extent = split_rows ? p.m : p.n;
    std::size_t blocks = (extent + block_alignment - 1) / block_alignment;
    parallel_for(parts, [&](std::size_t first, std::size_t last) {
        for (std::size_t part = first; part < last; ++part) {
            std::size_t begin = std::min(extent, blocks * part / parts * block_alignment);
            std::size_t end = std::min(extent, blocks * (part + 1) / parts * block_alignment);
            if (begin == end) continue;
            block(split_rows ? row_block(p, begin, end) : column_block(p, begin, end));
        }
    });
}

// Rows [0, rows) of `columns` floats, `stride` apart (or, transposed, the columns of a
// stored (columns × rows) matrix), to contiguous bfloat16.
void to_bfloat16(const float* values, std::size_t rows, std::size_t columns, std::size_t stride, bool transposed,
                 std::vector<std::uint16_t>& out) {
    out.resize(rows * columns);
    auto* target = reinterpret_cast<std::byte*>(out.data());
    if (transposed) {
        std::vector<float> row(columns);
        for (std::size_t i = 0; i < rows; ++i) {
            for (std::size_t j = 0; j < columns; ++j) row[j] = values[j * stride + i];
            convert_from_float(row.data(), columns, dtype::bf16, target + i * columns * 2);
        }
    } else if (stride == columns) {
        convert_from_float(values, rows * columns, dtype::bf16, target);
    } else {
        for (std::size_t i = 0; i < rows; ++i)
            convert_from_float(values + i * stride, columns, dtype::bf16, target + i * columns * 2);
    }
}

// c = alpha · op(a)·op(b) + beta · c with a and b rounded to bfloat16: b is rounded once
// (its rows split over the threads), each block of c rounds its own rows of a.
void matmul_bfloat16(const gemm& p) {
    // b as stored: (n × k) when transposed, else (k × n)
    const std::size_t b_rows = p.transpose_b ? p.n : p.k, b_columns = p.transpose_b ? p.k : p.n;
    // Kept from call to call (no page faults each time); the threads below share this
    // thread's buffer through the reference.
    thread_local std::vector<std::uint16_t> b_buffer;
    std::vector<std::uint16_t>& b = b_buffer;
    b.resize(b_rows * b_columns);
    parallel_for(b_rows, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            convert_from_float(p.b + i * p.ldb, b_columns, dtype::bf16,
                               reinterpret_cast<std::byte*>(b.data() + i * b_columns));
    });
    // Each block of rows needs all of b, rounded and repacked by oneDNN; each block of
    // columns all of a: split the way that repeats the smaller operand.
    split_product(p, p.m < p.n, [&](const gemm& block) {
        thread_local std::vector<std::uint16_t> a;
        to_bfloat16(block.a, block.m, block.k, block.lda, block.transpose_a, a);
        // a column block of c reads columns [offset, offset + block.n) of op(b)
        std::size_t offset = static_cast<std::size_t>(block.c - p.c) % p.ldc;
        const std::uint16_t* b_block = b.data() + (p.transpose_b ? offset * b_columns : offset);
        if (!p.transpose_b && block.n != p.n) {  // (k × n') out of (k × n): copy, oneDNN wants it dense
            thread_local std::vector<std::uint16_t> columns;
            columns.resize(block.k * block.n);
            for (std::size_t l = 0; l < block.k; ++l)
                std::copy_n(b_block + l * b_columns, block.n, columns.data() + l * block.n);
            b_block = columns.data();
        }
        onednn::gemm_bf16(block.m, block.n, block.k, a.data(), b_block, p.transpose_b, block.c, block.ldc, block.alpha,
                          block.beta);
    });
}

}  // namespace

std::string set_matmul_precision(matmul_precision wanted) {
    if (wanted == matmul_precision::bfloat16 && !onednn::unavailable_reason().empty()) {
        precision = matmul_precision::float32;
        return onednn::unavailable_reason();
    }
    precision = wanted;
    return "";
}

matmul_precision current_matmul_precision() { return precision; }

void matmul(const gemm& p) {
    if (p.m == 0 || p.n == 0) return;
    if (p.k == 0) {  // c = beta · c (OpenBLAS would reject the zero leading dimensions)
        for (std::size_t i = 0; i < p.m; ++i)
            for (std::size_t j = 0; j < p.n; ++j) p.c[i * p.ldc + j] = p.beta == 0 ? 0 : p.beta * p.c[i * p.ldc + j];
        return;
    }
    double work = static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    if (precision == matmul_precision::bfloat16 && work >= parallel_threshold) {
        matmul_bfloat16(p);
        return;
    }
    const blas_library& library = blas();
    if (library.get_threads() != 1) library.set_threads(1);  // another part of the process changed it
    split_product(p, false, [&](const gemm& block) { sgemm(library, block); });
}

std::string matmul_backend() {
    if (precision == matmul_precision::bfloat16) return fmt::format("{}; bfloat16: {}", blas().description, onednn::description());
    return blas().description;
}

}  // namespace lowrank
