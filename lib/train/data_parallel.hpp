// Data-parallel training under MPI. `mpirun -np N lora-train ...` starts N processes (ranks);
// each reads the base model and the data itself, runs its share of every step's forward
// passes (order.hpp), and the ranks add up their gradients with one MPI_Allreduce a step, so
// that the optimizer steps alike everywhere. Rank 0 alone writes.
//
// A single process needs no MPI: Open MPI's library (libmpi.so.40, the ABI of Open MPI 3.0
// to 5.x) is opened at run time, and only in a process that an MPI launcher started
// (OMPI_COMM_WORLD_SIZE or PMIX_RANK in its environment: mpirun, or srun with PMIx).
// Nothing links against it, so lora-train runs alone where Open MPI is not installed and
// starts as fast as the other tools. Only the build needs Open MPI's header: the Makefile
// defines LOWRANK_MPI when it finds it; built without, a launched process says so.
//
// Failures. A failure before training (setup, on any rank) is shared through one collective
// (together()) and told once, by the first rank that met it. A failure found in summed
// figures (a NaN loss) is met by every rank at once (fail_together()) and told by rank 0.
// Any other failure is one rank's own: that rank tells it and exits, and the launcher then
// ends the job (the others may be waiting for it in a collective); so does a rank that dies.
#pragma once

#include "core/error.hpp"

#include <cstddef>
#include <functional>
#include <span>
#include <string>

namespace lowrank {

class process_group {
public:
    // This process's job: the ranks an MPI launcher started, joined on the first call
    // (MPI_Init_thread; MPI is called from this thread only), or a group of one, without
    // MPI. A launched process whose libmpi does not load is an error.
    static process_group& world();
    // This process's rank as its launcher's environment gives it, before joining (0 when no
    // launcher started it): which process speaks for the job about its command line.
    static std::size_t launched_rank();

    // Ends this process's part in the job, if it joined one, and returns `status`: after a
    // success, or a failure every rank shares, it waits for the others (MPI_Finalize);
    // after a failure of this rank's own it returns at once, so that its exit ends the job.
    static int finish(int status);

    std::size_t rank() const { return rank_; }
    std::size_t size() const { return size_; }
    bool launched() const { return launched_; }
    // The process in messages: "rank 1 on node7".
    std::string name() const;

    // Element-wise sum over the ranks, in place (MPI_Allreduce, MPI_SUM). Every rank gets the
    // same bits: floating-point addition is commutative, and Open MPI's algorithms combine
    // the same partial sums on every rank, only in either order.
    void sum(std::span<float> values);
    // Rank 0's bytes into the other ranks' (MPI_Bcast).
    void broadcast(std::span<std::byte> bytes);

    // Runs body on every rank, then compares notes (one MPI_Allreduce): when body threw on
    // any rank, this throws on every rank: that error on the first rank that failed,
    // reported_elsewhere on the others.
    void together(const std::function<void()>& body);
    // Runs body; an error it throws on a rank after the first names the rank
    // ("rank 1 on node7: FILE: what"; a usage error becomes an error there).
    void as_rank(const std::function<void()>& body) const;
    // A failure that every rank meets at the same point, found in summed figures: throws
    // `failure` on rank 0, reported_elsewhere on the others.
    [[noreturn]] void fail_together(const error& failure);

private:
    process_group() = default;
    void join();
    void rethrow_named(std::exception_ptr failure) const;

    std::size_t rank_ = 0, size_ = 1;
    bool launched_ = false;
    bool failure_shared_ = false;
    std::string host_;
};

}  // namespace lowrank
