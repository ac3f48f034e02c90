#include "image/resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace lowrank {
namespace {

// Pillow's fixed point: 8 bits of result, 2 bits of headroom for kernels with negative
// lobes, the rest fraction.
constexpr int precision_bits = 32 - 8 - 2;
constexpr std::int32_t rounding = std::int32_t{1} << (precision_bits - 1);

double bilinear_kernel(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Keys' cubic convolution kernel with a = -0.5, written as Pillow writes it (the exact
// floating-point operations matter: the weights are rounded to fixed point afterwards).
double bicubic_kernel(double x) {
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// The weights of one axis for output samples [begin, end): sample i reads `count[i]` inputs
// from `first[i]` with weights[i·taps ...], in 22-bit fixed point.
struct axis_weights {
    std::size_t taps = 0;
    std::vector<std::int32_t> first, count, weights;
};

// The geometry of one axis: scale = input / output; the kernel widened by the scale when
// shrinking.
struct axis_geometry {
    double scale, filter_scale, support;

    axis_geometry(std::size_t input_size, std::size_t output_size, resize_filter filter)
        : scale(static_cast<double>(input_size) / static_cast<double>(output_size)),
          filter_scale(std::max(scale, 1.0)),
          support((filter == resize_filter::bicubic ? 2.0 : 1.0) * filter_scale) {}

    double center(std::size_t out) const { return (static_cast<double>(out) + 0.5) * scale; }
    // The inputs [first, last) of output sample `out`: truncation toward zero, then
    // clamping, as Pillow rounds the bounds.
    int first(std::size_t out) const { return std::max(0, static_cast<int>(center(out) - support + 0.5)); }
    int last(std::size_t out, std::size_t input_size) const {
        return std::min(static_cast<int>(input_size), static_cast<int>(center(out) + support + 0.5));
    }
};

axis_weights compute_axis(std::size_t input_size, std::size_t output_size, resize_filter filter, std::size_t begin,
                          std::size_t end) {
    double (*kernel)(double) = filter == resize_filter::bicubic ? bicubic_kernel : bilinear_kernel;
    const axis_geometry geometry(input_size, output_size, filter);
    axis_weights axis;
    axis.taps = static_cast<std::size_t>(std::ceil(geometry.support)) * 2 + 1;
    axis.weights.assign((end - begin) * axis.taps, 0);
    std::vector<double> raw(axis.taps);
    const double inverse_scale = 1.0 / geometry.filter_scale;
    for (std::size_t out = begin; out < end; ++out) {
        double center = geometry.center(out);
        int first = geometry.first(out);
        int count = std::max(0, geometry.last(out, input_size) - first);
        double total = 0.0;
        for (int i = 0; i < count; ++i) {
            raw[i] = kernel((i + first - center + 0.5) * inverse_scale);
            total += raw[i];
        }
        std::int32_t* fixed = &axis.weights[(out - begin) * axis.taps];
        for (int i = 0; i < count; ++i) {
            double weight = total != 0.0 ? raw[i] / total : raw[i];
            double scaled = weight * (1 << precision_bits);
            fixed[i] = static_cast<std::int32_t>(weight < 0 ? scaled - 0.5 : scaled + 0.5);
        }
        axis.first.push_back(first);
        axis.count.push_back(count);
    }
    return axis;
}

std::uint8_t clip8(std::int32_t sum) {
    return static_cast<std::uint8_t>(std::clamp(sum >> precision_bits, 0, 255));
}

// The sums are vectorised with GCC's portable vector types: eight int32 lanes, each 8-bit
// sample multiplied by its 22-bit weight exactly as Pillow does one at a time (the order of
// integer additions does not change an exact sum).
typedef std::int32_t int32x8 __attribute__((vector_size(32)));
typedef std::uint8_t bytes8 __attribute__((vector_size(8)));
typedef std::uint8_t bytes16 __attribute__((vector_size(16)));
typedef std::uint8_t bytes32 __attribute__((vector_size(32)));
typedef std::uint64_t words2 __attribute__((vector_size(16)));
typedef std::uint32_t words4 __attribute__((vector_size(16)));
typedef std::int32_t int32x4 __attribute__((vector_size(16)));

// Eight bytes at p in the low half of a vector (one 64-bit load).
bytes16 load8(const std::uint8_t* p) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    return reinterpret_cast<bytes16>(words2{word, 0});
}

// Eight bytes at p as eight int32 lanes.
int32x8 widen8(const std::uint8_t* p) {
    bytes16 bytes = load8(p), zero = {};
    auto lanes = __builtin_shufflevector(bytes, zero, 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3, 16, 16, 16, 4, 16,
                                         16, 16, 5, 16, 16, 16, 6, 16, 16, 16, 7, 16, 16, 16);
    return reinterpret_cast<int32x8>(lanes);
}

// Two RGB pixels at p (six bytes) as lanes R0 G0 B0 B0 R1 G1 B1 B1: the fourth lane of each
// half is weighted 0.
int32x8 widen_rgb_pair(const std::uint8_t* p) {
    bytes16 bytes = load8(p), zero = {};
    auto lanes = __builtin_shufflevector(bytes, zero, 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 2, 16, 16, 16, 3, 16,
                                         16, 16, 4, 16, 16, 16, 5, 16, 16, 16, 5, 16, 16, 16);
    return reinterpret_cast<int32x8>(lanes);
}

// Four int32 sums (rounding not yet added) shifted to 8 bits, clipped, as four bytes.
std::uint32_t clipped_bytes(int32x4 sums) {
    sums = (sums + rounding) >> precision_bits;
    sums = sums < 0 ? 0 : sums;
    sums = sums > 255 ? 255 : sums;
    auto bytes = reinterpret_cast<bytes16>(sums);
    auto packed = __builtin_shufflevector(bytes, bytes, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return reinterpret_cast<words4>(packed)[0];
}

// Eight int32 lanes shifted to 8 bits, clipped, stored as eight bytes.
void store_clipped(int32x8 sums, std::uint8_t* out) {
    sums >>= precision_bits;
    sums = sums < 0 ? 0 : sums;
    sums = sums > 255 ? 255 : sums;
    auto bytes = reinterpret_cast<bytes32>(sums);
    bytes8 packed = __builtin_shufflevector(bytes, bytes, 0, 4, 8, 12, 16, 20, 24, 28);
    std::memcpy(out, &packed, 8);
}

// The horizontal weights laid out for the vector sums: per output sample, `vectors` groups
// of eight lanes. Gray: eight taps per group. RGB: two taps per group, each weight in three
// lanes (R, G, B) and 0 in the fourth.
struct lane_weights {
    std::size_t vectors = 0;
    std::vector<int32x8> lanes;
};

lane_weights spread_weights(const axis_weights& axis, std::size_t channels) {
    const std::size_t taps_per_vector = channels == 1 ? 8 : 2;
    lane_weights spread;
    spread.vectors = (axis.taps + taps_per_vector - 1) / taps_per_vector;
    spread.lanes.assign(axis.first.size() * spread.vectors, int32x8{});
    for (std::size_t out = 0; out < axis.first.size(); ++out)
        for (std::int32_t tap = 0; tap < axis.count[out]; ++tap) {
            std::int32_t weight = axis.weights[out * axis.taps + static_cast<std::size_t>(tap)];
            int32x8& lanes = spread.lanes[out * spread.vectors + static_cast<std::size_t>(tap) / taps_per_vector];
            if (channels == 1) {
                lanes[tap % 8] = weight;
            } else {
                int half = 4 * (tap % 2);
                lanes[half] = lanes[half + 1] = lanes[half + 2] = weight;
            }
        }
    return spread;
}

// One row of the horizontal pass. The vector loads read up to 16 bytes past the row's last
// tap, so `in` must have that much readable memory after its row (the caller pads rows near
// the end of the image).
template <std::size_t channels>
void horizontal_row(const std::uint8_t* in, const axis_weights& axis, const lane_weights& spread, std::uint8_t* out) {
    constexpr std::size_t taps_per_vector = channels == 1 ? 8 : 2;
    for (std::size_t x = 0; x < axis.first.size(); ++x) {
        const std::size_t used = (static_cast<std::size_t>(axis.count[x]) + taps_per_vector - 1) / taps_per_vector;
        const int32x8* weights = &spread.lanes[x * spread.vectors];
        const std::uint8_t* pixel = in + static_cast<std::size_t>(axis.first[x]) * channels;
        int32x8 sums = {};
        for (std::size_t j = 0; j < used; ++j, pixel += taps_per_vector * channels)
            sums += (channels == 1 ? widen8(pixel) : widen_rgb_pair(pixel)) * weights[j];
        // Both halves added in registers (reading lanes one by one would go through memory).
        int32x4 half = __builtin_shufflevector(sums, sums, 0, 1, 2, 3) +
                       __builtin_shufflevector(sums, sums, 4, 5, 6, 7);
        if constexpr (channels == 1) {
            half += __builtin_shufflevector(half, half, 2, 3, 0, 1);
            half += __builtin_shufflevector(half, half, 1, 0, 3, 2);
            out[x] = clip8(rounding + half[0]);
        } else {
            std::uint32_t rgb = clipped_bytes(half);
            std::memcpy(out + 3 * x, &rgb, 3);
        }
    }
}

// Rows [row_begin, row_begin + target.height) of `source`, resampled along x into
// `target`, whose columns are the output samples of `axis` (its input columns counted in
// `source`).
void horizontal_pass(const image& source, std::size_t row_begin, const axis_weights& axis, image& target) {
    constexpr std::size_t over_read = 16;
    const lane_weights spread = spread_weights(axis, source.channels);
    std::vector<std::uint8_t> padded_row;
    for (std::size_t y = 0; y < target.height; ++y) {
        const std::uint8_t* in = source.row(row_begin + y);
        if ((row_begin + y + 1) * source.row_size() + over_read > source.pixels.size()) {
            padded_row.assign(source.row_size() + over_read, 0);
            std::memcpy(padded_row.data(), in, source.row_size());
            in = padded_row.data();
        }
        if (source.channels == 1) horizontal_row<1>(in, axis, spread, target.row(y));
        else horizontal_row<3>(in, axis, spread, target.row(y));
    }
}

// `target` row y = the rows of `source` that axis sample y reads, weighted, over the
// samples [first_sample, first_sample + target.row_size()) of each row; the input row
// numbers are shifted by -row_offset.
void vertical_pass(const image& source, std::size_t first_sample, std::size_t row_offset, const axis_weights& axis,
                   image& target) {
    const std::size_t samples = target.row_size();
    std::vector<const std::uint8_t*> rows(axis.taps);
    for (std::size_t y = 0; y < target.height; ++y) {
        const std::int32_t* weights = &axis.weights[y * axis.taps];
        const std::size_t count = static_cast<std::size_t>(axis.count[y]);
        for (std::size_t i = 0; i < count; ++i)
            rows[i] = source.row(static_cast<std::size_t>(axis.first[y]) + i - row_offset) + first_sample;
        std::uint8_t* out = target.row(y);
        std::size_t s = 0;
        for (; s + 8 <= samples; s += 8) {
            int32x8 sums = {rounding, rounding, rounding, rounding, rounding, rounding, rounding, rounding};
            for (std::size_t i = 0; i < count; ++i) sums += widen8(rows[i] + s) * weights[i];
            store_clipped(sums, out + s);
        }
        for (; s < samples; ++s) {
            std::int32_t sum = rounding;
            for (std::size_t i = 0; i < count; ++i) sum += rows[i][s] * weights[i];
            out[s] = clip8(sum);
        }
    }
}

// Pillow's nearest neighbour: input index of output samples [begin, end).
std::vector<std::size_t> nearest_indices(std::size_t input_size, std::size_t output_size, std::size_t begin,
                                         std::size_t end) {
    double scale = static_cast<double>(input_size) / static_cast<double>(output_size);
    double position = scale * 0.5;
    std::vector<std::size_t> indices;
    for (std::size_t out = 0; out < end; ++out, position += scale)
        if (out >= begin) indices.push_back(std::min(static_cast<std::size_t>(position), input_size - 1));
    return indices;
}

// An image, or a part of a larger one, without owning it (image_part, or a whole image).
struct part_view {
    const image& pixels;
    std::size_t left, top;
    image_size full;
};

image nearest_resize_and_crop(const part_view& source, std::size_t width, std::size_t height, const pixel_box& box) {
    auto columns = nearest_indices(source.full.width, width, box.left, box.left + box.width);
    auto rows = nearest_indices(source.full.height, height, box.top, box.top + box.height);
    const image& pixels = source.pixels;
    image target(box.width, box.height, pixels.channels);
    const std::size_t channels = pixels.channels;
    for (std::size_t y = 0; y < box.height; ++y) {
        const std::uint8_t* in = pixels.row(rows[y] - source.top);
        std::uint8_t* out = target.row(y);
        for (std::size_t x = 0; x < box.width; ++x, out += channels)
            std::memcpy(out, in + (columns[x] - source.left) * channels, channels);
    }
    return target;
}

image crop(const part_view& source, const pixel_box& box) {
    const image& pixels = source.pixels;
    image target(box.width, box.height, pixels.channels);
    for (std::size_t y = 0; y < box.height; ++y)
        std::memcpy(target.row(y), pixels.row(box.top + y - source.top) + (box.left - source.left) * pixels.channels,
                    target.row_size());
    return target;
}

// The input span [first, end) that output samples [begin, end) of an axis read.
std::pair<std::size_t, std::size_t> input_span(std::size_t input_size, std::size_t output_size, resize_filter filter,
                                               std::size_t begin, std::size_t end) {
    if (input_size == output_size) return {begin, end};
    if (filter == resize_filter::nearest) {
        auto indices = nearest_indices(input_size, output_size, begin, end);
        return {indices.front(), indices.back() + 1};
    }
    const axis_geometry geometry(input_size, output_size, filter);
    std::size_t first = static_cast<std::size_t>(geometry.first(begin));
    return {first, std::max(first, static_cast<std::size_t>(geometry.last(end - 1, input_size)))};
}

// Shifts an axis's input indices to those of a part starting at `offset`.
void shift_axis(axis_weights& axis, std::size_t offset) {
    for (auto& first : axis.first) first -= static_cast<std::int32_t>(offset);
}

image resize_part(const part_view& source, std::size_t width, std::size_t height, resize_filter filter,
                  const pixel_box& box) {
    const image& pixels = source.pixels;
    const image_size full = source.full;
    if (width == 0 || height == 0 || pixels.width == 0 || pixels.height == 0)
        throw std::invalid_argument("resize: empty image");
    if (pixels.channels != 1 && pixels.channels != 3) throw std::invalid_argument("resize: 1 or 3 channels");
    if (box.width == 0 || box.height == 0 || box.left + box.width > width || box.top + box.height > height)
        throw std::invalid_argument("resize: the crop box must lie inside the resized image");
    pixel_box needed = resize_region(full, width, height, filter, box);
    if (needed.left < source.left || needed.top < source.top ||
        needed.left + needed.width > source.left + pixels.width ||
        needed.top + needed.height > source.top + pixels.height)
        throw std::invalid_argument("resize: the part of the image does not hold the pixels the resize reads");
    bool horizontal = width != full.width, vertical = height != full.height;
    if (!horizontal && !vertical) return crop(source, box);
    if (filter == resize_filter::nearest) return nearest_resize_and_crop(source, width, height, box);

    axis_weights rows = compute_axis(full.height, height, filter, box.top, box.top + box.height);
    shift_axis(rows, source.top);
    image target(box.width, box.height, pixels.channels);
    if (!horizontal) {
        vertical_pass(pixels, (box.left - source.left) * pixels.channels, 0, rows, target);
        return target;
    }
    axis_weights columns = compute_axis(full.width, width, filter, box.left, box.left + box.width);
    shift_axis(columns, source.left);
    if (!vertical) {  // Pillow skips the pass that would not change the size
        horizontal_pass(pixels, box.top - source.top, columns, target);
        return target;
    }
    // Only the input rows the vertical pass reads go through the horizontal pass.
    std::size_t row_begin = static_cast<std::size_t>(rows.first.front());
    std::size_t row_end = static_cast<std::size_t>(rows.first.back() + rows.count.back());
    image between(box.width, row_end - row_begin, pixels.channels);
    horizontal_pass(pixels, row_begin, columns, between);
    vertical_pass(between, 0, row_begin, rows, target);
    return target;
}

}  // namespace

std::optional<resize_filter> resize_filter_from_name(std::string_view name) {
    if (name == "nearest") return resize_filter::nearest;
    if (name == "bilinear") return resize_filter::bilinear;
    if (name == "bicubic") return resize_filter::bicubic;
    return std::nullopt;
}

std::string_view resize_filter_name(resize_filter filter) {
    switch (filter) {
    case resize_filter::nearest: return "nearest";
    case resize_filter::bilinear: return "bilinear";
    case resize_filter::bicubic: return "bicubic";
    }
    return "?";
}

image resize_and_crop(const image_part& source, std::size_t width, std::size_t height, resize_filter filter,
                      const pixel_box& box) {
    return resize_part({source.pixels, source.left, source.top, source.full}, width, height, filter, box);
}

image resize_and_crop(const image& source, std::size_t width, std::size_t height, resize_filter filter,
                      const pixel_box& box) {
    return resize_part({source, 0, 0, {source.width, source.height}}, width, height, filter, box);
}

pixel_box resize_region(image_size source, std::size_t width, std::size_t height, resize_filter filter,
                        const pixel_box& box) {
    auto [left, right] = input_span(source.width, width, filter, box.left, box.left + box.width);
    auto [top, bottom] = input_span(source.height, height, filter, box.top, box.top + box.height);
    return {left, top, right - left, bottom - top};
}

image resize(const image& source, std::size_t width, std::size_t height, resize_filter filter) {
    return resize_and_crop(source, width, height, filter, {0, 0, width, height});
}

}  // namespace lowrank
