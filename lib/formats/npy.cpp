#include "formats/npy.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <limits>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace lowrank {
namespace {

constexpr std::string_view magic = "\x93NUMPY";
constexpr std::size_t alignment = 64;

struct descr_entry {
    std::string_view descr;
    dtype type;
};

// The little-endian (or byte-order-free) spellings NumPy writes, plus "<" for 1-byte types.
constexpr descr_entry descr_table[] = {
    {"<f2", dtype::f16}, {"<f4", dtype::f32}, {"<f8", dtype::f64}, {"|i1", dtype::i8},
    {"<i1", dtype::i8},  {"<i2", dtype::i16}, {"<i4", dtype::i32}, {"<i8", dtype::i64},
    {"|u1", dtype::u8},  {"<u1", dtype::u8},  {"<u2", dtype::u16}, {"<u4", dtype::u32},
    {"<u8", dtype::u64}, {"|b1", dtype::boolean},
};

// A reader of the Python dict literal in the header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class header_parser {
public:
    header_parser(std::string_view text, std::string_view path) : text_(text), path_(path) {}

    void skip_spaces() {
        while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n')) ++position_;
    }
    bool accept(char c) {
        skip_spaces();
        if (position_ < text_.size() && text_[position_] == c) {
            ++position_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!accept(c)) fail(fmt::format("expected '{}'", c));
    }
    std::string string_literal() {
        skip_spaces();
        if (position_ >= text_.size() || (text_[position_] != '\'' && text_[position_] != '"'))
            fail("expected a quoted string");
        char quote = text_[position_++];
        std::size_t end = text_.find(quote, position_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string value(text_.substr(position_, end - position_));
        position_ = end + 1;
        return value;
    }
    bool boolean_literal() {
        skip_spaces();
        for (auto [word, value] : {std::pair{std::string_view("True"), true}, {std::string_view("False"), false}}) {
            if (text_.substr(position_).starts_with(word)) {
                position_ += word.size();
                return value;
            }
        }
        fail("expected True or False");
    }
    std::vector<std::size_t> shape_tuple() {
        expect('(');
        std::vector<std::size_t> shape;
        while (!accept(')')) {
            skip_spaces();
            std::size_t start = position_;
            std::size_t value = 0;
            while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') {
                std::size_t digit = static_cast<std::size_t>(text_[position_] - '0');
                if (value > (std::numeric_limits<std::size_t>::max() - digit) / 10) fail("dimension too large");
                value = value * 10 + digit;
                ++position_;
            }
            if (position_ == start) fail("expected a non-negative integer in the shape");
            if (position_ < text_.size() && text_[position_] == 'L') ++position_;  // Python 2 longs
            shape.push_back(value);
            if (!accept(',')) {
                expect(')');
                break;
            }
        }
        return shape;
    }
    bool at_end() {
        skip_spaces();
        return position_ == text_.size();
    }
    [[noreturn]] void fail(std::string_view what) const {
        throw error_in(path_, fmt::format("malformed .npy header: {} at offset {} of \"{}\"", what, position_, text_));
    }

private:
    std::string_view text_;
    std::string_view path_;
    std::size_t position_ = 0;
};

std::uint32_t read_little_endian(const std::byte* bytes, std::size_t count) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < count; ++i) value |= static_cast<std::uint32_t>(bytes[i]) << (8 * i);
    return value;
}

std::string dict_text(dtype type, const std::vector<std::size_t>& shape) {
    std::string shape_text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) shape_text += fmt::format("{}{}", i ? ", " : "", shape[i]);
    if (shape.size() == 1) shape_text += ",";
    shape_text += ")";
    return fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(type), shape_text);
}

}  // namespace

std::size_t npy_header::element_count() const {
    std::size_t count = 1;
    for (std::size_t dimension : shape) count *= dimension;
    return count;
}

std::string npy_descr(dtype type) {
    for (const auto& entry : descr_table)
        if (entry.type == type) return std::string(entry.descr);
    throw error(fmt::format("dtype {} cannot be stored in .npy", safetensors_name(type)));
}

