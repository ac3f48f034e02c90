#include "formats/sharded.hpp"

#include "core/error.hpp"
#include "formats/json.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>

namespace lowrank {
namespace {

namespace fs = std::filesystem;

bool is_plain_file_name(std::string_view name) {
    return !name.empty() && name.front() != '.' && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

bool is_directory(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool is_regular_file(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

std::vector<std::string> shard_index::shard_files() const {
    std::set<std::string> files;
    for (const auto& [tensor, file] : weight_map) files.insert(file);
    return {files.begin(), files.end()};
}

std::optional<std::uint64_t> shard_index::total_size() const {
    auto found = metadata.find("total_size");
    if (found == metadata.end()) return std::nullopt;
    auto value = nlohmann::json::parse(found->second, nullptr, false);
    if (!value.is_number_unsigned()) return std::nullopt;
    return value.get<std::uint64_t>();
}

void shard_index::set_total_size(std::uint64_t bytes) { metadata["total_size"] = std::to_string(bytes); }

shard_index parse_shard_index(std::string_view text, std::string_view path) {
    ordered_json document = parse_json_strict(text, path, "shard index");
    if (!document.is_object()) throw error_in(path, "shard index is not a JSON object");
    shard_index index;
    if (document.contains("metadata")) {
        const auto& metadata = document["metadata"];
        if (!metadata.is_object() && !metadata.is_null()) throw error_in(path, "\"metadata\" is not a JSON object");
        if (metadata.is_object())
            for (const auto& [key, value] : metadata.items()) index.metadata[key] = value.dump();
    }
    if (!document.contains("weight_map") || !document["weight_map"].is_object())
        throw error_in(path, "no \"weight_map\" object");
    for (const auto& [tensor, file] : document["weight_map"].items()) {
        if (!file.is_string()) throw error_in(path, fmt::format("weight_map: tensor '{}': shard is not a string", tensor));
        const auto& name = file.get_ref<const std::string&>();
        if (!is_plain_file_name(name))
            throw error_in(path, fmt::format("weight_map: tensor '{}': shard '{}' is not a plain file name", tensor, name));
        index.weight_map[tensor] = name;
    }
    if (index.weight_map.empty()) throw error_in(path, "weight_map lists no tensor");
    return index;
}

std::string shard_index_text(const shard_index& index) {
    nlohmann::json document;
    document["metadata"] = nlohmann::json::object();
    for (const auto& [key, value] : index.metadata) document["metadata"][key] = nlohmann::json::parse(value);
    document["weight_map"] = index.weight_map;
    return python_style_json(document) + "\n";
}

safetensors_checkpoint::safetensors_checkpoint(const std::string& path, page_loading loading) : path_(path) {
    if (is_directory(path)) {
        folder_ = true;
        folder_path_ = path;
        std::string index_path = (fs::path(path) / shard_index_name).string();
        std::string single_path = (fs::path(path) / single_model_name).string();
        if (is_regular_file(index_path)) {
            open_sharded(index_path, loading);
        } else if (is_regular_file(single_path)) {
            files_.emplace_back(single_path, loading);
            file_names_.emplace_back(single_model_name);
        } else {
            throw error_in(path, fmt::format("a folder without {} or {}", shard_index_name, single_model_name));
        }
    } else {
        folder_path_ = fs::path(path).parent_path().string();
        files_.emplace_back(path, loading);
        file_names_.push_back(fs::path(path).filename().string());
    }
    index_tensors();
    read_config();
}

void safetensors_checkpoint::open_sharded(const std::string& index_path, page_loading loading) {
    input_text text(index_path);
    index_ = parse_shard_index(text.text(), index_path);
    for (const auto& name : index_->shard_files()) {
        std::string shard_path = (fs::path(folder_path_) / name).string();
        if (!is_regular_file(shard_path))
            throw error_in(index_path, fmt::format("shard '{}' is missing", name));
        files_.emplace_back(shard_path, loading);
        file_names_.push_back(name);
    }
}

void safetensors_checkpoint::index_tensors() {
    for (std::size_t file = 0; file < files_.size(); ++file) {
        for (const auto& tensor : files_[file].tensors()) {
            auto [where, inserted] = locations_.try_emplace(tensor.name, location{file, &tensor});
            if (!inserted)
                throw error_in(files_[file].path(), fmt::format("tensor '{}' is also in {}", tensor.name,
                                                                file_names_[where->second.file]));
            if (index_ && index_->weight_map.find(tensor.name) == index_->weight_map.end())
                throw error_in(files_[file].path(),
                               fmt::format("tensor '{}' is not in {}", tensor.name, shard_index_name));
            if (index_ && index_->weight_map.at(tensor.name) != file_names_[file])
                throw error_in(files_[file].path(), fmt::format("tensor '{}' is listed under {} in {}", tensor.name,
                                                                index_->weight_map.at(tensor.name), shard_index_name));
        }
    }
    if (index_)
        for (const auto& [tensor, file] : index_->weight_map)
            if (!locations_.contains(tensor))
                throw error_in((fs::path(folder_path_) / file).string(),
                               fmt::format("no tensor '{}', which {} places there", tensor, shard_index_name));
}

void safetensors_checkpoint::read_config() {
    const auto& metadata = files_.front().metadata();
    if (auto found = metadata.find("config"); found != metadata.end()) {
        config_text_ = found->second;
        config_path_ = files_.front().path();
        return;
    }
    std::string beside = (fs::path(folder_path_) / "config.json").string();
    if (is_regular_file(beside)) {
        input_text text(beside);
        config_text_ = std::string(text.text());
        config_path_ = beside;
    }
}

const safetensors_checkpoint::location* safetensors_checkpoint::find(std::string_view name) const {
    auto found = locations_.find(name);
    return found == locations_.end() ? nullptr : &found->second;
}

}  // namespace lowrank
