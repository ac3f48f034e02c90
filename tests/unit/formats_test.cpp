#include "core/error.hpp"
#include "formats/dtype.hpp"
#include "formats/npy.hpp"
#include "formats/safetensors.hpp"
#include "formats/tsv.hpp"
#include "helpers.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <doctest/doctest.h>
#include <limits>

using namespace lowrank;
using namespace lowrank::testing;

// ----------------------------------------------------------------------------- dtypes

TEST_CASE("half precision: exact values, rounding to nearest even, specials") {
    CHECK(half_to_float(0x3C00) == 1.0f);
    CHECK(half_to_float(0xC000) == -2.0f);
    CHECK(half_to_float(0x7BFF) == 65504.0f);
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(std::isinf(half_to_float(0x7C00)));
    CHECK(std::isnan(half_to_float(0x7E00)));
    CHECK(float_to_half(1.0f) == 0x3C00);
    CHECK(float_to_half(65504.0f) == 0x7BFF);
    CHECK(float_to_half(65520.0f) == 0x7C00);  // rounds up to infinity
    CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(float_to_half(std::ldexp(1.0f, -26)) == 0x0000);  // below half the smallest subnormal
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
    // 1 + 3·2^-11 lies halfway between 1 + 2^-10 and 1 + 2^-9: the even one is 1 + 2^-9.
    CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
    CHECK(std::isnan(half_to_float(float_to_half(std::numeric_limits<float>::quiet_NaN()))));
    for (std::uint32_t bits = 0; bits < 0x7C00; ++bits)  // every finite half survives a round trip
        REQUIRE(float_to_half(half_to_float(static_cast<std::uint16_t>(bits))) == bits);
}

