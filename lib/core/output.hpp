// Writing outputs. A file is never left half-written: it is written to a temporary file
// beside the target, flushed to disk, and renamed over the target only on commit(). A run
// that fails, is interrupted (SIGINT, SIGTERM, SIGHUP) or is killed leaves the old file, or
// none. Standard output is flushed and checked on commit, so a full disk is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
    // Appends `size` bytes of the file open as `source_fd`, starting at `offset`. Between
    // regular files the kernel copies them (copy_file_range) without their passing through
    // this process; otherwise (a pipe, another file system on an old kernel) they are read
    // and written. `source_path` is for messages.
    void copy_from(int source_fd, std::uint64_t offset, std::uint64_t size, std::string_view source_path);

    // Pushes buffered bytes to the file, so that written_path() can be read back.
    void flush();
    // Asks the kernel to start writing to disk what was written so far, without waiting
    // (sync_file_range), so that commit()'s fsync has less left to wait for: for large
    // outputs that are written while other work goes on. Nothing for standard output.
    void start_writeback();
    // Where the bytes written so far can be read before commit(): the temporary file (the
    // target itself for standard output, which cannot be read back).
    const std::string& written_path() const { return temporary_path_.empty() ? path_ : temporary_path_; }

    // Makes the output final: flush, fsync and rename for a file; flush for stdout.
    void commit();

private:
    std::string path_;
    std::string temporary_path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

// A folder written as a whole (a sharded checkpoint): its files are written into a
// temporary folder beside the target, and commit() moves that folder into place with one
// rename, so the target is at every moment either what it was or complete. A failed,
// interrupted (SIGINT, SIGTERM, SIGHUP) or killed run leaves the target as it was.
//
// A target that exists must be an empty folder, or `replace_existing` must be true; then
// the old folder and the new one are swapped in one atomic rename (renameat2 with
// RENAME_EXCHANGE) and the old one is removed. (Killed between the swap and the removal,
// the old folder remains beside the target under its temporary name.)
class output_folder {
public:
    output_folder(const std::string& path, bool replace_existing);
    ~output_folder();  // without commit(), removes the temporary folder and its files
    output_folder(const output_folder&) = delete;
    output_folder& operator=(const output_folder&) = delete;

    const std::string& path() const { return path_; }
    // The path of the file `name` inside the temporary folder (write it with an
    // output_stream and commit that stream before committing the folder).
    std::string file(const std::string& name);

    // fsyncs the folder and renames it into place.
    void commit();

private:
    void move_into_place();

    std::string path_;
    std::string temporary_path_;
    std::vector<std::string> files_;
    bool replace_existing_;
    bool committed_ = false;
};

// Flushes standard output and throws if anything written to it was lost.
void check_stdout();

// Whether binary data may go to standard output (it is not a terminal).
void refuse_binary_on_terminal(std::string_view what);

}  // namespace lowrank
