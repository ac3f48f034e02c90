#include "formats/dtype.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace lowrank {
namespace {

struct dtype_entry {
    dtype type;
    std::string_view name;
    std::size_t bits;
};

constexpr dtype_entry dtype_table[] = {
    {dtype::boolean, "BOOL", 8},        {dtype::u8, "U8", 8},
    {dtype::i8, "I8", 8},               {dtype::u16, "U16", 16},
    {dtype::i16, "I16", 16},            {dtype::u32, "U32", 32},
    {dtype::i32, "I32", 32},            {dtype::u64, "U64", 64},
    {dtype::i64, "I64", 64},            {dtype::f16, "F16", 16},
    {dtype::bf16, "BF16", 16},          {dtype::f32, "F32", 32},
    {dtype::f64, "F64", 64},            {dtype::c64, "C64", 64},
    {dtype::f8_e4m3, "F8_E4M3", 8},     {dtype::f8_e5m2, "F8_E5M2", 8},
    {dtype::f8_e4m3fnuz, "F8_E4M3FNUZ", 8}, {dtype::f8_e5m2fnuz, "F8_E5M2FNUZ", 8},
    {dtype::f8_e8m0, "F8_E8M0", 8},     {dtype::f6_e2m3, "F6_E2M3", 6},
    {dtype::f6_e3m2, "F6_E3M2", 6},     {dtype::f4, "F4", 4},
};

const dtype_entry& entry(dtype type) {
    for (const auto& candidate : dtype_table)
        if (candidate.type == type) return candidate;
    throw std::logic_error("dtype missing from the table");
}

template <class T>
T load(const std::byte* source, std::size_t index) {
    T value;
    std::memcpy(&value, source + index * sizeof(T), sizeof(T));
    return value;
}

template <class T>
void store(std::byte* target, std::size_t index, T value) {
    std::memcpy(target + index * sizeof(T), &value, sizeof(T));
}

// float32 bits to bfloat16 bits: round to nearest even on the upper half; a NaN stays a
// (quiet) NaN. Branch-free, so that the loops below vectorize.
inline std::uint16_t bfloat16_bits(std::uint32_t bits) {
    std::uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    std::uint32_t quiet_nan = (bits >> 16) | 0x40u;
    return static_cast<std::uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

template <class T>
void convert_integers_to_float(const std::byte* source, std::size_t count, float* target) {
    for (std::size_t i = 0; i < count; ++i) target[i] = static_cast<float>(load<T>(source, i));
}

template <class T>
void convert_float_to_integers(const float* source, std::size_t count, std::byte* target) {
    constexpr double low = static_cast<double>(std::numeric_limits<T>::min());
    constexpr double high = static_cast<double>(std::numeric_limits<T>::max());
    for (std::size_t i = 0; i < count; ++i) {
        double value = std::nearbyint(static_cast<double>(source[i]));
        T result = 0;  // NaN becomes 0
        if (value <= low) result = std::numeric_limits<T>::min();
        else if (value >= high) result = std::numeric_limits<T>::max();  // also 2^64 for U64
        else if (value == value) result = static_cast<T>(value);
        store<T>(target, i, result);
    }
}

}  // namespace

std::size_t dtype_bits(dtype type) { return entry(type).bits; }

std::string_view safetensors_name(dtype type) { return entry(type).name; }

std::optional<dtype> dtype_from_safetensors_name(std::string_view name) {
    for (const auto& candidate : dtype_table)
        if (candidate.name == name) return candidate.type;
    return std::nullopt;
}

bool converts_to_float(dtype type) {
    switch (type) {
    case dtype::boolean: case dtype::u8: case dtype::i8: case dtype::u16: case dtype::i16:
    case dtype::u32: case dtype::i32: case dtype::u64: case dtype::i64:
    case dtype::f16: case dtype::bf16: case dtype::f32: case dtype::f64:
        return true;
    default:
        return false;
    }
}

float half_to_float(std::uint16_t bits) {
    std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    std::uint32_t exponent = (bits >> 10) & 0x1Fu;
    std::uint32_t mantissa = bits & 0x3FFu;
    if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // Inf, NaN
    if (exponent == 0) {
        // Zero or subnormal: mantissa · 2^-24, exact in float.
        float magnitude = static_cast<float>(mantissa) * 0x1.0p-24f;
        return sign ? -magnitude : magnitude;
    }
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t float_to_half(float value) {
    std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    std::uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN
    if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to Inf
    if (magnitude < 0x38800000u) {
        // Result is subnormal (or zero): round |value| / 2^-24 to the nearest integer, ties to even.
        float scaled = std::bit_cast<float>(magnitude) * 0x1.0p24f;
        return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
    }
    // Normal: drop 13 mantissa bits with round-to-nearest-even, rebias the exponent by 112.
    std::uint32_t rounded = magnitude + 0xFFFu + ((magnitude >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

float bfloat16_to_float(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

std::uint16_t float_to_bfloat16(float value) { return bfloat16_bits(std::bit_cast<std::uint32_t>(value)); }

void convert_to_float(dtype type, const std::byte* source, std::size_t count, float* target) {
    if (count == 0) return;  // the pointers of empty buffers may be null, which memcpy does not allow
    switch (type) {
    case dtype::f32: std::memcpy(target, source, count * sizeof(float)); return;
    case dtype::f16:
        for (std::size_t i = 0; i < count; ++i) target[i] = half_to_float(load<std::uint16_t>(source, i));
        return;
    case dtype::bf16:
#pragma omp simd
        for (std::size_t i = 0; i < count; ++i) target[i] = bfloat16_to_float(load<std::uint16_t>(source, i));
        return;
    case dtype::f64:
        for (std::size_t i = 0; i < count; ++i) target[i] = static_cast<float>(load<double>(source, i));
        return;
    case dtype::boolean: convert_integers_to_float<std::uint8_t>(source, count, target); return;
    case dtype::u8: convert_integers_to_float<std::uint8_t>(source, count, target); return;
    case dtype::i8: convert_integers_to_float<std::int8_t>(source, count, target); return;
    case dtype::u16: convert_integers_to_float<std::uint16_t>(source, count, target); return;
    case dtype::i16: convert_integers_to_float<std::int16_t>(source, count, target); return;
    case dtype::u32: convert_integers_to_float<std::uint32_t>(source, count, target); return;
    case dtype::i32: convert_integers_to_float<std::int32_t>(source, count, target); return;
    case dtype::u64: convert_integers_to_float<std::uint64_t>(source, count, target); return;
    case dtype::i64: convert_integers_to_float<std::int64_t>(source, count, target); return;
    default: throw std::invalid_argument("cannot convert " + std::string(safetensors_name(type)) + " to float32");
    }
}

void convert_from_float(const float* source, std::size_t count, dtype type, std::byte* target) {
    if (count == 0) return;
    switch (type) {
    case dtype::f32: std::memcpy(target, source, count * sizeof(float)); return;
    case dtype::f16:
        for (std::size_t i = 0; i < count; ++i) store<std::uint16_t>(target, i, float_to_half(source[i]));
        return;
    case dtype::bf16:
#pragma omp simd
        for (std::size_t i = 0; i < count; ++i)
            store<std::uint16_t>(target, i, bfloat16_bits(std::bit_cast<std::uint32_t>(source[i])));
        return;
    case dtype::f64:
        for (std::size_t i = 0; i < count; ++i) store<double>(target, i, source[i]);
        return;
    case dtype::boolean:
        for (std::size_t i = 0; i < count; ++i) store<std::uint8_t>(target, i, source[i] != 0);
        return;
    case dtype::u8: convert_float_to_integers<std::uint8_t>(source, count, target); return;
    case dtype::i8: convert_float_to_integers<std::int8_t>(source, count, target); return;
    case dtype::u16: convert_float_to_integers<std::uint16_t>(source, count, target); return;
    case dtype::i16: convert_float_to_integers<std::int16_t>(source, count, target); return;
    case dtype::u32: convert_float_to_integers<std::uint32_t>(source, count, target); return;
    case dtype::i32: convert_float_to_integers<std::int32_t>(source, count, target); return;
    case dtype::u64: convert_float_to_integers<std::uint64_t>(source, count, target); return;
    case dtype::i64: convert_float_to_integers<std::int64_t>(source, count, target); return;
    default: throw std::invalid_argument("cannot convert float32 to " + std::string(safetensors_name(type)));
    }
}

}  // namespace lowrank
