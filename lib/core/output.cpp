#include "core/output.hpp"

#include "core/error.hpp"

#include <algorithm>
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

// Temporary files and folders alive right now, so that a signal handler can remove them.
// Plain arrays, because unlink() and rmdir() on fixed buffers are all a signal handler may
// safely do. Files go first, then the folders that held them.
constexpr std::size_t max_temporaries = 256;
constexpr std::size_t max_path = 4096;
struct temporary_registry {
    std::array<std::array<char, max_path>, max_temporaries> paths{};
    std::array<std::atomic<bool>, max_temporaries> in_use{};
};
temporary_registry temporary_files, temporary_folders;
std::mutex registry_mutex;

extern "C" void remove_temporaries_and_die(int signal_number) {
    for (std::size_t i = 0; i < max_temporaries; ++i)
        if (temporary_files.in_use[i].load()) ::unlink(temporary_files.paths[i].data());
    for (std::size_t i = 0; i < max_temporaries; ++i)
        if (temporary_folders.in_use[i].load()) ::rmdir(temporary_folders.paths[i].data());
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

// When the registry is full the output is still written atomically, just not cleaned up
// on a signal.
void register_temporary(temporary_registry& registry, const std::string& path) {
    install_signal_handlers_once();
    std::lock_guard lock(registry_mutex);
    for (std::size_t i = 0; i < max_temporaries; ++i) {
        if (registry.in_use[i].load()) continue;
        std::snprintf(registry.paths[i].data(), max_path, "%s", path.c_str());
        registry.in_use[i].store(true);
        return;
    }
}

void unregister_temporary(temporary_registry& registry, const std::string& path) {
    std::lock_guard lock(registry_mutex);
    for (std::size_t i = 0; i < max_temporaries; ++i)
        if (registry.in_use[i].load() && path == registry.paths[i].data()) registry.in_use[i].store(false);
}

mode_t current_umask() {
    mode_t mask = ::umask(0);
    ::umask(mask);
    return mask;
}

// Makes a folder's entries durable. Failing to is not fatal after a rename (it happened),
// so errors are ignored.
void sync_folder(const std::filesystem::path& folder) {
    int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

bool copy_error_means_unsupported(int errno_value) {
    return errno_value == EXDEV || errno_value == EINVAL || errno_value == ENOSYS || errno_value == EOPNOTSUPP ||
           errno_value == EBADF;
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
    register_temporary(temporary_files, temporary_path_);
    ::fchmod(fd, 0666 & ~current_umask());  // mkstemp makes 0600; give the file the usual mode
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        ::unlink(temporary_path_.c_str());
        unregister_temporary(temporary_files, temporary_path_);
        throw error_in(path_, system_message(errno));
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

output_stream::~output_stream() {
    if (file_ && file_ != stdout) std::fclose(file_);
    if (!temporary_path_.empty() && !committed_) {
        ::unlink(temporary_path_.c_str());
        unregister_temporary(temporary_files, temporary_path_);
    }
}

void output_stream::write(const void* data, std::size_t size) {
    if (size == 0) return;
    if (std::fwrite(data, 1, size, file_) != size)
        throw error_in(path_ == "-" ? "<stdout>" : path_, "write failed: " + system_message(errno));
}

void output_stream::flush() {
    if (std::fflush(file_) != 0)
        throw error_in(path_ == "-" ? "<stdout>" : path_, "write failed: " + system_message(errno));
}

void output_stream::start_writeback() {
    if (file_ == stdout) return;
    flush();
    ::sync_file_range(::fileno(file_), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors show at commit
}

void output_stream::copy_from(int source_fd, std::uint64_t offset, std::uint64_t size, std::string_view source_path) {
    if (size == 0) return;
    flush();  // what the stream buffered goes before the copied bytes
    int target_fd = ::fileno(file_);
    auto position = static_cast<loff_t>(offset);
    std::uint64_t left = size;
    while (left > 0) {
        ssize_t copied = ::copy_file_range(source_fd, &position, target_fd, nullptr, left, 0);
        if (copied < 0 && errno == EINTR) continue;
        if (copied < 0 && copy_error_means_unsupported(errno) && left == size) break;  // fall back below
        if (copied < 0) throw error_in(path_ == "-" ? "<stdout>" : path_, "write failed: " + system_message(errno));
        if (copied == 0) throw error_in(source_path, "file ended early (changed while being read?)");
        left -= static_cast<std::uint64_t>(copied);
    }
    std::vector<char> buffer(std::min<std::uint64_t>(left, 1 << 20));
    while (left > 0) {
        ssize_t got = ::pread(source_fd, buffer.data(), std::min<std::uint64_t>(left, buffer.size()),
                              static_cast<off_t>(position));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw error_in(source_path, system_message(errno));
        if (got == 0) throw error_in(source_path, "file ended early (changed while being read?)");
        write(buffer.data(), static_cast<std::size_t>(got));
        position += got;
        left -= static_cast<std::uint64_t>(got);
    }
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
    unregister_temporary(temporary_files, temporary_path_);
    sync_folder(std::filesystem::path(path_).parent_path());
}

void check_stdout() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
        throw error("write error on standard output: " + system_message(errno));
}

}  // namespace lowrank

namespace lowrank {

output_folder::output_folder(const std::string& path, bool replace_existing)
    : path_(path), replace_existing_(replace_existing) {
    std::filesystem::path target(path_);
    while (!target.empty() && !target.has_filename()) target = target.parent_path();  // "out/" names "out"
    if (target.empty()) throw error_in(path_, "not a folder name");
    path_ = target.string();
    struct stat info {};
    if (::lstat(path_.c_str(), &info) == 0) {
        if (!S_ISDIR(info.st_mode)) throw error_in(path_, "exists and is not a folder");
        if (!replace_existing_ && !std::filesystem::is_empty(target)) throw error_in(path_, "exists and is not empty");
    }
    std::string pattern = (target.parent_path() / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw error_in(path_, "cannot create: " + system_message(errno));
    temporary_path_ = pattern;
    register_temporary(temporary_folders, temporary_path_);
    ::chmod(temporary_path_.c_str(), 0777 & ~current_umask());  // mkdtemp makes 0700
}

output_folder::~output_folder() {
    if (committed_) return;
    for (const auto& file : files_) unregister_temporary(temporary_files, file);
    std::error_code ignored;
    std::filesystem::remove_all(temporary_path_, ignored);
    unregister_temporary(temporary_folders, temporary_path_);
}

std::string output_folder::file(const std::string& name) {
    std::string path = (std::filesystem::path(temporary_path_) / name).string();
    files_.push_back(path);
    register_temporary(temporary_files, path);  // so that a signal removes it with the folder
    return path;
}

void output_folder::commit() {
    if (committed_) return;
    int fd = ::open(temporary_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        int saved_errno = errno;
        if (fd >= 0) ::close(fd);
        throw error_in(path_, "write failed: " + system_message(saved_errno));
    }
    ::close(fd);
    move_into_place();
    committed_ = true;
    for (const auto& file : files_) unregister_temporary(temporary_files, file);
    unregister_temporary(temporary_folders, temporary_path_);
    sync_folder(std::filesystem::path(path_).parent_path());
}

void output_folder::move_into_place() {
    // rename() puts a folder in place of a missing or empty one in one step.
    if (::rename(temporary_path_.c_str(), path_.c_str()) == 0) return;
    if (errno != ENOTEMPTY && errno != EEXIST) throw error_in(path_, "cannot replace: " + system_message(errno));
    if (!replace_existing_) throw error_in(path_, "exists and is not empty");
    // A full folder: swap the two in one step; the old one then sits at the temporary name.
    if (::renameat2(AT_FDCWD, temporary_path_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) == 0) {
        std::error_code ignored;
        std::filesystem::remove_all(temporary_path_, ignored);
        return;
    }
    if (errno != EINVAL && errno != ENOSYS) throw error_in(path_, "cannot replace: " + system_message(errno));
    // No atomic exchange on this file system: move the old folder aside first (the target
    // is briefly absent), then put the new one in place.
    std::string aside = temporary_path_ + ".old";
    if (::rename(path_.c_str(), aside.c_str()) != 0) throw error_in(path_, "cannot replace: " + system_message(errno));
    if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) {
        int saved_errno = errno;
        ::rename(aside.c_str(), path_.c_str());
        throw error_in(path_, "cannot replace: " + system_message(saved_errno));
    }
    std::error_code ignored;
    std::filesystem::remove_all(aside, ignored);
}

}  // namespace lowrank
