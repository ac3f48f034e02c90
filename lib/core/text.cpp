#include "core/text.hpp"

#include <charconv>

namespace lowrank {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

void split_into(std::string_view text, char separator, std::vector<std::string_view>& fields) {
    fields.clear();
    for (;;) {
        std::size_t end = text.find(separator);
        if (end == std::string_view::npos) {
            fields.push_back(text);
            return;
        }
        fields.push_back(text.substr(0, end));
        text.remove_prefix(end + 1);
    }
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> fields;
    split_into(text, separator, fields);
    return fields;
}

namespace {

// Clinger's fast path for plain decimals ("-12.375"): with at most 15 significant digits
// the digits form an integer exact in a double, 10^k is exact for k <= 22, and one
// correctly rounded division gives the correctly rounded result, the same double
// from_chars gives, several times faster. Anything else (exponents, long mantissas) falls
// back to from_chars.
std::optional<double> parse_plain_decimal(std::string_view text) {
    static constexpr double powers_of_ten[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                               1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    std::size_t i = 0;
    bool negative = text[0] == '-';
    if (negative) ++i;
    std::uint64_t mantissa = 0;
    int digits = 0, fraction_digits = 0;
    bool in_fraction = false, any_digit = false;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            if (mantissa != 0 || c != '0') ++digits;
            mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
            fraction_digits += in_fraction;
            any_digit = true;
        } else if (c == '.' && !in_fraction) {
            in_fraction = true;
        } else {
            return std::nullopt;
        }
        if (digits > 15 || fraction_digits > 15) return std::nullopt;
    }
    if (!any_digit) return std::nullopt;
    double value = static_cast<double>(mantissa) / powers_of_ten[fraction_digits];
    return negative ? -value : value;
}

}  // namespace

std::optional<double> parse_double(std::string_view text) {
    if (text.empty() || text.front() == ' ' || text.front() == '\t' || text.back() == ' ' || text.back() == '\t')
        text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);  // from_chars refuses a plus sign
    if (text.empty()) return std::nullopt;
    if (auto value = parse_plain_decimal(text)) return value;
    double value = 0;
    auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || status != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    std::int64_t value = 0;
    auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || status != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string joined;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) joined += separator;
        joined += parts[i];
    }
    return joined;
}

}  // namespace lowrank
