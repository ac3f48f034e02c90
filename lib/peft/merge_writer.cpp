// Writing a merged checkpoint: a layout per output file (header, then pieces that are
// either byte ranges of a base file or computed tensors), a thread that computes the
// changed tensors in output order while the caller's thread writes, and the check that
// reads the output back.
#include "peft/merge.hpp"

#include "core/error.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace lowrank {

// Checks one written output file (the verification of merge_verify.cpp): `expected` and
// `metadata` are what its header must say.
verification verify_merged_file(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                                const merge_plan& plan, std::size_t file, const std::string& written_path,
                                const std::vector<tensor_spec>& expected, const std::map<std::string, std::string>& metadata);

namespace {

namespace fs = std::filesystem;

// One output file: its header, then its pieces in order.
struct file_layout {
    std::string header;
    std::vector<tensor_spec> tensors;              // what the header lists, in order
    std::map<std::string, std::string> metadata;
    struct piece {
        bool computed = false;
        std::uint64_t offset = 0, size = 0;  // a copy: where in the base file
    };
    std::vector<piece> pieces;
};

std::string without_final_newline(std::string text) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

file_layout layout_file(const safetensors_checkpoint& base, const merge_plan& plan, std::size_t file) {
    const safetensors_file& source = base.files()[file];
    file_layout layout;
    layout.metadata = source.metadata();
    bool regenerate = false;
    if (plan.untied_embedding && (!base.is_folder() || layout.metadata.contains("config"))) {
        layout.metadata["config"] = without_final_newline(untied_config_text(plan.architecture));
        regenerate = true;
    }
    std::set<const tensor_info*> changed;
    for (const auto& change : plan.changes)
        if (change.file == file && !change.added) changed.insert(change.start);
    for (const auto& tensor : source.tensors()) {
        layout.tensors.push_back({tensor.name, tensor.type, tensor.shape});
        std::uint64_t offset = source.data_offset() + tensor.begin, size = tensor.end - tensor.begin;
        bool computed = changed.contains(&tensor);
        if (!computed && !layout.pieces.empty() && !layout.pieces.back().computed &&
            layout.pieces.back().offset + layout.pieces.back().size == offset)
            layout.pieces.back().size += size;  // one copy for a run of unchanged tensors
        else
            layout.pieces.push_back({computed, offset, size});
    }
    for (const auto& change : plan.changes) {
        if (change.file != file || !change.added) continue;
        layout.tensors.push_back({change.name, change.start->type, change.start->shape});
        layout.pieces.push_back({true, 0, layout.tensors.back().byte_size()});
        regenerate = true;
    }
    if (regenerate) {
        layout.header = safetensors_header_bytes(layout.tensors, layout.metadata);
    } else {
        auto bytes = source.file_bytes().first(source.data_offset());
        layout.header.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    return layout;
}

// A tensor's bytes, in a buffer that is reused rather than allocated (and cleared) anew.
struct tensor_bytes {
    std::unique_ptr<std::byte[]> data;
    std::size_t size = 0, capacity = 0;

    void resize(std::size_t bytes) {
        if (bytes > capacity) {
            data.reset(new std::byte[bytes]);  // not cleared: every byte is written
            capacity = bytes;
        }
        size = bytes;
    }
    std::span<std::byte> span() { return {data.get(), size}; }
};

// Computes the changed tensors in output order on its own thread, at most `capacity` ahead
// of the writer, in buffers the writer gives back.
class tensor_producer {
public:
    tensor_producer(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                    const merge_plan& plan)
        : merger_(base, adapters), plan_(plan), thread_([this] { run(); }) {}
    ~tensor_producer() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }
    tensor_producer(const tensor_producer&) = delete;
    tensor_producer& operator=(const tensor_producer&) = delete;

    // The next tensor's bytes, in its dtype; rethrows what failed on the thread.
    tensor_bytes next() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return !ready_.empty() || failure_; });
        if (ready_.empty()) std::rethrow_exception(failure_);
        tensor_bytes bytes = std::move(ready_.front());
        ready_.pop_front();
        changed_.notify_all();
        return bytes;
    }
    // A buffer next() gave, once written, for the thread to fill again.
    void recycle(tensor_bytes bytes) {
        std::lock_guard lock(mutex_);
        spare_.push_back(std::move(bytes));
    }

