#include "peft/routes.hpp"

#include "core/error.hpp"
#include "core/input.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace lowrank {

std::optional<named_adapter> parse_named_adapter(std::string_view operand) {
    std::size_t equals = operand.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    std::string_view name = operand.substr(0, equals), path = operand.substr(equals + 1);
    if (name.find('/') != std::string_view::npos) return std::nullopt;
    auto refuse = [&](std::string_view what) {
        return usage_error(fmt::format("--adapter {}: {}", operand, what));
    };
    if (name.empty()) throw refuse("no name before '='");
    if (name == "-") throw refuse("'-' stands for no adapter in a route file; give another name");
    if (name.find_first_of(" \t") != std::string_view::npos) throw refuse("a name without spaces");
    if (path.empty()) throw refuse("no folder after '='");
    return named_adapter{std::string(name), std::string(path)};
}

std::vector<std::size_t> read_routes(const std::string& path, std::span<const std::string> names) {
    input_text input(path);
    line_cursor lines(strip_byte_order_mark(input.text()));
    std::vector<std::size_t> routes;
    std::string_view line;
    while (lines.next(line)) {
        std::string_view name = trim(line);
        if (name.empty())
            throw error_at(path, lines.line_number(), "an empty line: each line names its row's adapter, or '-'");
        if (name == "-") {
            routes.push_back(no_route);
            continue;
        }
        auto found = std::find(names.begin(), names.end(), name);
        if (found == names.end())
            throw error_at(path, lines.line_number(),
                           fmt::format("no adapter named '{}' (the adapters: {}; '-' for none)", name,
                                       fmt::join(names, ", ")));
        routes.push_back(static_cast<std::size_t>(found - names.begin()));
    }
    return routes;
}

routed_batch route_batch(std::span<const std::size_t> routes, std::size_t route_count) {
    routed_batch batch;
    batch.order.reserve(routes.size());
    for (std::size_t route = 0; route < route_count; ++route) {
        item_range& range = batch.ranges.emplace_back();
        range.begin = batch.order.size();
        for (std::size_t row = 0; row < routes.size(); ++row)
            if (routes[row] == route) batch.order.push_back(row);
        range.end = batch.order.size();
    }
    for (std::size_t row = 0; row < routes.size(); ++row)
        if (routes[row] >= route_count) batch.order.push_back(row);
    return batch;
}

}  // namespace lowrank
