#include "core/error.hpp"
#include "formats/idx.hpp"
#include "formats/npy.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>
#include <cstring>
#include <zlib.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string fixtures = "tests/data/image/";

std::string gzip(const std::string& data) {
    z_stream stream{};
    REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&stream, data.size()), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    stream.avail_in = static_cast<uInt>(data.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    return out;
}

// An IDX header: magic 00 00 TYPE NDIM, then the dimensions big-endian.
std::string idx_header(unsigned char type, const std::vector<std::uint32_t>& dimensions) {
    std::string header{'\0', '\0', static_cast<char>(type), static_cast<char>(dimensions.size())};
    for (std::uint32_t size : dimensions)
        for (int shift = 24; shift >= 0; shift -= 8) header += static_cast<char>((size >> shift) & 0xFF);
    return header;
}

}  // namespace

TEST_CASE("looks_like_idx: the names MNIST and Fashion-MNIST are distributed under") {
    CHECK(looks_like_idx("train-images-idx3-ubyte"));
    CHECK(looks_like_idx("/data/t10k-labels-idx1-ubyte.gz"));
    CHECK(looks_like_idx("digits.idx"));
    CHECK(looks_like_idx("x.gz"));
    CHECK_FALSE(looks_like_idx("photo.jpg"));
    CHECK_FALSE(looks_like_idx("idx/photo.png"));   // the folder does not count
    CHECK_FALSE(looks_like_idx("index.png"));
    CHECK_FALSE(looks_like_idx("my-idx-notes.txt"));  // "idx" without a digit
}

TEST_CASE("idx_reader: the same records from plain and gzip files") {
    std::string raw = read_file(fixtures + "tiny-images.idx3-ubyte");
    for (const char* name : {"tiny-images.idx3-ubyte", "tiny-images.idx3-ubyte.gz"}) {
        idx_reader reader(fixtures + name);
        CHECK(reader.type() == dtype::u8);
        CHECK(reader.shape() == std::vector<std::size_t>{5, 28, 28});
        CHECK(reader.record_count() == 5);
        CHECK(reader.record_bytes() == 784);
        std::vector<std::byte> record(784);
        for (std::size_t i = 0; i < 5; ++i) {
            reader.read_record(record);
            CHECK(std::memcmp(record.data(), raw.data() + 16 + i * 784, 784) == 0);
        }
        CHECK(reader.records_read() == 5);
        CHECK_THROWS_WITH_AS(reader.read_record(record), doctest::Contains("record 5: past the last record"), error);
    }
}

TEST_CASE("read_idx_labels: Fashion-MNIST's first test labels; signed and wide types") {
    npy_array expected(fixtures + "tiny-labels.npy");  // made by NumPy from the same file
    CHECK(read_idx_labels(fixtures + "tiny-labels.idx1-ubyte") == expected.to_int64());
    CHECK(read_idx_labels(fixtures + "tiny-labels.idx1-ubyte") == std::vector<std::int64_t>{9, 2, 1, 1, 6});

    scratch_folder folder;
    write_file(folder.file("signed.idx1"), idx_header(0x0B, {3}) + std::string("\xFF\xFE\x01\x00\x7F\xFF", 6));
    CHECK(read_idx_labels(folder.file("signed.idx1")) == std::vector<std::int64_t>{-2, 256, 32767});
    write_file(folder.file("int.idx1.gz"), gzip(idx_header(0x0C, {2}) + std::string("\x80\0\0\0\0\0\0\x05", 8)));
    CHECK(read_idx_labels(folder.file("int.idx1.gz")) == std::vector<std::int64_t>{-2147483648LL, 5});
}

TEST_CASE("idx_reader: malformed files, one message naming the file (and record)") {
    scratch_folder folder;
    auto fails_with = [&](const std::string& name, const std::string& bytes, const char* message) {
        write_file(folder.file(name), bytes);
        CHECK_THROWS_WITH_AS(
            {
                idx_reader reader(folder.file(name));
                std::vector<std::byte> record(reader.record_bytes());
                for (std::size_t i = 0; i < reader.record_count(); ++i) reader.read_record(record);
            },
            doctest::Contains(message), error);
    };
    fails_with("png.idx", "\x89PNG\r\n\x1a\n....", "not an IDX file: magic 89 50 4e 47");
    fails_with("type.idx", idx_header(0x07, {1}) + "x", "not an IDX file: magic 00 00 07 01");
    fails_with("short.idx", std::string("\0\0", 2), "shorter than its 4-byte magic");
    fails_with("empty.idx", "", "shorter than its 4-byte magic");
    fails_with("header.idx", idx_header(0x08, {4, 2, 2}).substr(0, 9), "truncated header: 3 dimensions announced");
    fails_with("data.idx3", idx_header(0x08, {4, 2, 2}) + std::string(10, 'x'),
               "record 2: truncated: the file ends after 2 of 4 records");
    std::string compressed = gzip(idx_header(0x08, {4, 2, 2}) + std::string(16, 'x'));
    compressed[compressed.size() / 2] ^= 0x55;
    compressed[compressed.size() / 2 + 1] ^= 0x55;
    fails_with("corrupt.idx3.gz", compressed, "corrupt.idx3.gz");
    fails_with("cut.idx3.gz", gzip(idx_header(0x08, {4, 2, 2}) + std::string(16, 'x')).substr(0, 20), "cut.idx3.gz");
    CHECK_THROWS_WITH_AS(idx_reader(folder.file("absent.idx")), doctest::Contains("absent.idx: No such file"), error);
    CHECK_THROWS_WITH_AS(idx_reader(folder.path().string()), doctest::Contains("is a directory"), error);
    write_file(folder.file("images.idx3"), idx_header(0x08, {1, 2, 2}) + "abcd");
    CHECK_THROWS_WITH_AS(read_idx_labels(folder.file("images.idx3")),
                         doctest::Contains("labels must be one-dimensional, not 3-dimensional"), error);
}
