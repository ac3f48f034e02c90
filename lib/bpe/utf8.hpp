// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing above U+10FFFF.
// Byte-level BPE takes any bytes, so the text it reads is split into stretches of valid
// UTF-8 (which the pre-tokenizer's regular expression sees) and runs of other bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lowrank {

// The length (1 to 4) of the valid UTF-8 sequence at the start of `text`, or 0 when the
// bytes there are not one (a stray continuation byte, a truncated or overlong sequence...).
std::size_t utf8_sequence_length(std::string_view text);

// How many bytes at the start of `text` are valid UTF-8 (whole sequences only).
std::size_t valid_utf8_prefix(std::string_view text);

// Whether `text` is valid UTF-8 without a NUL: what a line of captions or names can be (a
// NUL or a byte that is not UTF-8 there means a binary file given by mistake).
bool is_utf8_text(std::string_view text);

// How many bytes at the start of `text` are not the start of a valid sequence.
std::size_t invalid_utf8_prefix(std::string_view text);

// The code point of the valid sequence at the start of `text` (utf8_sequence_length > 0).
char32_t decode_utf8(std::string_view text, std::size_t length);

void append_utf8(std::string& out, char32_t code_point);

}  // namespace lowrank