private:
    static constexpr std::size_t capacity = 2;

    void run() {
        try {
            for (const auto& change : plan_.changes) {
                merger_.compute(change);
                tensor_bytes bytes = spare();
                bytes.resize(change.start->end - change.start->begin);
                merger_.encode(change.start->type, bytes.span());
                std::unique_lock lock(mutex_);
                changed_.wait(lock, [&] { return ready_.size() < capacity || stopping_; });
                if (stopping_) return;
                ready_.push_back(std::move(bytes));
                changed_.notify_all();
            }
        } catch (...) {
            std::lock_guard lock(mutex_);
            failure_ = std::current_exception();
            changed_.notify_all();
        }
    }

    tensor_bytes spare() {
        std::lock_guard lock(mutex_);
        if (spare_.empty()) return {};
        tensor_bytes bytes = std::move(spare_.back());
        spare_.pop_back();
        return bytes;
    }

    tensor_merger merger_;
    const merge_plan& plan_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<tensor_bytes> ready_;
    std::vector<tensor_bytes> spare_;
    std::exception_ptr failure_;
    bool stopping_ = false;
    std::thread thread_;  // last: starts once everything it uses exists
};

struct descriptor {
    int fd = -1;
    explicit descriptor(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd < 0) throw error_in(path, system_message(errno));
    }
    ~descriptor() { ::close(fd); }
    descriptor(const descriptor&) = delete;
    descriptor& operator=(const descriptor&) = delete;
};

void write_file(output_stream& out, const file_layout& layout, const safetensors_file& source,
                tensor_producer& producer, progress& shown) {
    descriptor input(source.path());
    out.write(layout.header);
    for (const auto& piece : layout.pieces) {
        if (piece.computed) {
            tensor_bytes bytes = producer.next();
            out.write(bytes.data.get(), bytes.size);
            producer.recycle(std::move(bytes));
        } else {
            out.copy_from(input.fd, piece.offset, piece.size, source.path());
        }
        out.start_writeback();  // the disk writes while the rest is computed and copied
        shown.advance(piece.size);
    }
}

void copy_whole_file(output_stream& out, const std::string& path) {
    descriptor input(path);
    struct stat info {};
    if (::fstat(input.fd, &info) != 0) throw error_in(path, system_message(errno));
    out.copy_from(input.fd, 0, static_cast<std::uint64_t>(info.st_size), path);
}

// The files of a base folder that go with the weights: config.json, tokenizer files,
// generation_config.json... Weights in other formats (a stale pytorch_model.bin would
// not hold the merge) and hidden files stay behind.
std::vector<std::string> side_files(const safetensors_checkpoint& base) {
    static const char* const weight_suffixes[] = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5",
                                                  ".msgpack", ".gguf", ".onnx", ".index.json"};
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(base.path())) {
        std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || name.starts_with(".")) continue;
        bool weights = false;
        for (const char* suffix : weight_suffixes) weights = weights || name.ends_with(suffix);
        if (!weights) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

void merge_verifications(std::optional<verification>& total, const verification& file) {
    if (!total) total.emplace();
    total->changed += file.changed;
    total->unchanged += file.unchanged;
    if (file.max_difference >= total->max_difference && !file.worst_tensor.empty()) {
        total->max_difference = file.max_difference;
        total->worst_tensor = file.worst_tensor;
    }
}

std::uint64_t output_bytes(const std::vector<file_layout>& layouts) {
    std::uint64_t total = 0;
    for (const auto& layout : layouts)
        for (const auto& piece : layout.pieces) total += piece.size;
    return total;
}

}  // namespace