TEST_CASE("bfloat16: truncation with round to nearest even") {
    CHECK(bfloat16_to_float(0x3F80) == 1.0f);
    CHECK(float_to_bfloat16(1.0f) == 0x3F80);
    CHECK(float_to_bfloat16(std::bit_cast<float>(0x3F808000u)) == 0x3F80);  // tie, even stays
    CHECK(float_to_bfloat16(std::bit_cast<float>(0x3F818000u)) == 0x3F82);  // tie, rounds to even
    CHECK(float_to_bfloat16(std::bit_cast<float>(0x3F808001u)) == 0x3F81);  // above the tie
    CHECK(std::isnan(bfloat16_to_float(float_to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("convert_to_float and back through every convertible dtype") {
    const float values[] = {0, 1, -2, 100};
    for (dtype type : {dtype::f16, dtype::bf16, dtype::f32, dtype::f64, dtype::i8, dtype::i16, dtype::i32,
                       dtype::i64, dtype::u8, dtype::u16, dtype::u32, dtype::u64}) {
        std::vector<std::byte> bytes(4 * dtype_size(type));
        float unsigned_values[] = {0, 1, 2, 100};
        const float* source = (type == dtype::u8 || type == dtype::u16 || type == dtype::u32 || type == dtype::u64)
                                  ? unsigned_values
                                  : values;
        convert_from_float(source, 4, type, bytes.data());
        float back[4];
        convert_to_float(type, bytes.data(), 4, back);
        for (int i = 0; i < 4; ++i) CHECK_MESSAGE(back[i] == source[i], safetensors_name(type));
    }
    std::byte saturated;
    float big = 1000;
    convert_from_float(&big, 1, dtype::u8, &saturated);
    CHECK(static_cast<int>(saturated) == 255);
}

// ----------------------------------------------------------------------------- .npy

TEST_CASE("npy: write then read, with NumPy's header layout") {
    scratch_folder folder;
    std::string path = folder.file("a.npy");
    std::vector<float> values{1.5f, -2, 3, 4, 5, 6};
    {
        output_stream out(path, output_kind::binary);
        write_npy(out, dtype::f32, {2, 3}, values.data());
        out.commit();
    }
    std::string bytes = read_file(path);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    CHECK(bytes.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") == 10);
    // As numpy.save: room for a 21-digit first dimension, then spaces up to a multiple of 64.
    CHECK(bytes.size() == 128 + 24);
    CHECK(bytes[127] == '\n');
    npy_array array(path);
    CHECK(array.shape() == std::vector<std::size_t>{2, 3});
    CHECK(array.type() == dtype::f32);
    CHECK(array.to_float() == values);
}

TEST_CASE("npy: a streamed array gets its row count written at the end") {
    scratch_folder folder;
    std::string path = folder.file("rows.npy");
    {
        output_stream out(path, output_kind::binary);
        npy_writer writer(out, dtype::i32, {2});
        std::int32_t rows[] = {1, 2, 3, 4, 5, 6};
        writer.write_rows(rows, 2);
        writer.write_rows(rows + 4, 1);
        writer.finish();
        out.commit();
    }
    npy_array array(path);
    CHECK(array.shape() == std::vector<std::size_t>{3, 2});
    CHECK(array.to_int64() == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
}

namespace {

std::string npy_with(const std::string& dict, std::size_t data_bytes, char version = 1) {
    std::string header = dict;
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string bytes("\x93NUMPY", 6);
    bytes += version;
    bytes += '\0';
    bytes += static_cast<char>(header.size() & 0xFF);
    bytes += static_cast<char>(header.size() >> 8);
    return bytes + header + std::string(data_bytes, '\0');
}

void check_npy_refused(const std::string& bytes, const char* message) {
    CHECK_THROWS_WITH_AS(parse_npy_header(as_bytes(bytes), "x.npy"), doctest::Contains(message), error);
}

}  // namespace

TEST_CASE("npy: dtypes and versions that read") {
    for (auto [descr, type] : {std::pair{"<f4", dtype::f32}, {"<f8", dtype::f64}, {"<i4", dtype::i32},
                               {"<i8", dtype::i64}, {"|u1", dtype::u8}, {"<u2", dtype::u16}, {"<u4", dtype::u32}}) {
        std::string bytes = npy_with(std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (3,), }",
                                     3 * dtype_size(type));
        CHECK(parse_npy_header(as_bytes(bytes), "x.npy").type == type);
    }
    auto scalar = parse_npy_header(as_bytes(npy_with("{'shape': (), 'fortran_order': False, 'descr': '<f8'}", 8)), "x");
    CHECK(scalar.shape.empty());
    CHECK(scalar.element_count() == 1);
}

TEST_CASE("npy: malformed and unsupported files are refused with a reason") {
    check_npy_refused("not numpy at all", "not a .npy file");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16), "Fortran-order");
    check_npy_refused(npy_with("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), "big-endian");
    check_npy_refused(npy_with("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32), "unsupported");
    check_npy_refused(npy_with("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8),
                      "malformed");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 8), "truncated");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8), "bytes after");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False}", 0), "missing");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0), "non-negative");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0),
                      "too large");
    check_npy_refused(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, 9), "version 9");
    std::string lying = npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    lying[8] = '\xFF';  // header length past the end of the file
    check_npy_refused(lying, "runs past the end");
}

// ----------------------------------------------------------------------------- safetensors

namespace {

std::string safetensors_bytes(const std::string& header, std::size_t data_bytes) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return bytes + header + std::string(data_bytes, '\x01');
}

void check_safetensors_refused(const std::string& bytes, const char* message) {
    CHECK_THROWS_WITH_AS(parse_safetensors(as_bytes(bytes), "m.safetensors"), doctest::Contains(message), error);
}

std::string written_safetensors(const std::vector<tensor_data>& tensors, const std::map<std::string, std::string>& meta) {
    scratch_folder folder;
    std::string path = folder.file("m.safetensors");
    output_stream out(path, output_kind::binary);
    write_safetensors(out, tensors, meta);
    out.commit();
    return read_file(path);
}

}  // namespace

