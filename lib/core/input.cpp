#include "core/input.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace lowrank {
namespace {

// Closes a file descriptor when it goes out of scope.
struct descriptor {
    int fd;
    ~descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

int open_for_reading(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error_in(path, system_message(errno));
    return fd;
}

}  // namespace

mapped_file::mapped_file(const std::string& path, page_loading loading) : path_(path) {
    descriptor file{open_for_reading(path)};
    struct stat info {};
    if (::fstat(file.fd, &info) != 0) throw error_in(path, system_message(errno));
    if (S_ISDIR(info.st_mode)) throw error_in(path, "is a directory");
    if (!S_ISREG(info.st_mode)) throw error_in(path, "not a regular file");
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) return;  // mmap refuses empty mappings; an empty view is what we want
    int flags = MAP_PRIVATE | (loading == page_loading::eager ? MAP_POPULATE : 0);
    data_ = ::mmap(nullptr, size_, PROT_READ, flags, file.fd, 0);
    if (data_ == MAP_FAILED) {
        data_ = nullptr;
        throw error_in(path, "cannot map: " + system_message(errno));
    }
    if (loading == page_loading::lazy) ::madvise(data_, size_, MADV_SEQUENTIAL);  // read ahead
}

void mapped_file::release(std::size_t offset, std::size_t size) const {
    if (!data_ || size == 0 || offset >= size_) return;
    // Whole pages only: round the start down and the end up. A page shared with a neighbour
    // that is still in use just faults in again (the mapping is read-only, nothing is lost).
    static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::size_t begin = offset / page * page, end = std::min(size_, offset + size);
    ::madvise(static_cast<char*>(data_) + begin, end - begin, MADV_DONTNEED);
}

mapped_file::~mapped_file() {
    if (data_) ::munmap(data_, size_);
}

mapped_file::mapped_file(mapped_file&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
    if (this != &other) {
        if (data_) ::munmap(data_, size_);
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

std::string read_all(int fd, const std::string& path) {
    std::string data;
    std::size_t used = 0;
    for (;;) {
        if (data.size() - used < (1u << 16)) data.resize(std::max<std::size_t>(data.size() * 2, 1u << 20));
        ssize_t got = ::read(fd, data.data() + used, data.size() - used);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw error_in(path, system_message(errno));
        }
        if (got == 0) break;
        used += static_cast<std::size_t>(got);
    }
    data.resize(used);
    return data;
}

input_text::input_text(const std::string& path) : path_(path) {
    if (path.empty() || path == "-") {
        owned_ = read_all(STDIN_FILENO, path);
        text_ = owned_;
        return;
    }
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
        mapped_.emplace(path);
        text_ = mapped_->text();
        return;
    }
    descriptor file{open_for_reading(path)};
    if (::fstat(file.fd, &info) == 0 && S_ISDIR(info.st_mode)) throw error_in(path, "is a directory");
    owned_ = read_all(file.fd, path);
    text_ = owned_;
}

line_block_reader::line_block_reader(const std::string& path, std::size_t block_bytes)
    : path_(path), block_bytes_(block_bytes) {
    if (path.empty() || path == "-") {
        fd_ = STDIN_FILENO;
        return;
    }
    fd_ = open_for_reading(path);
    struct stat info {};
    if (::fstat(fd_, &info) == 0) {
        if (S_ISDIR(info.st_mode)) {
            ::close(fd_);
            throw error_in(path, "is a directory");
        }
        if (S_ISREG(info.st_mode)) size_ = static_cast<std::size_t>(info.st_size);
    }
}

line_block_reader::~line_block_reader() {
    if (fd_ > STDIN_FILENO) ::close(fd_);
}

bool line_block_reader::next(std::string_view& block) {
    // What follows the last block's final newline moves to the front.
    std::memmove(buffer_.data(), buffer_.data() + handed_, used_ - handed_);
    used_ -= handed_;
    handed_ = 0;
    for (;;) {
        if (buffer_.size() < block_bytes_) buffer_.resize(block_bytes_);
        while (!end_ && used_ < buffer_.size()) {
            ssize_t got = ::read(fd_, buffer_.data() + used_, buffer_.size() - used_);
            if (got < 0) {
                if (errno == EINTR) continue;
                throw error_in(path_, system_message(errno));
            }
            if (got == 0) end_ = true;
            used_ += static_cast<std::size_t>(got);
        }
        if (end_) {
            handed_ = used_;
            break;
        }
        std::string_view filled(buffer_.data(), used_);
        std::size_t last_newline = filled.rfind('\n');
        if (last_newline != std::string_view::npos) {
            handed_ = last_newline + 1;
            break;
        }
        // One line longer than the buffer: make room and read on.
        buffer_.resize(buffer_.size() * 2);
    }
    block = std::string_view(buffer_.data(), handed_);
    return handed_ > 0;
}

bool line_cursor::next(std::string_view& line) {
    if (rest_.empty()) return false;
    std::size_t end = rest_.find('\n');
    if (end == std::string_view::npos) {
        line = rest_;
        rest_ = {};
    } else {
        line = rest_.substr(0, end);
        rest_.remove_prefix(end + 1);
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_number_;
    return true;
}

std::size_t line_cursor::lines_left() const {
    if (rest_.empty()) return 0;
    auto newlines = static_cast<std::size_t>(std::count(rest_.begin(), rest_.end(), '\n'));
    return newlines + (rest_.back() == '\n' ? 0 : 1);
}

std::string_view strip_byte_order_mark(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    return text;
}

}  // namespace lowrank
