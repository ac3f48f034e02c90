#include "bpe/byte_level.hpp"

#include "bpe/utf8.hpp"

#include <array>

namespace lowrank {
namespace {

struct byte_level_tables {
    std::array<char32_t, 256> character{};
    std::array<int, 256> rank{};
    std::array<std::string, 256> utf8;

    byte_level_tables() {
        auto printable = [](int byte) {
            return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
        };
        int next_other = 0, printable_count = 0;
        for (int byte = 0; byte < 256; ++byte)
            if (printable(byte)) ++printable_count;
        int next_printable = 0;
        for (int byte = 0; byte < 256; ++byte) {
            if (printable(byte)) {
                character[byte] = static_cast<char32_t>(byte);
                rank[byte] = next_printable++;
            } else {
                character[byte] = static_cast<char32_t>(0x100 + next_other);
                rank[byte] = printable_count + next_other++;
            }
            append_utf8(utf8[byte], character[byte]);
        }
    }
};

const byte_level_tables& tables() {
    static const byte_level_tables instance;
    return instance;
}

}  // namespace

char32_t byte_level_character(std::uint8_t byte) {
    return tables().character[byte];
}

int byte_level_byte(char32_t character) {
    if (character < 0x100) {
        bool printable = (character >= 0x21 && character <= 0x7E) || (character >= 0xA1 && character <= 0xAC) ||
                         character >= 0xAE;
        return printable ? static_cast<int>(character) : -1;
    }
    if (character <= 0x143) {
        // The 68 non-printable bytes in increasing order: 0x00-0x20, 0x7F-0xA0, 0xAD.
        int index = static_cast<int>(character - 0x100);
        if (index <= 0x20) return index;
        if (index <= 0x20 + 34) return 0x7F + (index - 0x21);
        return 0xAD;
    }
    return -1;
}

int byte_level_rank(std::uint8_t byte) {
    return tables().rank[byte];
}

void append_byte_level(std::string& out, std::string_view bytes) {
    const auto& utf8 = tables().utf8;
    for (char byte : bytes) out += utf8[static_cast<std::uint8_t>(byte)];
}

std::string to_byte_level(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    append_byte_level(out, bytes);
    return out;
}

std::optional<std::string> from_byte_level(std::string_view text) {
    std::string bytes;
    bytes.reserve(text.size());
    while (!text.empty()) {
        std::size_t length = utf8_sequence_length(text);
        if (length == 0) return std::nullopt;
        int byte = byte_level_byte(decode_utf8(text, length));
        if (byte < 0) return std::nullopt;
        bytes += static_cast<char>(byte);
        text.remove_prefix(length);
    }
    return bytes;
}

}  // namespace lowrank
