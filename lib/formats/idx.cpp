#include "formats/idx.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <limits>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace lowrank {
namespace {

gzFile as_gz(void* stream) { return static_cast<gzFile>(stream); }

// The dtype of an IDX type byte.
std::optional<dtype> idx_type(std::uint8_t code) {
    switch (code) {
    case 0x08: return dtype::u8;
    case 0x09: return dtype::i8;
    case 0x0B: return dtype::i16;
    case 0x0C: return dtype::i32;
    case 0x0D: return dtype::f32;
    case 0x0E: return dtype::f64;
    default: return std::nullopt;
    }
}

// Reads exactly `size` bytes, or says how many there were.
std::size_t read_fully(gzFile stream, void* into, std::size_t size, const std::string& path) {
    std::size_t done = 0;
    while (done < size) {
        unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30));
        int got = gzread(stream, static_cast<char*>(into) + done, chunk);
        if (got < 0) {
            int code = 0;
            const char* message = gzerror(stream, &code);
            throw error_in(path, code == Z_ERRNO ? system_message(errno)
                                                 : fmt::format("corrupt gzip data: {}", message));
        }
        if (got == 0) break;
        done += static_cast<std::size_t>(got);
    }
    return done;
}

std::uint32_t big_endian_u32(const unsigned char* bytes) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

}  // namespace

bool looks_like_idx(std::string_view path) {
    std::string name = std::filesystem::path(path).filename().string();
    auto ends_with = [&](std::string_view suffix) { return name.ends_with(suffix); };
    if (ends_with(".gz") || ends_with(".idx")) return true;
    for (std::size_t at = name.find("idx"); at != std::string::npos; at = name.find("idx", at + 1))
        if (at + 3 < name.size() && name[at + 3] >= '0' && name[at + 3] <= '9') return true;
    return false;
}

idx_reader::idx_reader(const std::string& path) : path_(path) {
    int fd = path == "-" ? ::dup(STDIN_FILENO) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error_in(path, system_message(errno));
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
        ::close(fd);
        throw error_in(path, "is a directory");
    }
    stream_ = gzdopen(fd, "rb");
    if (!stream_) {
        ::close(fd);
        throw error_in(path, "cannot open");
    }
    gzbuffer(as_gz(stream_), 1 << 17);
    try {
        read_header();
    } catch (...) {
        gzclose(as_gz(stream_));
        stream_ = nullptr;
        throw;
    }
}

void idx_reader::read_header() {
    unsigned char magic[4];
    std::size_t got = read_fully(as_gz(stream_), magic, 4, path_);
    if (got < 4) throw error_in(path_, "not an IDX file: shorter than its 4-byte magic");
    auto type = idx_type(magic[2]);
    if (magic[0] != 0 || magic[1] != 0 || !type || magic[3] == 0)
        throw error_in(path_, fmt::format("not an IDX file: magic {:02x} {:02x} {:02x} {:02x} (expected 00 00, a type "
                                          "byte 08 09 0b 0c 0d or 0e, and the number of dimensions)",
                                          magic[0], magic[1], magic[2], magic[3]));
    type_ = *type;
    std::vector<unsigned char> dimensions(4u * magic[3]);
    if (read_fully(as_gz(stream_), dimensions.data(), dimensions.size(), path_) < dimensions.size())
        throw error_in(path_, fmt::format("truncated header: {} dimensions announced", magic[3]));
    std::size_t elements = 1;
    for (std::size_t i = 0; i < magic[3]; ++i) {
        std::size_t size = big_endian_u32(&dimensions[4 * i]);
        shape_.push_back(size);
        if (i == 0) continue;
        if (size != 0 && elements > std::numeric_limits<std::size_t>::max() / 64 / size)
            throw error_in(path_, "dimensions too large");
        elements *= size;
    }
    record_elements_ = elements;
}

idx_reader::~idx_reader() {
    if (stream_) gzclose(as_gz(stream_));
}

void idx_reader::read_record(std::span<std::byte> into) {
    if (into.size() != record_bytes()) throw std::logic_error("idx_reader::read_record: wrong buffer size");
    if (records_read_ >= record_count())
        throw error_in(path_, fmt::format("record {}: past the last record ({})", records_read_, record_count()));
    std::size_t got = read_fully(as_gz(stream_), into.data(), into.size(), path_);
    if (got < into.size())
        throw error_in(path_, fmt::format("record {}: truncated: the file ends after {} of {} records",
                                          records_read_, records_read_, record_count()));
    ++records_read_;
}

std::vector<std::int64_t> read_idx_labels(const std::string& path) {
    idx_reader reader(path);
    if (reader.shape().size() != 1)
        throw error_in(path, fmt::format("labels must be one-dimensional, not {}-dimensional", reader.shape().size()));
    if (reader.type() == dtype::f32 || reader.type() == dtype::f64)
        throw error_in(path, "labels must be integers, not floating point");
    std::size_t size = dtype_size(reader.type());
    std::vector<std::byte> record(size);
    // Grown as records arrive, not sized from the header: a header may claim billions of
    // labels, and memory must follow the data that is really there.
    std::vector<std::int64_t> labels;
    labels.reserve(std::min<std::size_t>(reader.record_count(), std::size_t{1} << 20));
    for (std::size_t i = 0; i < reader.record_count(); ++i) {
        reader.read_record(record);
        std::int64_t value = 0;
        for (std::byte byte : record) value = (value << 8) | std::to_integer<std::int64_t>(byte);
        if (reader.type() != dtype::u8) {  // sign-extend the big-endian value
            int shift = 64 - 8 * static_cast<int>(size);
            value = static_cast<std::int64_t>(static_cast<std::uint64_t>(value) << shift) >> shift;
        }
        labels.push_back(value);
    }
    return labels;
}

}  // namespace lowrank