TEST_CASE("safetensors: the reference's test vectors") {
    // An empty file: "{}" padded with 6 spaces, N = 8.
    CHECK(written_safetensors({}, {}) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    // Metadata {"framework":"pt"}: 35 bytes of JSON padded to N = 40.
    std::string with_metadata = written_safetensors({}, {{"framework", "pt"}});
    CHECK(with_metadata.size() == 48);
    CHECK(with_metadata[0] == 40);
    CHECK(with_metadata.substr(8, 35) == R"({"__metadata__":{"framework":"pt"}})");
    // An I32 [2,2] tensor needs 16 bytes; [0,4] declares 4.
    check_safetensors_refused(
        safetensors_bytes(R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}})", 4), "needs 16 bytes");
    check_safetensors_refused(
        safetensors_bytes(R"({"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}})", 16),
        "shape overflows");
}

TEST_CASE("safetensors: write, then read back through the mapping") {
    scratch_folder folder;
    std::string path = folder.file("model.safetensors");
    std::vector<float> weight{1, 2, 3, 4, 5, 6};
    std::vector<std::uint16_t> half{float_to_half(0.5f), float_to_half(-1)};
    std::vector<std::int64_t> ids{7};
    {
        output_stream out(path, output_kind::binary);
        write_safetensors(out,
                          {{{"b.weight", dtype::f32, {2, 3}}, std::as_bytes(std::span(weight))},
                           {{"a.half", dtype::f16, {2}}, std::as_bytes(std::span(half))},
                           {{"c.ids", dtype::i64, {1}}, std::as_bytes(std::span(ids))}},
                          {{"format", "pt"}});
        out.commit();
    }
    safetensors_file file(path);
    CHECK(file.metadata().at("format") == "pt");
    // The reference's layout: I64 before F32 before F16, names ascending within a dtype.
    REQUIRE(file.tensors().size() == 3);
    CHECK(file.tensors()[0].name == "c.ids");
    CHECK(file.tensors()[1].name == "b.weight");
    CHECK(file.tensors()[2].name == "a.half");
    CHECK(file.to_float(file.at("b.weight")) == weight);
    CHECK(file.to_float(file.at("a.half")) == std::vector<float>{0.5f, -1});
    CHECK(file.at("b.weight").shape == std::vector<std::uint64_t>{2, 3});
    CHECK(file.find("absent") == nullptr);
    CHECK_THROWS_WITH_AS(file.at("absent"), doctest::Contains("no tensor 'absent'"), error);
    std::string header = read_file(path).substr(8, 200);
    CHECK(header.find(R"("c.ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]})") != std::string::npos);
}

TEST_CASE("safetensors: lying and hostile headers are refused") {
    check_safetensors_refused("short", "too short");
    check_safetensors_refused(std::string("\xFF\xFF\xFF\xFF\x00\x00\x00\x00", 8) + "{}", "over the 100000000 byte limit");
    check_safetensors_refused(std::string("\x40\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "runs past the end");
    check_safetensors_refused(safetensors_bytes("{not json", 0), "not valid JSON");
    check_safetensors_refused(safetensors_bytes("[1, 2]", 0), "not a JSON object");
    check_safetensors_refused(safetensors_bytes(R"({"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4),
                              "unknown dtype 'F33'");
    check_safetensors_refused(safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1]}})", 4), "no \"data_offsets\"");
    check_safetensors_refused(safetensors_bytes(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                              "non-negative integers");
    check_safetensors_refused(
        safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "gap or overlap");
    check_safetensors_refused(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                8),
                              "gap or overlap");
    check_safetensors_refused(
        safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6), "cover 4 bytes of data, the file holds 6");
    check_safetensors_refused(
        safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "truncated");
    check_safetensors_refused(safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                R"("t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                8),
                              "repeats the key 't'");
    check_safetensors_refused(safetensors_bytes(R"({"__metadata__":{"n":3}})", 0), "is not a string");
    std::string invalid_utf8 = R"({"__metadata__":{"a":"\xFF"}})";
    invalid_utf8[22] = '\xFF';
    check_safetensors_refused(safetensors_bytes(invalid_utf8, 0), "not valid JSON");
}