npy_header parse_npy_header(std::span<const std::byte> file, std::string_view path, bool whole_file) {
    auto bytes = reinterpret_cast<const char*>(file.data());
    if (file.size() < 10 || std::string_view(bytes, 6) != magic)
        throw error_in(path, "not a .npy file (no \\x93NUMPY magic)");
    int major = static_cast<int>(file[6]);
    std::size_t length_size = major == 1 ? 2 : 4;
    if (major < 1 || major > 3) throw error_in(path, fmt::format(".npy format version {} is not supported", major));
    if (file.size() < 6 + 2 + length_size) throw error_in(path, "truncated .npy header");
    std::size_t header_length = read_little_endian(file.data() + 8, length_size);
    std::size_t data_offset = 8 + length_size + header_length;
    if (data_offset > file.size())
        throw error_in(path, fmt::format(".npy header length {} runs past the end of the file ({} bytes)",
                                         header_length, file.size()));

    header_parser parser(std::string_view(bytes + 8 + length_size, header_length), path);
    npy_header header;
    header.data_offset = data_offset;
    std::string descr;
    bool fortran_order = false, has_descr = false, has_order = false, has_shape = false;
    parser.expect('{');
    while (!parser.accept('}')) {
        std::string key = parser.string_literal();
        parser.expect(':');
        if (key == "descr") {
            descr = parser.string_literal();
            has_descr = true;
        } else if (key == "fortran_order") {
            fortran_order = parser.boolean_literal();
            has_order = true;
        } else if (key == "shape") {
            header.shape = parser.shape_tuple();
            has_shape = true;
        } else {
            parser.fail(fmt::format("unexpected key '{}'", key));
        }
        if (!parser.accept(',')) {
            parser.expect('}');
            break;
        }
    }
    if (!parser.at_end()) parser.fail("text after the dict");
    if (!has_descr || !has_order || !has_shape) parser.fail("missing one of 'descr', 'fortran_order', 'shape'");

    if (fortran_order)
        throw error_in(path, "Fortran-order arrays are not supported; save with numpy.ascontiguousarray(a)");
    if (descr.size() == 3 && descr[0] == '>' && descr[2] != '1')
        throw error_in(path, fmt::format("big-endian dtype '{}' is not supported; convert with a.astype('<{}')",
                                         descr, descr.substr(1)));
    bool known = false;
    for (const auto& entry : descr_table)
        if (entry.descr == descr || (descr.size() == 3 && descr[0] == '=' && entry.descr.substr(1) == descr.substr(1))) {
            header.type = entry.type;
            known = true;
            break;
        }
    if (!known) throw error_in(path, fmt::format("unsupported .npy dtype '{}'", descr));

    std::size_t count = 1;
    for (std::size_t dimension : header.shape) {
        if (dimension != 0 && count > std::numeric_limits<std::size_t>::max() / dimension / 8)
            throw error_in(path, "the .npy shape is too large");
        count *= dimension;
    }
    if (!whole_file) return header;
    std::size_t data_size = count * dtype_size(header.type);
    std::size_t present = file.size() - data_offset;
    if (present < data_size)
        throw error_in(path, fmt::format("truncated: the .npy header declares {} bytes of data, the file holds {}",
                                         data_size, present));
    if (present > data_size)
        throw error_in(path, fmt::format("{} bytes after the end of the array that the .npy header declares",
                                         present - data_size));
    return header;
}

std::string npy_header_bytes(dtype type, const std::vector<std::size_t>& shape) {
    constexpr std::size_t growth_digits = 21;
    std::string dict = dict_text(type, shape);
    if (!shape.empty()) dict.append(growth_digits - fmt::formatted_size("{}", shape[0]), ' ');
    // NumPy pads with 1 to 64 spaces so that magic, length field, dict and '\n' fill a multiple of 64.
    auto padded_length = [&](std::size_t prefix) { return dict.size() + alignment - (prefix + dict.size() + 1) % alignment + 1; };
    std::size_t length_size = 2;
    std::size_t header_length = padded_length(magic.size() + 2 + length_size);
    if (header_length > 65535) {
        length_size = 4;
        header_length = padded_length(magic.size() + 2 + length_size);
    }
    std::string bytes(magic);
    bytes += static_cast<char>(length_size == 2 ? 1 : 2);
    bytes += '\0';
    for (std::size_t i = 0; i < length_size; ++i) bytes += static_cast<char>((header_length >> (8 * i)) & 0xFF);
    bytes += dict;
    bytes.append(header_length - dict.size() - 1, ' ');
    bytes += '\n';
    return bytes;
}

npy_array::npy_array(const std::string& path) : input_(path) {
    auto file = std::as_bytes(std::span(input_.text().data(), input_.text().size()));
    header_ = parse_npy_header(file, display_name(path));
    data_ = file.subspan(header_.data_offset);
}

