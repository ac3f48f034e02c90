// Small text helpers: trimming, splitting, strict number parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// Without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text);

// Splits at every `separator`; "a,,b" gives three fields, "" gives one empty field.
std::vector<std::string_view> split(std::string_view text, char separator);
// The same into a reused vector (no allocation once it is big enough).
void split_into(std::string_view text, char separator, std::vector<std::string_view>& fields);

// The whole text (spaces around it allowed) as a number, or nothing. "nan" and "inf"
// parse (as NaN and infinity); callers that need finite values check.
std::optional<double> parse_double(std::string_view text);
std::optional<std::int64_t> parse_integer(std::string_view text);

// Joins with a separator: join({"a","b"}, ", ") == "a, b".
std::string join(const std::vector<std::string>& parts, std::string_view separator);

}  // namespace lowrank
