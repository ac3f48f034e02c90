// GPT-2's byte-level alphabet (bytes_to_unicode): each of the 256 bytes is written as one
// printable Unicode character, so that a token of any bytes is printable text in vocab.json
// and merges.txt. The 188 printable bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand for
// themselves (as code points); the 68 others, in increasing order, become U+0100...U+0143
// (space 0x20 is U+0120 'Ġ', newline 0x0A is U+010A 'Ċ'). In code-point order the 256
// characters are the 188 printable bytes, then the others: the order of GPT-2's ids 0-255.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowrank {

// The character that stands for a byte.
char32_t byte_level_character(std::uint8_t byte);

// The byte a character stands for, or -1 when it is not one of the 256.
int byte_level_byte(char32_t character);

// The rank of a byte in code-point order of its character (GPT-2's id of the byte's token).
int byte_level_rank(std::uint8_t byte);

// Appends the byte-level characters (UTF-8) of `bytes`.
void append_byte_level(std::string& out, std::string_view bytes);
std::string to_byte_level(std::string_view bytes);

// The bytes a byte-level string stands for; nothing when it holds another character or is
// not valid UTF-8.
std::optional<std::string> from_byte_level(std::string_view text);

}  // namespace lowrank
