#include "train/data_parallel.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <exception>
#include <fmt/format.h>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>
#include <unistd.h>
#include <vector>

#ifdef LOWRANK_MPI
// Open MPI's header gives the types; its C++ bindings (another library) are left out.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace lowrank {
namespace {

std::unique_ptr<process_group> joined;

const char* launcher_variable() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK"})
        if (std::getenv(name)) return name;
    return nullptr;
}

// MPI counts are ints: larger buffers go in parts of this many elements.
constexpr std::size_t part_elements = std::size_t{1} << 30;

#ifdef LOWRANK_MPI

// The functions and handles of MPI we use, looked up in the library opened at run time.
// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT...) are the addresses of its
// global objects, which the header's macros would make us link against: they are looked
// up too.
struct mpi_api {
    decltype(&MPI_Init_thread) init_thread = nullptr;
    decltype(&MPI_Finalize) finalize = nullptr;
    decltype(&MPI_Comm_rank) comm_rank = nullptr;
    decltype(&MPI_Comm_size) comm_size = nullptr;
    decltype(&MPI_Allreduce) allreduce = nullptr;
    decltype(&MPI_Bcast) bcast = nullptr;
    MPI_Comm world = nullptr;
    MPI_Datatype float_type = nullptr, byte_type = nullptr;
    MPI_Op sum = nullptr;
};

mpi_api mpi;

template <class Pointer>
void find(void* handle, const char* name, Pointer& pointer, std::string& missing) {
    pointer = reinterpret_cast<Pointer>(dlsym(handle, name));
    if (!pointer && missing.empty()) missing = name;
}

void check(int status, const char* call) {
    // The default error handler (MPI_ERRORS_ARE_FATAL) ends the job before this.
    if (status != MPI_SUCCESS) throw error(fmt::format("{} failed (MPI error {})", call, status));
}

// Opens libmpi and joins the job: this process's rank and the job's size.
std::pair<int, int> mpi_join() {
    // RTLD_GLOBAL: Open MPI's own plugins, which it opens in turn, find its symbols there.
    void* handle = nullptr;
    for (const char* name : {"libmpi.so.40", "libmpi.so"})
        if ((handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL))) break;
    if (!handle)
        throw error(fmt::format("started by an MPI launcher ({} is set), but Open MPI's libmpi.so.40 does not load "
                                "(install libopenmpi3 on every host): {}", launcher_variable(), dlerror()));
    std::string missing;
    find(handle, "MPI_Init_thread", mpi.init_thread, missing);
    find(handle, "MPI_Finalize", mpi.finalize, missing);
    find(handle, "MPI_Comm_rank", mpi.comm_rank, missing);
    find(handle, "MPI_Comm_size", mpi.comm_size, missing);
    find(handle, "MPI_Allreduce", mpi.allreduce, missing);
    find(handle, "MPI_Bcast", mpi.bcast, missing);
    find(handle, "ompi_mpi_comm_world", mpi.world, missing);
    find(handle, "ompi_mpi_float", mpi.float_type, missing);
    find(handle, "ompi_mpi_byte", mpi.byte_type, missing);
    find(handle, "ompi_mpi_op_sum", mpi.sum, missing);
    if (!missing.empty()) throw error(fmt::format("libmpi lacks {}: lora-train runs under Open MPI", missing));
    int provided = 0, rank = 0, size = 0;
    check(mpi.init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    check(mpi.comm_rank(mpi.world, &rank), "MPI_Comm_rank");
    check(mpi.comm_size(mpi.world, &size), "MPI_Comm_size");
    return {rank, size};
}

void mpi_finalize() { mpi.finalize(); }

void mpi_sum(float* values, int count) {
    check(mpi.allreduce(MPI_IN_PLACE, values, count, mpi.float_type, mpi.sum, mpi.world), "MPI_Allreduce");
}

void mpi_broadcast(std::byte* bytes, int count) {
    check(mpi.bcast(bytes, count, mpi.byte_type, 0, mpi.world), "MPI_Bcast");
}

