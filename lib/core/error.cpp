#include "core/error.hpp"

#include <cstring>
#include <fmt/format.h>

namespace lowrank {

std::string display_name(std::string_view path) {
    if (path.empty() || path == "-") return "<stdin>";
    return std::string(path);
}

error error_in(std::string_view path, std::string_view what) {
    return error(fmt::format("{}: {}", display_name(path), what));
}

error error_at(std::string_view path, std::size_t line, std::string_view what) {
    return error(fmt::format("{}:{}: {}", display_name(path), line, what));
}

std::string system_message(int errno_value) {
    return std::strerror(errno_value);
}

}  // namespace lowrank