TEST_CASE("safetensors: lenient about whitespace around the header, as the reference") {
    auto header = parse_safetensors(
        as_bytes(safetensors_bytes(R"(  {"t":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}  )", 2)), "m");
    CHECK(header.tensors.size() == 1);
    CHECK(header.tensors[0].element_count() == 1);
}

// ----------------------------------------------------------------------------- TSV

TEST_CASE("tsv_file: header, byte order mark, columns by name or number, quotes kept") {
    scratch_folder folder;
    std::string path = folder.file("dev.tsv");
    write_file(path, "\xEF\xBB\xBFQuality\t#1 String\n1\t\"He said \"\"no\"\"\"\n0\n");
    tsv_file file(path, true);
    CHECK(file.header() == std::vector<std::string>{"Quality", "#1 String"});
    CHECK(file.column("Quality") == 0);
    CHECK(file.column("2") == 1);
    std::vector<std::string_view> fields;
    REQUIRE(file.next(fields));
    CHECK(file.field(fields, 1) == "\"He said \"\"no\"\"\"");
    REQUIRE(file.next(fields));
    CHECK_THROWS_WITH_AS(file.field(fields, 1), doctest::Contains("dev.tsv:3: 1 field, but column '#1 String' is field 2"),
                         error);
    CHECK(!file.next(fields));
    CHECK_THROWS_WITH_AS(file.column("label"), doctest::Contains("no column 'label' (columns: Quality, #1 String)"),
                         error);
    CHECK_THROWS_WITH_AS(file.column("3"), doctest::Contains("has 2 columns, no column 3"), error);
    CHECK(tsv_safe("a\tb\nc") == "a b c");
}

TEST_CASE("npy: files from numpy.save read, and write back byte for byte") {
    scratch_folder folder;
    for (const char* name : {"f4-2x3", "f8-5", "i4-3x1x2", "i8-4", "u1-2x2", "u2-3", "u4-2", "f4-scalar", "f4-0x7"}) {
        std::string original = std::string("tests/data/formats/") + name + ".npy";
        npy_array array(original);
        std::string copy = folder.file(std::string(name) + ".npy");
        {
            output_stream out(copy, output_kind::binary);
            write_npy(out, array.type(), array.shape(), array.data().data());
            out.commit();
        }
        CHECK_MESSAGE(read_file(copy) == read_file(original), name);
    }
    CHECK(npy_array("tests/data/formats/i8-4.npy").to_int64() == std::vector<std::int64_t>{0, -1, 1ll << 40, 7});
    CHECK(npy_array("tests/data/formats/f4-2x3.npy").to_float() == std::vector<float>{0, 0.25, 0.5, 0.75, 1, 1.25});
}

TEST_CASE("bfloat16: the array conversions give what the scalar ones give, NaN and infinities included") {
    std::vector<float> values;
    for (std::uint32_t bits = 0; bits < (1u << 20); ++bits)  // all exponents, ties, NaN payloads
        values.push_back(std::bit_cast<float>(bits * 4099u + (bits & 1u) * 0x8000u));
    for (std::uint32_t special : {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFFFFFFFu, 0x7F7FFFFFu})
        values.push_back(std::bit_cast<float>(special));
    std::vector<std::byte> bytes(2 * values.size());
    convert_from_float(values.data(), values.size(), dtype::bf16, bytes.data());
    std::vector<float> back(values.size());
    convert_to_float(dtype::bf16, bytes.data(), values.size(), back.data());
    std::size_t differences = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        std::uint16_t stored;
        std::memcpy(&stored, bytes.data() + 2 * i, 2);
        differences += stored != float_to_bfloat16(values[i]) ||
                       std::bit_cast<std::uint32_t>(back[i]) != std::bit_cast<std::uint32_t>(bfloat16_to_float(stored));
    }
    CHECK(differences == 0);
}
