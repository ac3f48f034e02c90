#include "train/state.hpp"

#include "core/error.hpp"
#include "core/output.hpp"
#include "formats/safetensors.hpp"
#include "nn/parameters.hpp"

#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowrank {
namespace {

constexpr const char* state_key = "lowrank_checkpoint";

tensor_data floats(const std::string& name, const std::vector<float>& values) {
    return {{name, dtype::f32, {values.size()}},
            {reinterpret_cast<const std::byte*>(values.data()), values.size() * sizeof(float)}};
}

std::vector<float> read_floats(const safetensors_file& file, const std::string& name, std::size_t count) {
    const tensor_info& tensor = file.at(name);
    if (tensor.type != dtype::f32 || tensor.element_count() != count)
        throw error_in(file.path(), fmt::format("tensor '{}' is not {} F32 values", name, count));
    std::vector<float> values(count);
    std::memcpy(values.data(), file.bytes(tensor).data(), count * sizeof(float));
    // A run stops at the first NaN and keeps its last checkpoint: one that holds a NaN or an
    // infinity was damaged, and resuming from it would train (or write) NaNs.
    if (auto bad = first_non_finite(values.data(), count))
        throw error_in(file.path(), fmt::format("tensor '{}' holds a NaN or an infinity at element {}: not a checkpoint "
                                                "lora-train wrote", name, *bad));
    return values;
}

}  // namespace

std::string checkpoint_path(const std::string& folder) { return (std::filesystem::path(folder) / "checkpoint.safetensors").string(); }

void save_training_state(const std::string& folder, const training_state& state) {
    std::error_code failure;
    std::filesystem::create_directories(folder, failure);
    if (failure) throw error_in(folder, failure.message());
    nlohmann::json meta;
    meta["steps"] = state.steps;
    meta["elapsed"] = state.elapsed;
    meta["best_metric"] = state.best_metric ? nlohmann::json(*state.best_metric) : nlohmann::json(nullptr);
    meta["best_step"] = state.best_step;
    meta["settings"] = state.settings;
    meta["layout"] = state.layout;
    std::vector<tensor_data> tensors{floats("values", state.values), floats("first_moment", state.first_moment),
                                     floats("second_moment", state.second_moment)};
    if (!state.best_values.empty()) tensors.push_back(floats("best_values", state.best_values));
    tensors.push_back({{"log", dtype::u8, {state.log.size()}},
                       {reinterpret_cast<const std::byte*>(state.log.data()), state.log.size()}});
    output_stream out(checkpoint_path(folder), output_kind::binary);
    write_safetensors(out, tensors, {{"format", "pt"}, {state_key, meta.dump()}});
    out.commit();
}

std::optional<training_state> load_training_state(const std::string& folder) {
    const std::string path = checkpoint_path(folder);
    if (!std::filesystem::exists(path)) return std::nullopt;
    safetensors_file file(path);
    auto found = file.metadata().find(state_key);
    if (found == file.metadata().end())
        throw error_in(path, fmt::format("no \"{}\" in __metadata__: not a lora-train checkpoint", state_key));
    nlohmann::json meta = nlohmann::json::parse(found->second, nullptr, false);
    training_state state;
    try {
        state.steps = meta.at("steps").get<std::uint64_t>();
        state.elapsed = meta.at("elapsed").get<double>();
        if (!meta.at("best_metric").is_null()) state.best_metric = meta.at("best_metric").get<double>();
        state.best_step = meta.at("best_step").get<std::uint64_t>();
        state.settings = meta.at("settings").get<std::string>();
        state.layout = meta.at("layout").get<std::string>();
    } catch (const nlohmann::json::exception&) {
        throw error_in(path, fmt::format("the \"{}\" metadata is malformed", state_key));
    }
    const std::size_t count = file.at("values").element_count();
    state.values = read_floats(file, "values", count);
    state.first_moment = read_floats(file, "first_moment", count);
    state.second_moment = read_floats(file, "second_moment", count);
    if (file.find("best_values")) state.best_values = read_floats(file, "best_values", count);
    const tensor_info& log = file.at("log");
    if (log.type != dtype::u8) throw error_in(path, "tensor 'log' is not U8");
    auto bytes = file.bytes(log);
    state.log.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return state;
}

}  // namespace lowrank
