// Writing outputs. A file is never left half-written: it is written to a temporary file
// beside the target, flushed to disk, and renamed over the target only on commit(). A run
// that fails, is interrupted (SIGINT, SIGTERM, SIGHUP) or is killed leaves the old file, or
// none. Standard output is flushed and checked on commit, so a full disk is an error.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace lowrank {

enum class output_kind { text, binary };

class output_stream {
public:
    // "-" or "" is standard output. Binary output to a terminal is refused. A device or a
    // named pipe (/dev/null, a FIFO) is written in place, without a temporary file.
    output_stream(const std::string& path, output_kind kind);
    ~output_stream();  // without commit(), removes the temporary file
    output_stream(const output_stream&) = delete;
    output_stream& operator=(const output_stream&) = delete;

    std::FILE* file() const { return file_; }
    // The target's path as given ("-" for standard output).
    const std::string& path() const { return path_; }
    bool is_stdout() const { return file_ == stdout; }
    // Whether the output is a regular file (written through a temporary file, so it can
    // seek), rather than standard output, a device or a named pipe.
    bool is_regular_file() const { return !temporary_path_.empty(); }

    void write(const void* data, std::size_t size);
    void write(std::string_view text) { write(text.data(), text.size()); }

    // Makes the output final: flush, fsync and rename for a file; flush for stdout.
    void commit();

private:
    std::string path_;
    std::string temporary_path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

// Flushes standard output and throws if anything written to it was lost.
void check_stdout();

// Whether binary data may go to standard output (it is not a terminal).
void refuse_binary_on_terminal(std::string_view what);

}  // namespace lowrank
