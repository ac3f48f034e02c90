// Element types of arrays and tensors, their names in safetensors and NumPy, and the
// conversions to and from float32 (all compute is float32; F16/BF16 convert at load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lowrank {

// Every dtype the safetensors format defines (the reader validates files holding any of
// them), of which the integer, boolean and F16/BF16/F32/F64 types can be converted.
enum class dtype {
    boolean, u8, i8, u16, i16, u32, i32, u64, i64,
    f16, bf16, f32, f64, c64,
    f8_e4m3, f8_e5m2, f8_e4m3fnuz, f8_e5m2fnuz, f8_e8m0,
    f6_e2m3, f6_e3m2, f4,
};

// Bits per element (6 and 4 for the sub-byte types).
std::size_t dtype_bits(dtype type);
// Bytes per element, for types whose elements are whole bytes.
inline std::size_t dtype_size(dtype type) { return dtype_bits(type) / 8; }

// Safetensors spelling: "F32", "BF16", "I64"...
std::string_view safetensors_name(dtype type);
std::optional<dtype> dtype_from_safetensors_name(std::string_view name);

// Whether convert_to_float/convert_from_float handle this type.
bool converts_to_float(dtype type);

// IEEE half and bfloat16 to float and back (round to nearest, ties to even; NaN kept NaN).
float half_to_float(std::uint16_t bits);
std::uint16_t float_to_half(float value);
float bfloat16_to_float(std::uint16_t bits);
std::uint16_t float_to_bfloat16(float value);

// Little-endian elements of `type` to float32, and back (rounding to nearest even; integer
// types round to nearest and saturate).
void convert_to_float(dtype type, const std::byte* source, std::size_t count, float* target);
void convert_from_float(const float* source, std::size_t count, dtype type, std::byte* target);

}  // namespace lowrank
