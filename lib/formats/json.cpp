#include "formats/json.hpp"

#include "core/error.hpp"

#include <fmt/format.h>
#include <set>
#include <vector>

namespace lowrank {

ordered_json parse_json_strict(std::string_view text, std::string_view path, std::string_view what) {
    std::vector<std::set<std::string>> keys_seen;
    std::string duplicate;
    auto callback = [&](int, ordered_json::parse_event_t event, ordered_json& parsed) {
        if (event == ordered_json::parse_event_t::object_start) keys_seen.emplace_back();
        if (event == ordered_json::parse_event_t::object_end && !keys_seen.empty()) keys_seen.pop_back();
        if (event == ordered_json::parse_event_t::key && !keys_seen.empty() && duplicate.empty()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!keys_seen.back().insert(key).second) duplicate = key;
        }
        return true;
    };
    ordered_json document;
    try {
        document = ordered_json::parse(text.begin(), text.end(), callback);
    } catch (const ordered_json::exception& failure) {
        throw error_in(path, fmt::format("{} is not valid JSON: {}", what, failure.what()));
    }
    if (!duplicate.empty()) throw error_in(path, fmt::format("{} repeats the key '{}'", what, duplicate));
    return document;
}

std::string python_style_json(const nlohmann::json& value) {
    // nlohmann::json keeps object keys sorted and indents as Python does; ensure_ascii
    // escapes non-ASCII characters as \uXXXX, as Python's default does.
    return value.dump(2, ' ', true);
}

}  // namespace lowrank
