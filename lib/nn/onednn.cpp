#include "nn/onednn.hpp"

#include "core/error.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.h>
#include <tuple>
#include <vector>

namespace lowrank::onednn {
namespace {

// The functions of oneDNN's C API we call, looked up in the library opened at run time
// (the header gives their types; nothing links against libdnnl).
struct api {
    decltype(&dnnl_engine_create) engine_create;
    decltype(&dnnl_stream_create) stream_create;
    decltype(&dnnl_memory_desc_init_by_strides) memory_desc_init_by_strides;
    decltype(&dnnl_matmul_desc_init) matmul_desc_init;
    decltype(&dnnl_primitive_attr_create) primitive_attr_create;
    decltype(&dnnl_primitive_attr_destroy) primitive_attr_destroy;
    decltype(&dnnl_primitive_attr_set_scratchpad_mode) primitive_attr_set_scratchpad_mode;
    decltype(&dnnl_primitive_attr_set_output_scales) primitive_attr_set_output_scales;
    decltype(&dnnl_primitive_attr_set_post_ops) primitive_attr_set_post_ops;
    decltype(&dnnl_post_ops_create) post_ops_create;
    decltype(&dnnl_post_ops_destroy) post_ops_destroy;
    decltype(&dnnl_post_ops_append_sum) post_ops_append_sum;
    decltype(&dnnl_primitive_desc_create) primitive_desc_create;
    decltype(&dnnl_primitive_desc_destroy) primitive_desc_destroy;
    decltype(&dnnl_primitive_desc_query) primitive_desc_query;
    decltype(&dnnl_primitive_desc_query_md) primitive_desc_query_md;
    decltype(&dnnl_memory_desc_get_size) memory_desc_get_size;
    decltype(&dnnl_primitive_create) primitive_create;
    decltype(&dnnl_primitive_execute) primitive_execute;
    decltype(&dnnl_memory_create) memory_create;
    decltype(&dnnl_memory_destroy) memory_destroy;
    decltype(&dnnl_stream_wait) stream_wait;
    decltype(&dnnl_stream_destroy) stream_destroy;
    decltype(&dnnl_version) version;
    void (*omp_set_num_threads)(int) = nullptr;
};

struct library {
    api call{};
    dnnl_engine_t engine = nullptr;
    std::string unavailable, version;
};

template <class Function>
void find(void* handle, const char* name, Function& function, std::string& missing) {
    function = reinterpret_cast<Function>(dlsym(handle, name));
    if (!function && missing.empty()) missing = name;
}

library open_library() {
    library lib;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) {
        lib.unavailable = "the CPU lacks AVX-512";
        return lib;
    }
    // GCC's __builtin_cpu_supports does not know AVX512-BF16 before version 13: CPUID leaf 7,
    // sub-leaf 1, EAX bit 5.
    unsigned eax = 7, ebx = 0, ecx = 1, edx = 0;
    __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    if (!(eax & (1u << 5))) {
        lib.unavailable = "the CPU lacks AVX512-BF16";
        return lib;
    }
    void* handle = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        lib.unavailable = fmt::format("cannot load oneDNN (libdnnl.so.2): {}", dlerror());
        return lib;
    }
    api& a = lib.call;
    std::string missing;
    find(handle, "dnnl_engine_create", a.engine_create, missing);
    find(handle, "dnnl_stream_create", a.stream_create, missing);
    find(handle, "dnnl_memory_desc_init_by_strides", a.memory_desc_init_by_strides, missing);
    find(handle, "dnnl_matmul_desc_init", a.matmul_desc_init, missing);
    find(handle, "dnnl_primitive_attr_create", a.primitive_attr_create, missing);
    find(handle, "dnnl_primitive_attr_destroy", a.primitive_attr_destroy, missing);
    find(handle, "dnnl_primitive_attr_set_scratchpad_mode", a.primitive_attr_set_scratchpad_mode, missing);
    find(handle, "dnnl_primitive_attr_set_output_scales", a.primitive_attr_set_output_scales, missing);
    find(handle, "dnnl_primitive_attr_set_post_ops", a.primitive_attr_set_post_ops, missing);
    find(handle, "dnnl_post_ops_create", a.post_ops_create, missing);
    find(handle, "dnnl_post_ops_destroy", a.post_ops_destroy, missing);
    find(handle, "dnnl_post_ops_append_sum", a.post_ops_append_sum, missing);
    find(handle, "dnnl_primitive_desc_create", a.primitive_desc_create, missing);
    find(handle, "dnnl_primitive_desc_destroy", a.primitive_desc_destroy, missing);
    find(handle, "dnnl_primitive_desc_query", a.primitive_desc_query, missing);
    find(handle, "dnnl_primitive_desc_query_md", a.primitive_desc_query_md, missing);
    find(handle, "dnnl_memory_desc_get_size", a.memory_desc_get_size, missing);
    find(handle, "dnnl_primitive_create", a.primitive_create, missing);
    find(handle, "dnnl_primitive_execute", a.primitive_execute, missing);
    find(handle, "dnnl_memory_create", a.memory_create, missing);
    find(handle, "dnnl_memory_destroy", a.memory_destroy, missing);
    find(handle, "dnnl_stream_wait", a.stream_wait, missing);
    find(handle, "dnnl_stream_destroy", a.stream_destroy, missing);
    find(handle, "dnnl_version", a.version, missing);
    // oneDNN's Debian build threads with OpenMP: each call runs on the calling thread only
    // (matmul() splits the work over our threads), so OpenMP is held to one thread there.
    find(dlopen("libgomp.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD), "omp_set_num_threads",
         a.omp_set_num_threads, missing);
    if (!missing.empty()) {
        lib.unavailable = fmt::format("libdnnl.so.2 lacks {}", missing);
        return lib;
    }
    if (a.engine_create(&lib.engine, dnnl_cpu, 0) != dnnl_success) {
        lib.unavailable = "oneDNN cannot create a CPU engine";
        return lib;
    }
    const dnnl_version_t* v = a.version();
    lib.version = fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
    return lib;
}

library& shared() {
    static std::once_flag opened;
    static library lib;
    std::call_once(opened, [] { lib = open_library(); });
    return lib;
}

void check(dnnl_status_t status, const char* what) {
    if (status != dnnl_success) throw error(fmt::format("oneDNN: {} failed (status {})", what, static_cast<int>(status)));
}

// A matmul primitive for one shape, alpha and beta, with its scratchpad size.
struct primitive {
    dnnl_primitive_t handle = nullptr;
    dnnl_memory_desc_t src{}, weights{}, dst{}, scratchpad{};
    std::size_t scratchpad_bytes = 0;
    std::string implementation;
};

using shape_key = std::tuple<std::size_t, std::size_t, std::size_t, std::size_t, bool, float, float>;

dnnl_memory_desc_t plain_desc(const api& a, dnnl_dim_t rows, dnnl_dim_t columns, dnnl_dim_t row_stride,
                              dnnl_dim_t column_stride, dnnl_data_type_t type) {
    dnnl_memory_desc_t desc;
    dnnl_dims_t dims = {rows, columns}, strides = {row_stride, column_stride};
    check(a.memory_desc_init_by_strides(&desc, 2, dims, type, strides), "memory_desc_init_by_strides");
    return desc;
}

primitive create(const library& lib, const shape_key& key) {
    const api& a = lib.call;
    auto [m, n, k, ldc, transpose_b, alpha, beta] = key;
    auto M = static_cast<dnnl_dim_t>(m), N = static_cast<dnnl_dim_t>(n), K = static_cast<dnnl_dim_t>(k);
    primitive p;
    p.src = plain_desc(a, M, K, K, 1, dnnl_bf16);
    p.weights = transpose_b ? plain_desc(a, K, N, 1, K, dnnl_bf16) : plain_desc(a, K, N, N, 1, dnnl_bf16);
    p.dst = plain_desc(a, M, N, static_cast<dnnl_dim_t>(ldc), 1, dnnl_f32);
    dnnl_matmul_desc_t desc;
    check(a.matmul_desc_init(&desc, &p.src, &p.weights, nullptr, &p.dst), "matmul_desc_init");
    dnnl_primitive_attr_t attr;
    check(a.primitive_attr_create(&attr), "primitive_attr_create");
    std::unique_ptr<std::remove_pointer_t<dnnl_primitive_attr_t>, decltype(a.primitive_attr_destroy)> attr_owner(
        attr, a.primitive_attr_destroy);
    check(a.primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode");
    if (alpha != 1) check(a.primitive_attr_set_output_scales(attr, 1, 0, &alpha), "set_output_scales");
    if (beta != 0) {  // dst = alpha · a·b + beta · dst
        dnnl_post_ops_t post_ops;
        check(a.post_ops_create(&post_ops), "post_ops_create");
        check(a.post_ops_append_sum(post_ops, beta), "post_ops_append_sum");
        check(a.primitive_attr_set_post_ops(attr, post_ops), "set_post_ops");
        a.post_ops_destroy(post_ops);
    }
    dnnl_primitive_desc_t pd;
    check(a.primitive_desc_create(&pd, &desc, attr, lib.engine, nullptr), "primitive_desc_create");
    const char* name = nullptr;
    if (a.primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name) p.implementation = name;
    p.scratchpad = *a.primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p.scratchpad_bytes = a.memory_desc_get_size(&p.scratchpad);
    dnnl_status_t created = a.primitive_create(&p.handle, pd);
    a.primitive_desc_destroy(pd);
    check(created, "primitive_create");
    return p;
}

// Primitives by shape, made once and kept for the process (a model has a handful of
// shapes). Primitives run on several threads at once: each call brings its own stream
// and scratchpad. The map is never destroyed: a destroyed map would drop the handles
// without destroying the primitives (a leak at exit), and destroying them at exit would
// call into oneDNN after its own teardown may have begun.
const primitive& primitive_for(const shape_key& key) {
    static std::mutex mutex;
    static auto& primitives = *new std::map<shape_key, primitive>;
    std::lock_guard lock(mutex);
    auto found = primitives.find(key);
    if (found == primitives.end()) found = primitives.emplace(key, create(shared(), key)).first;
    return found->second;
}

// One memory object for a call, released at the end of it.
class memory {
public:
    memory(const api& a, dnnl_engine_t engine, const dnnl_memory_desc_t& desc, const void* data) : api_(a) {
        check(a.memory_create(&handle_, &desc, engine, const_cast<void*>(data)), "memory_create");
    }
    ~memory() { api_.memory_destroy(handle_); }
    memory(const memory&) = delete;
    memory& operator=(const memory&) = delete;
    dnnl_memory_t get() const { return handle_; }

private:
    const api& api_;
    dnnl_memory_t handle_ = nullptr;
};

// A thread's stream, destroyed with the thread.
struct thread_stream {
    dnnl_stream_t handle = nullptr;
    decltype(&dnnl_stream_destroy) destroy = nullptr;
    ~thread_stream() {
        if (handle) destroy(handle);
    }
};

}  // namespace

const std::string& unavailable_reason() { return shared().unavailable; }

std::string description() {
    const library& lib = shared();
    if (!lib.unavailable.empty()) return lib.unavailable;
    std::string implementation = primitive_for({256, 256, 256, 256, true, 1.0f, 0.0f}).implementation;
    return fmt::format("{}, {}", lib.version, implementation);
}

void gemm_bf16(std::size_t m, std::size_t n, std::size_t k, const std::uint16_t* a, const std::uint16_t* b,
               bool transpose_b, float* c, std::size_t ldc, float alpha, float beta) {
    const library& lib = shared();
    const api& call = lib.call;
    const primitive& p = primitive_for({m, n, k, ldc, transpose_b, alpha, beta});
    thread_local thread_stream stream;
    thread_local std::vector<std::byte> scratchpad;
    if (!stream.handle) {
        check(call.stream_create(&stream.handle, lib.engine, dnnl_stream_default_flags), "stream_create");
        stream.destroy = call.stream_destroy;
        call.omp_set_num_threads(1);
    }
    if (scratchpad.size() < p.scratchpad_bytes) scratchpad.resize(p.scratchpad_bytes);
    memory src(call, lib.engine, p.src, a), weights(call, lib.engine, p.weights, b), dst(call, lib.engine, p.dst, c),
        pad(call, lib.engine, p.scratchpad, scratchpad.data());
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src.get()},
                              {DNNL_ARG_WEIGHTS, weights.get()},
                              {DNNL_ARG_DST, dst.get()},
                              {DNNL_ARG_SCRATCHPAD, pad.get()}};
    check(call.primitive_execute(p.handle, stream.handle, 4, args), "primitive_execute");
    check(call.stream_wait(stream.handle), "stream_wait");
}

}  // namespace lowrank::onednn
