#include "core/output.hpp"

#include "core/error.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace lowrank {
namespace {

// Temporary files alive right now, so that a signal handler can remove them. Plain arrays,
// because unlink() on a fixed buffer is all a signal handler may safely do.
constexpr std::size_t max_temporaries = 64;
constexpr std::size_t max_path = 4096;
std::array<std::array<char, max_path>, max_temporaries> temporaries{};
std::array<std::atomic<bool>, max_temporaries> temporary_in_use{};
std::mutex registry_mutex;

extern "C" void remove_temporaries_and_die(int signal_number) {
    for (std::size_t i = 0; i < max_temporaries; ++i)
        if (temporary_in_use[i].load()) ::unlink(temporaries[i].data());
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
}

void install_signal_handlers_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
            struct sigaction action {};
            action.sa_handler = remove_temporaries_and_die;
            sigemptyset(&action.sa_mask);
            sigaction(signal_number, &action, nullptr);
        }
    });
}

std::size_t register_temporary(const std::string& path) {
    install_signal_handlers_once();
    std::lock_guard lock(registry_mutex);
    for (std::size_t i = 0; i < max_temporaries; ++i) {
        if (temporary_in_use[i].load()) continue;
        std::snprintf(temporaries[i].data(), max_path, "%s", path.c_str());
        temporary_in_use[i].store(true);
        return i;
    }
    return max_temporaries;  // too many at once: still written atomically, just not cleaned on signal
}

void unregister_temporary(const std::string& path) {
    std::lock_guard lock(registry_mutex);
    for (std::size_t i = 0; i < max_temporaries; ++i)
        if (temporary_in_use[i].load() && path == temporaries[i].data()) temporary_in_use[i].store(false);
}

mode_t current_umask() {
    mode_t mask = ::umask(0);
    ::umask(mask);
    return mask;
}

void sync_folder(const std::filesystem::path& folder) {
    int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // the rename happened; not being able to sync the folder is not fatal
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

void refuse_binary_on_terminal(std::string_view what) {
    if (::isatty(STDOUT_FILENO))
        throw usage_error(fmt::format("refusing to write {} to a terminal; use -o FILE or a pipe", what));
}

output_stream::output_stream(const std::string& path, output_kind kind) : path_(path.empty() ? "-" : path) {
    if (path_ == "-") {
        if (kind == output_kind::binary) refuse_binary_on_terminal("binary output");
        file_ = stdout;
        return;
    }
    std::filesystem::path target(path_);
    struct stat info {};
    bool exists = ::stat(path_.c_str(), &info) == 0;
    if (exists && S_ISDIR(info.st_mode)) throw error_in(path_, "is a directory");
    if (exists && !S_ISREG(info.st_mode)) {
        // A device or a named pipe (/dev/null, a FIFO): written in place. Renaming a temporary
        // file over it would replace the device node with a regular file.
        file_ = std::fopen(path_.c_str(), "wb");
        if (!file_) throw error_in(path_, "cannot open: " + system_message(errno));
        if (kind == output_kind::binary && ::isatty(::fileno(file_))) {
            std::fclose(file_);
            file_ = nullptr;
            throw usage_error(fmt::format("refusing to write binary output to the terminal {}", path_));
        }
        return;
    }

    std::filesystem::path folder = target.parent_path();
    std::string pattern = (folder / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw error_in(path_, "cannot create: " + system_message(errno));
    temporary_path_ = pattern;
    register_temporary(temporary_path_);
    ::fchmod(fd, 0666 & ~current_umask());  // mkstemp makes 0600; give the file the usual mode
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        ::unlink(temporary_path_.c_str());
        unregister_temporary(temporary_path_);
        throw error_in(path_, system_message(errno));
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

output_stream::~output_stream() {
    if (file_ && file_ != stdout) std::fclose(file_);
    if (!temporary_path_.empty() && !committed_) {
        ::unlink(temporary_path_.c_str());
        unregister_temporary(temporary_path_);
    }
}

void output_stream::write(const void* data, std::size_t size) {
    if (size == 0) return;
    if (std::fwrite(data, 1, size, file_) != size)
        throw error_in(path_ == "-" ? "<stdout>" : path_, "write failed: " + system_message(errno));
}

void output_stream::commit() {
    if (committed_) return;
    if (file_ == stdout) {
        check_stdout();
        committed_ = true;
        return;
    }
    if (temporary_path_.empty()) {  // a device or a named pipe: nothing to sync or rename
        bool ok = std::fflush(file_) == 0 && !std::ferror(file_);
        int saved_errno = errno;
        if (std::fclose(file_) != 0 && ok) ok = false, saved_errno = errno;
        file_ = nullptr;
        if (!ok) throw error_in(path_, "write failed: " + system_message(saved_errno));
        committed_ = true;
        return;
    }
    bool ok = std::fflush(file_) == 0 && !std::ferror(file_) && ::fsync(::fileno(file_)) == 0;
    int saved_errno = errno;
    if (std::fclose(file_) != 0 && ok) {
        ok = false;
        saved_errno = errno;
    }
    file_ = nullptr;
    if (!ok) throw error_in(path_, "write failed: " + system_message(saved_errno));
    if (::rename(temporary_path_.c_str(), path_.c_str()) != 0)
        throw error_in(path_, "cannot replace: " + system_message(errno));
    committed_ = true;
    unregister_temporary(temporary_path_);
    sync_folder(std::filesystem::path(path_).parent_path());
}

void check_stdout() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
        throw error("write error on standard output: " + system_message(errno));
}

}  // namespace lowrank
