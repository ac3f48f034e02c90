// Several adapters serving one batch (lora-predict --adapter NAME=DIR --route FILE).
//
// Each input row names the adapter it goes through, or none. A batch is put in route order
// (route_batch) so that each adapter's rows follow one another: the base model's products
// run once over the whole batch, and each adapter's LoRA branches, routed to its rows
// (attach_adapter's route, lora_branch::route), are matrix products over its slice of
// rows. A classification head the adapter trained in full is swapped in for its rows
// (replacement_scope).
#pragma once

#include "nn/layers.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct named_adapter {
    std::string name, path;
};

// "NAME=DIR" names an adapter for the rows the route file gives NAME. A plain DIR, or one
// whose part before the first "=" holds a "/" ("./a=b"), is nullopt: an adapter for every
// row. Names are not empty, not "-" (no adapter), and hold no space or tab: usage_error.
std::optional<named_adapter> parse_named_adapter(std::string_view operand);

// A row that goes through no routed adapter.
inline constexpr std::size_t no_route = SIZE_MAX;

// Reads a route file ("-": stdin): one line per input row, the name of its adapter, or "-"
// for none; spaces around a name are ignored. Returns each row's index in `names`, or
// no_route. An empty line or an unknown name is an error naming the file and the line.
std::vector<std::size_t> read_routes(const std::string& path, std::span<const std::string> names);

// A batch in route order.
struct routed_batch {
    std::vector<std::size_t> order;  // order[i]: the row of the batch at position i
    std::vector<item_range> ranges;  // by route: the positions of its rows (for set_routes)
};

// routes: each row's route (< route_count, or no_route). Rows keep their order within a
// route; rows with no route come last.
routed_batch route_batch(std::span<const std::size_t> routes, std::size_t route_count);

}  // namespace lowrank
