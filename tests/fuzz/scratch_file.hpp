// For fuzz targets whose parser reads a file: the input written to a file in /dev/shm
// (memory), removed when the object goes.
#pragma once

#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

class scratch_file {
public:
    scratch_file(const char* name, std::string_view contents)
        : path_("/dev/shm/lowrank-fuzz-" + std::to_string(::getpid()) + "-" + name) {
        std::ofstream(path_, std::ios::binary) << contents;
    }
    ~scratch_file() { ::unlink(path_.c_str()); }
    scratch_file(const scratch_file&) = delete;
    scratch_file& operator=(const scratch_file&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// The input as text, split at its first NUL byte (for targets that read two files).
inline std::pair<std::string_view, std::string_view> split_at_nul(std::string_view input) {
    std::size_t split = input.find('\0');
    if (split == std::string_view::npos) return {input, {}};
    return {input.substr(0, split), input.substr(split + 1)};
}
