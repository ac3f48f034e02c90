#include "nn/adapter.hpp"

#include "nn/partition.hpp"

#include <algorithm>
#include <cstring>

namespace lowrank {
namespace {

linear declare_linear(parameter_set& parameters, const std::string& name, std::size_t in, std::size_t out) {
    linear layer;
    layer.in = in;
    layer.out = out;
    layer.layout = weight_layout::out_in;
    layer.weight = &parameters.add(name + ".weight", {out, in});
    layer.bias = &parameters.add(name + ".bias", {out}, false);
    return layer;
}

}  // namespace

bottleneck_adapter declare_adapter(parameter_set& parameters, const std::string& module, std::size_t width,
                                   std::size_t size, bool with_norm, float epsilon) {
    bottleneck_adapter adapter;
    const std::string prefix = module + ".adapter.";
    if (with_norm)
        adapter.norm = layer_norm{&parameters.add(prefix + "layer_norm.weight", {width}, false),
                                  &parameters.add(prefix + "layer_norm.bias", {width}, false), epsilon};
    adapter.down = declare_linear(parameters, prefix + "down", width, size);
    adapter.up = declare_linear(parameters, prefix + "up", size, width);
    return adapter;
}

void initialize_adapter(bottleneck_adapter& adapter, std::uint64_t seed, std::uint64_t stream) {
    if (adapter.norm) {
        fill_constant(*adapter.norm->weight, 1);
        fill_constant(*adapter.norm->bias, 0);
    }
    fill_normal(*adapter.down.weight, 0.01f, seed, stream);
    fill_constant(*adapter.down.bias, 0);
    fill_constant(*adapter.up.weight, 0);
    fill_constant(*adapter.up.bias, 0);
}

void adapter_forward(const bottleneck_adapter& adapter, const float* h, std::size_t rows, float* y,
                     const adapter_activations& kept) {
    const std::size_t C = adapter.down.in, r = adapter.size();
    const float* input = h;
    if (adapter.norm) {
        layer_norm_forward(*adapter.norm, h, rows, kept.normed, kept.mean, kept.rstd);
        input = kept.normed;
    }
    // hidden = relu(input·downᵀ + b)
    linear_forward(adapter.down, input, rows, kept.hidden, r, false, {});
    for_rows(rows * r, 1 << 15, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) kept.hidden[i] = std::max(kept.hidden[i], 0.0f);
    });
    // y += h + hidden·upᵀ + b
    for_rows(rows, 64, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin * C; i < end * C; ++i) y[i] += h[i];
    });
    linear_forward(adapter.up, kept.hidden, rows, y, C, true, {});
}

std::size_t adapter_scratch_size(const bottleneck_adapter& adapter, std::size_t rows) {
    return rows * adapter.size() + (adapter.norm ? rows * adapter.down.in : 0);
}

// dh = dy + d(up(relu(down(LN h))))/dh · dy
void adapter_backward(const bottleneck_adapter& adapter, const float* h, std::size_t rows, const float* dy,
                      float* dh, const adapter_activations& kept, float* scratch) {
    const std::size_t C = adapter.down.in, r = adapter.size();
    std::memcpy(dh, dy, rows * C * sizeof(float));
    // d_hidden = dy·up, masked where relu was 0
    float* d_hidden = scratch;
    std::fill(d_hidden, d_hidden + rows * r, 0.0f);
    linear_backward(adapter.up, kept.hidden, rows, dy, C, d_hidden, {});
    for_rows(rows * r, 1 << 15, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            if (kept.hidden[i] <= 0) d_hidden[i] = 0;
    });
    if (!adapter.norm) {
        linear_backward(adapter.down, h, rows, d_hidden, r, dh, {});
        return;
    }
    float* d_normed = scratch + rows * r;
    std::fill(d_normed, d_normed + rows * C, 0.0f);
    linear_backward(adapter.down, kept.normed, rows, d_hidden, r, d_normed, {});
    layer_norm_backward(*adapter.norm, h, kept.mean, kept.rstd, d_normed, rows, dh);
}

}  // namespace lowrank
