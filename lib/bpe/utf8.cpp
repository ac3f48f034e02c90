#include "bpe/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace lowrank {

std::size_t utf8_sequence_length(std::string_view text) {
    if (text.empty()) return 0;
    auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
    auto continuation = [&](std::size_t i) { return i < text.size() && (byte(i) & 0xC0) == 0x80; };
    std::uint8_t lead = byte(0);
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;  // a continuation byte, or an overlong two-byte form
    if (lead < 0xE0) return continuation(1) ? 2 : 0;
    if (lead < 0xF0) {
        if (!continuation(1) || !continuation(2)) return 0;
        if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
        if (lead == 0xED && byte(1) >= 0xA0) return 0;  // a surrogate
        return 3;
    }
    if (lead < 0xF5) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
        if (lead == 0xF0 && byte(1) < 0x90) return 0;   // overlong
        if (lead == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

std::size_t valid_utf8_prefix(std::string_view text) {
    std::size_t position = 0;
    while (position < text.size()) {
        // ASCII eight bytes at a time: most text is mostly ASCII.
        while (position + 8 <= text.size()) {
            std::uint64_t word;
            std::memcpy(&word, text.data() + position, 8);
            if (word & 0x8080808080808080ull) break;
            position += 8;
        }
        if (position >= text.size()) break;
        if (static_cast<std::uint8_t>(text[position]) < 0x80) {
            ++position;
            continue;
        }
        std::size_t length = utf8_sequence_length(text.substr(position));
        if (length == 0) break;
        position += length;
    }
    return position;
}

bool is_utf8_text(std::string_view text) {
    return valid_utf8_prefix(text) == text.size() && text.find('\0') == std::string_view::npos;
}

std::size_t invalid_utf8_prefix(std::string_view text) {
    std::size_t position = 0;
    while (position < text.size() && utf8_sequence_length(text.substr(position)) == 0) ++position;
    return position;
}

char32_t decode_utf8(std::string_view text, std::size_t length) {
    auto byte = [&](std::size_t i) { return static_cast<char32_t>(static_cast<std::uint8_t>(text[i])); };
    switch (length) {
    case 1: return byte(0);
    case 2: return (byte(0) & 0x1F) << 6 | (byte(1) & 0x3F);
    case 3: return (byte(0) & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
    default: return (byte(0) & 0x07) << 18 | (byte(1) & 0x3F) << 12 | (byte(2) & 0x3F) << 6 | (byte(3) & 0x3F);
    }
}

void append_utf8(std::string& out, char32_t code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | code_point >> 6);
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | code_point >> 12);
        out += static_cast<char>(0x80 | (code_point >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | code_point >> 18);
        out += static_cast<char>(0x80 | (code_point >> 12 & 0x3F));
        out += static_cast<char>(0x80 | (code_point >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

}  // namespace lowrank