std::vector<float> npy_array::to_float() const {
    std::vector<float> values(element_count());
    convert_to_float(type(), data_.data(), values.size(), values.data());
    return values;
}

std::vector<std::int64_t> npy_array::to_int64() const {
    std::vector<std::int64_t> values(element_count());
    std::size_t size = dtype_size(type());
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::byte* element = data_.data() + i * size;
        switch (type()) {
        case dtype::boolean: case dtype::u8: values[i] = static_cast<std::uint8_t>(*element); break;
        case dtype::i8: values[i] = static_cast<std::int8_t>(*element); break;
        case dtype::u16: { std::uint16_t v; std::memcpy(&v, element, 2); values[i] = v; break; }
        case dtype::i16: { std::int16_t v; std::memcpy(&v, element, 2); values[i] = v; break; }
        case dtype::u32: { std::uint32_t v; std::memcpy(&v, element, 4); values[i] = v; break; }
        case dtype::i32: { std::int32_t v; std::memcpy(&v, element, 4); values[i] = v; break; }
        case dtype::i64: std::memcpy(&values[i], element, 8); break;
        case dtype::u64: {
            std::uint64_t v;
            std::memcpy(&v, element, 8);
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw error_in(path(), fmt::format("element {} ({}) does not fit in int64", i, v));
            values[i] = static_cast<std::int64_t>(v);
            break;
        }
        default:
            throw error_in(path(), fmt::format("holds {} values where integers are expected", npy_descr(type())));
        }
    }
    return values;
}

npy_writer::npy_writer(output_stream& out, dtype type, std::vector<std::size_t> row_shape,
                       std::optional<std::size_t> rows)
    : out_(out), type_(type), row_shape_(std::move(row_shape)), declared_rows_(rows) {
    row_bytes_ = dtype_size(type);
    for (std::size_t dimension : row_shape_) row_bytes_ *= dimension;
    std::vector<std::size_t> shape{rows.value_or(0)};
    shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
    std::string header = npy_header_bytes(type, shape);
    header_size_ = header.size();
    out_.write(header);
}

void npy_writer::write_rows(const void* data, std::size_t count) {
    out_.write(data, count * row_bytes_);
    rows_written_ += count;
}

void npy_writer::finish() {
    if (declared_rows_) {
        if (*declared_rows_ != rows_written_)
            throw error(fmt::format("{}: wrote {} rows where {} were declared",
                                    out_.is_stdout() ? "standard output" : out_.path(), rows_written_,
                                    *declared_rows_));
        return;
    }
    std::vector<std::size_t> shape{rows_written_};
    shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
    std::FILE* file = out_.file();
    if (std::fflush(file) != 0 || std::fseek(file, 0, SEEK_SET) != 0)
        throw error(fmt::format("{}: cannot rewrite the .npy header on a stream that cannot seek; "
                                "write to a file with -o", out_.is_stdout() ? "standard output" : out_.path()));
    // The room for 21 digits keeps the header the same size, so the data does not move.
    std::string header = npy_header_bytes(type_, shape);
    if (header.size() != header_size_) throw error("internal error: .npy header size changed");
    out_.write(header);
    if (std::fflush(file) != 0 || std::fseek(file, 0, SEEK_END) != 0)
        throw error_in(out_.path(), "write failed: " + system_message(errno));
}

