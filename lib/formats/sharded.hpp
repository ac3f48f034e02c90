// Hugging Face checkpoints: one `.safetensors` file, or a folder holding `model.safetensors`,
// or a folder holding shards listed by `model.safetensors.index.json`:
//
//     {"metadata": {"total_size": BYTES, ...}, "weight_map": {"TENSOR": "SHARD FILE", ...}}
//
// where BYTES is the sum of the tensors' data sizes (headers not counted). Shards are named
// `model-00001-of-00003.safetensors`...; transformers writes the index with
// json.dumps(indent=2, sort_keys=True) and a final newline, and so do we.
#pragma once

#include "core/input.hpp"
#include "formats/safetensors.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

inline constexpr std::string_view shard_index_name = "model.safetensors.index.json";
inline constexpr std::string_view single_model_name = "model.safetensors";

struct shard_index {
    // The "metadata" object: key -> the JSON text of its value (total_size is a number).
    std::map<std::string, std::string> metadata;
    // Tensor name -> shard file name (a plain file name in the index's folder).
    std::map<std::string, std::string> weight_map;

    // The shard files, sorted by name (model-00001-of-... comes first).
    std::vector<std::string> shard_files() const;
    std::optional<std::uint64_t> total_size() const;
    void set_total_size(std::uint64_t bytes);
};

// Parses and checks an index: the two objects, string values, shard names that are plain
// file names (no folders, nothing hidden). `path` is for messages.
shard_index parse_shard_index(std::string_view text, std::string_view path);
// The index file's text, as transformers writes it.
std::string shard_index_text(const shard_index& index);

// A model's tensors, in one file or across shards, read through mmap.
class safetensors_checkpoint {
public:
    // PATH is a .safetensors file, a folder with model.safetensors.index.json and its shards,
    // or a folder with model.safetensors. Checks that the index and the shards agree: every
    // tensor of a shard is in the index under that shard, every indexed tensor exists, no
    // tensor is in two shards.
    explicit safetensors_checkpoint(const std::string& path, page_loading loading = page_loading::eager);

    const std::string& path() const { return path_; }
    // A folder (sharded or not) rather than a single file.
    bool is_folder() const { return folder_; }
    bool is_sharded() const { return index_.has_value(); }
    // For a sharded checkpoint, its index.
    const std::optional<shard_index>& index() const { return index_; }

    // The files, in order (shards sorted by name), and their file names.
    const std::vector<safetensors_file>& files() const { return files_; }
    const std::vector<std::string>& file_names() const { return file_names_; }

    struct location {
        std::size_t file = 0;
        const tensor_info* tensor = nullptr;
    };
    // Where a tensor is; nullptr when no file holds it.
    const location* find(std::string_view name) const;
    std::size_t tensor_count() const { return locations_.size(); }

    // The model's config.json text: the "config" entry of the first file's __metadata__ (as
    // the tools here store it), else config.json in the checkpoint's folder (or beside the
    // file). config_path() says where it came from ("" when there is none).
    const std::optional<std::string>& config_text() const { return config_text_; }
    const std::string& config_path() const { return config_path_; }

private:
    void open_sharded(const std::string& index_path, page_loading loading);
    void index_tensors();
    void read_config();

    std::string path_, folder_path_;
    bool folder_ = false;
    std::optional<shard_index> index_;
    std::vector<safetensors_file> files_;
    std::vector<std::string> file_names_;
    std::map<std::string, location, std::less<>> locations_;
    std::optional<std::string> config_text_;
    std::string config_path_;
};

}  // namespace lowrank
