// Shared by the unit tests: scratch files and byte strings.
#pragma once

#include <cstddef>
#include <fcntl.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace lowrank::testing {

// A folder that exists for the test's lifetime.
class scratch_folder {
public:
    scratch_folder() {
        std::string pattern = (std::filesystem::temp_directory_path() / "lowrank-unit.XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
    }
    ~scratch_folder() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Sends stderr to /dev/null while it lives: for tests of code paths that print usage errors.
class silenced_stderr {
public:
    silenced_stderr() : saved_(::dup(2)) {
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 2);
        ::close(null);
    }
    ~silenced_stderr() {
        ::dup2(saved_, 2);
        ::close(saved_);
    }
    silenced_stderr(const silenced_stderr&) = delete;
    silenced_stderr& operator=(const silenced_stderr&) = delete;

private:
    int saved_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::span<const std::byte> as_bytes(const std::string& text) {
    return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

}  // namespace lowrank::testing