void write_npy(output_stream& out, dtype type, const std::vector<std::size_t>& shape, const void* data) {
    std::vector<std::size_t> row_shape(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
    if (shape.empty()) {
        out.write(npy_header_bytes(type, shape));
        out.write(data, dtype_size(type));
        return;
    }
    npy_writer writer(out, type, row_shape, shape[0]);
    writer.write_rows(data, shape[0]);
    writer.finish();
}

// ------------------------------------------------------------------------- npy_row_reader

namespace {

// Reads up to `size` bytes (fewer only at the end of the input).
std::size_t read_fully(int fd, std::byte* data, std::size_t size, const std::string& path) {
    std::size_t done = 0;
    while (done < size) {
        ssize_t got = ::read(fd, data + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw error_in(display_name(path), system_message(errno));
        if (got == 0) break;
        done += static_cast<std::size_t>(got);
    }
    return done;
}

}  // namespace

npy_row_reader::npy_row_reader(const std::string& path) : path_(path) {
    fd_ = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw error_in(path, system_message(errno));
    try {
        struct stat info;
        if (::fstat(fd_, &info) == 0 && S_ISDIR(info.st_mode)) throw error_in(path, "is a directory");
        // magic (6), version (2), header length (2 or 4), then the header itself
        std::vector<std::byte> start(12);
        start.resize(read_fully(fd_, start.data(), start.size(), path));
        std::size_t length_size = start.size() >= 7 && static_cast<int>(start[6]) == 1 ? 2 : 4;
        if (start.size() >= 8 + length_size) {
            std::size_t header_end = 8 + length_size + read_little_endian(start.data() + 8, length_size);
            std::size_t have = start.size();
            if (header_end > have && header_end < (std::size_t{1} << 24)) {
                start.resize(header_end);
                start.resize(have + read_fully(fd_, start.data() + have, header_end - have, path));
            }
        }
        header_ = parse_npy_header(start, display_name(path), false);
        if (header_.shape.empty()) throw error_in(display_name(path), "holds a scalar, not rows");
        row_bytes_ = dtype_size(header_.type);
        for (std::size_t d = 1; d < header_.shape.size(); ++d) row_bytes_ *= header_.shape[d];
        // bytes read past the header are the first data
        buffer_.assign(start.begin() + static_cast<std::ptrdiff_t>(header_.data_offset), start.end());
    } catch (...) {
        if (fd_ != STDIN_FILENO) ::close(fd_);
        throw;
    }
}

npy_row_reader::~npy_row_reader() {
    if (fd_ >= 0 && fd_ != STDIN_FILENO) ::close(fd_);
}

std::size_t npy_row_reader::read_rows(std::size_t count, std::vector<std::byte>& out) {
    count = std::min(count, rows() - rows_read_);
    std::size_t bytes = count * row_bytes_, from_buffer = std::min(bytes, buffer_.size());
    out.assign(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(from_buffer));
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(from_buffer));
    // The buffer grows as the data arrives, 8 MiB at a time: a header whose shape lies about
    // a short file does not get its rows allocated.
    constexpr std::size_t step = std::size_t{8} << 20;
    std::size_t got = from_buffer;
    while (got < bytes) {
        out.resize(got + std::min(step, bytes - got));
        std::size_t wanted = out.size() - got, read = read_fully(fd_, out.data() + got, wanted, path_);
        got += read;
        if (read < wanted) break;
    }
    if (got < bytes)
        throw error_in(display_name(path_), fmt::format("truncated: the shape says {} rows, the data ends in row {}",
                                                        rows(), rows_read_ + got / std::max<std::size_t>(1, row_bytes_)));
    rows_read_ += count;
    return count;
}

std::size_t npy_row_reader::read_rows(std::size_t count, std::vector<float>& out) {
    thread_local std::vector<std::byte> raw;
    count = read_rows(count, raw);
    out.resize(count * (row_bytes_ / std::max<std::size_t>(1, dtype_size(type()))));
    convert_to_float(type(), raw.data(), out.size(), out.data());
    return count;
}

void concatenate_npy(const std::vector<std::string>& inputs, output_stream& out) {
    std::vector<std::unique_ptr<npy_row_reader>> readers;
    std::size_t rows = 0;
    for (const std::string& path : inputs) {
        readers.push_back(std::make_unique<npy_row_reader>(path));
        const npy_row_reader& first = *readers.front(), &next = *readers.back();
        auto row_shape = [](const npy_row_reader& r) { return std::vector(r.shape().begin() + 1, r.shape().end()); };
        if (next.type() != first.type() || row_shape(next) != row_shape(first))
            throw error_in(display_name(path),
                           fmt::format("holds {} rows of shape ({}), but {} holds {} rows of shape ({})",
                                       npy_descr(next.type()), fmt::join(row_shape(next), ", "),
                                       display_name(first.path()), npy_descr(first.type()),
                                       fmt::join(row_shape(first), ", ")));
        rows += next.rows();
    }
    if (readers.empty()) throw usage_error("nothing to concatenate");
    const npy_row_reader& first = *readers.front();
    npy_writer writer(out, first.type(), std::vector(first.shape().begin() + 1, first.shape().end()), rows);
    std::vector<std::byte> block;
    const std::size_t rows_per_block = std::max<std::size_t>(1, (std::size_t{8} << 20) / std::max<std::size_t>(1, first.row_bytes()));
    for (auto& reader : readers)
        while (std::size_t count = reader->read_rows(rows_per_block, block)) writer.write_rows(block.data(), count);
    writer.finish();
}

}  // namespace lowrank
