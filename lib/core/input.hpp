// Reading inputs: files through a read-only mmap, stdin ("-") into memory, and lines.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lowrank {

// How a mapping brings the file into memory: all of it at once (fast to read everything
// afterwards), or page by page as it is read (for files streamed through once, larger than
// what should be resident at a time; pairs with release()).
enum class page_loading { eager, lazy };

// A regular file mapped read-only. Zero-copy: views stay valid while the object lives.
class mapped_file {
public:
    explicit mapped_file(const std::string& path, page_loading loading = page_loading::eager);
    ~mapped_file();
    mapped_file(mapped_file&& other) noexcept;
    mapped_file& operator=(mapped_file&& other) noexcept;
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    const std::string& path() const { return path_; }
    std::size_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }
    std::string_view text() const { return {static_cast<const char*>(data_), size_}; }

    // Drops the pages of [offset, offset + size) from this process's resident memory (the
    // file stays in the page cache; reading them again faults them back in). Streaming
    // readers call it on what they are done with, so that resident memory stays small.
    void release(std::size_t offset, std::size_t size) const;

private:
    std::string path_;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// A whole input as bytes: a regular file is mapped, anything else (stdin as "-", a pipe,
// a terminal) is read into memory.
class input_text {
public:
    explicit input_text(const std::string& path);

    const std::string& path() const { return path_; }
    std::string_view text() const { return text_; }

private:
    std::string path_;
    std::optional<mapped_file> mapped_;
    std::string owned_;
    std::string_view text_;
};

// Reads a file or stdin ("-") as a stream, in blocks of whole lines, for inputs too large
// to hold in memory: memory stays near the block size whatever the input's size.
class line_block_reader {
public:
    explicit line_block_reader(const std::string& path, std::size_t block_bytes = std::size_t{16} << 20);
    ~line_block_reader();
    line_block_reader(const line_block_reader&) = delete;
    line_block_reader& operator=(const line_block_reader&) = delete;

    // The next block: whole lines (each with its newline), the last one possibly without.
    // A line longer than the block size comes whole. False at the end of the input.
    bool next(std::string_view& block);
    const std::string& path() const { return path_; }
    // The size of a regular file (for progress), or 0.
    std::size_t size() const { return size_; }

private:
    std::string path_;
    int fd_ = -1;
    std::size_t size_ = 0, block_bytes_;
    std::string buffer_;
    std::size_t used_ = 0, handed_ = 0;  // bytes in buffer_; bytes of it given out last time
    bool end_ = false;
};

// Reads all of a file descriptor into a string (for pipes and stdin).
std::string read_all(int fd, const std::string& path);

// Walks the lines of a text. A line ends at "\n", which is not part of it, nor is a "\r"
// right before it (CRLF files read like LF files). A last line without "\n" still counts.
class line_cursor {
public:
    explicit line_cursor(std::string_view text) : rest_(text) {}

    // The next line, or false at the end of the text.
    bool next(std::string_view& line);
    // 1-based number of the line last returned by next().
    std::size_t line_number() const { return line_number_; }
    // How many lines next() will still return (counts the newlines left: one fast pass).
    std::size_t lines_left() const;

private:
    std::string_view rest_;
    std::size_t line_number_ = 0;
};

// The text without a UTF-8 byte order mark at its start.
std::string_view strip_byte_order_mark(std::string_view text);

}  // namespace lowrank