#else  // built without Open MPI's header: a launched process says so

[[noreturn]] std::pair<int, int> mpi_join() {
    throw error(fmt::format("started by an MPI launcher ({} is set), but this lora-train was built without Open MPI "
                            "(install libopenmpi-dev, then make)", launcher_variable()));
}

// Never reached: a process that did not join is a group of one, which communicates nothing.
void mpi_finalize() {}
void mpi_sum(float*, int) { throw std::logic_error("mpi_sum without MPI"); }
void mpi_broadcast(std::byte*, int) { throw std::logic_error("mpi_broadcast without MPI"); }

#endif

}  // namespace

process_group& process_group::world() {
    if (!joined) {
        std::unique_ptr<process_group> group(new process_group);
        if (launcher_variable()) group->join();
        joined = std::move(group);
    }
    return *joined;
}

std::size_t process_group::launched_rank() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"})
        if (const char* value = std::getenv(name)) return std::strtoull(value, nullptr, 10);
    return 0;
}

void process_group::join() {
    auto [rank, size] = mpi_join();
    launched_ = true;
    rank_ = static_cast<std::size_t>(rank);
    size_ = static_cast<std::size_t>(size);
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    host_ = host[0] ? host : "an unnamed host";
}

int process_group::finish(int status) {
    if (!joined || !joined->launched_) return status;
    if (status == 0 || joined->failure_shared_) mpi_finalize();
    return status;
}

std::string process_group::name() const { return fmt::format("rank {} on {}", rank_, host_); }

void process_group::sum(std::span<float> values) {
    if (size_ == 1) return;
    for (std::size_t begin = 0; begin < values.size(); begin += part_elements) {
        int count = static_cast<int>(std::min(part_elements, values.size() - begin));
        mpi_sum(values.data() + begin, count);
    }
}

void process_group::broadcast(std::span<std::byte> bytes) {
    if (size_ == 1) return;
    for (std::size_t begin = 0; begin < bytes.size(); begin += part_elements) {
        int count = static_cast<int>(std::min(part_elements, bytes.size() - begin));
        mpi_broadcast(bytes.data() + begin, count);
    }
}

void process_group::rethrow_named(std::exception_ptr failure) const {
    try {
        std::rethrow_exception(failure);
    } catch (const reported_elsewhere&) {
        throw;
    } catch (const usage_error& e) {
        // Only rank 0 prints usage errors (command_line::speaks): another rank's own command
        // line (mpirun's A : B form) is told as a runtime error.
        if (rank_ == 0) throw;
        throw error(fmt::format("{}: {}", name(), e.what()));
    } catch (const std::bad_alloc&) {
        if (rank_ == 0) throw;
        throw error(fmt::format("{}: out of memory", name()));
    } catch (const std::exception& e) {
        if (rank_ == 0) throw;
        throw error(fmt::format("{}: {}", name(), e.what()));
    }
}

void process_group::as_rank(const std::function<void()>& body) const {
    try {
        body();
    } catch (...) {
        rethrow_named(std::current_exception());
    }
}

void process_group::together(const std::function<void()>& body) {
    std::exception_ptr failure;
    float status = 0;  // 0: success, else the exit status the failure calls for
    try {
        body();
    } catch (const usage_error&) {
        failure = std::current_exception();
        status = rank_ == 0 ? 2 : 1;  // as rethrow_named tells it
    } catch (...) {
        failure = std::current_exception();
        status = 1;
    }
    std::vector<float> statuses(size_, 0.0f);
    statuses[rank_] = status;
    sum(statuses);
    auto first = std::find_if(statuses.begin(), statuses.end(), [](float s) { return s != 0; });
    if (first == statuses.end()) return;
    failure_shared_ = true;
    if (static_cast<std::size_t>(first - statuses.begin()) == rank_) rethrow_named(failure);
    throw reported_elsewhere(static_cast<int>(*first));
}

void process_group::fail_together(const error& failure) {
    failure_shared_ = true;
    if (rank_ == 0) throw failure;
    throw reported_elsewhere(1);
}

}  // namespace lowrank