std::optional<verification> write_merged(const safetensors_checkpoint& base,
                                         const std::vector<weighted_adapter>& adapters, const merge_plan& plan,
                                         const merge_output_options& options) {
    std::vector<file_layout> layouts;
    for (std::size_t file = 0; file < base.files().size(); ++file) layouts.push_back(layout_file(base, plan, file));
    progress shown("merging", "bytes", output_bytes(layouts), options.quiet);
    tensor_producer producer(base, adapters, plan);
    std::optional<verification> checked;
    auto verify = [&](std::size_t file, const std::string& path) {
        if (options.verify)
            merge_verifications(checked, verify_merged_file(base, adapters, plan, file, path, layouts[file].tensors,
                                                            layouts[file].metadata));
    };

    if (!base.is_folder()) {
        output_stream out(options.path, output_kind::binary);
        write_file(out, layouts[0], base.files()[0], producer, shown);
        out.flush();
        verify(0, out.written_path());
        out.commit();
        return checked;
    }

    // Every shard is written before any is committed (fsync), so that the disk catches up
    // with the writes while the next shards are made, rather than stopping them.
    output_folder folder(options.path, true);
    std::vector<std::unique_ptr<output_stream>> shards;
    for (std::size_t file = 0; file < base.files().size(); ++file) {
        shards.push_back(std::make_unique<output_stream>(folder.file(base.file_names()[file]), output_kind::binary));
        write_file(*shards.back(), layouts[file], base.files()[file], producer, shown);
        shards.back()->flush();
    }
    for (std::size_t file = 0; file < base.files().size(); ++file) {
        verify(file, shards[file]->written_path());
        shards[file]->commit();
    }
    if (base.index()) {
        shard_index index = *base.index();
        output_stream out(folder.file(std::string(shard_index_name)), output_kind::text);
        bool added = false;
        for (const auto& change : plan.changes)
            if (change.added) {
                index.weight_map[change.name] = base.file_names()[change.file];
                if (auto total = index.total_size()) index.set_total_size(*total + change.start->end - change.start->begin);
                added = true;
            }
        if (added)
            out.write(shard_index_text(index));
        else
            copy_whole_file(out, (fs::path(base.path()) / shard_index_name).string());
        out.commit();
    }
    for (const auto& name : side_files(base)) {
        output_stream out(folder.file(name), output_kind::binary);
        if (name == "config.json" && plan.untied_embedding && plan.architecture.config_path.ends_with("config.json"))
            out.write(untied_config_text(plan.architecture));
        else
            copy_whole_file(out, (fs::path(base.path()) / name).string());
        out.commit();
    }
    folder.commit();
    return checked;
}

// ------------------------------------------------------------------------ the target

namespace {

bool same_file(const std::string& a, const std::string& b) {
    struct stat first {}, second {};
    return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
}

}  // namespace

void check_merge_output(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                        const std::string& path) {
    if (base.is_folder() && (path.empty() || path == "-"))
        throw usage_error(fmt::format("{} is a folder checkpoint: give -o FOLDER for the merged one", base.path()));
    if (path.empty() || path == "-") return;
    if (same_file(path, base.path()))
        throw error_in(path, "is the base itself; write the merged model elsewhere (the base is its only copy)");
    for (const auto& entry : adapters)
        if (same_file(path, entry.source.path())) throw error_in(path, "is one of the adapters");
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return;
    if (!base.is_folder()) {
        if (S_ISDIR(info.st_mode)) throw error_in(path, "is a directory");
        return;
    }
    if (!S_ISDIR(info.st_mode)) throw error_in(path, "exists and is not a folder");
    fs::path folder(path);
    bool checkpoint = fs::exists(folder / shard_index_name) || fs::exists(folder / single_model_name);
    if (!checkpoint && !fs::is_empty(folder))
        throw error_in(path, fmt::format("exists and holds no checkpoint ({} or {}); not replacing it",
                                         single_model_name, shard_index_name));
}

}  // namespace lowrank
