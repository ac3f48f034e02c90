#include "bpe/pretokenizer.hpp"

#include "bpe/utf8.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>
#include <fmt/format.h>
#include <utf8proc.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace lowrank {
namespace {

struct code_point_range {
    char32_t first, last;
};
#include "bpe/unicode_tables.inc"

// The patterns as tiktoken and CLIP write them, with \p{L}, \p{N} and \s written $L, $N
// and $S inside character classes (see unicode_class), and possessive quantifiers where
// backtracking could not change the match (faster).
constexpr std::string_view gpt2_template =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?[$L]++| ?[$N]++| ?[^$S$L$N]++|[$S]+(?![^$S])|[$S]++)";
constexpr std::string_view cl100k_template =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n$L$N]?+[$L]++|[$N]{1,3}+| ?[^$S$L$N]++[\r\n]*+)"
    R"(|[$S]*[\r\n]+|[$S]+(?![^$S])|[$S]++)";
constexpr std::string_view clip_template =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[$L]++|[$N]|[^$S$L$N]++)";

std::string pcre2_unicode_version() {
    char version[32] = {};
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, version);
    return version;
}

void append_ranges(std::string& out, const code_point_range* begin, const code_point_range* end) {
    for (const auto* range = begin; range != end; ++range) {
        out += fmt::format("\\x{{{:X}}}", static_cast<std::uint32_t>(range->first));
        if (range->last != range->first) out += fmt::format("-\\x{{{:X}}}", static_cast<std::uint32_t>(range->last));
    }
}

// The inside of a character class holding exactly the characters of `table`. Spelled out
// range by range, a class of 140,000 letters makes PCRE2's JIT slow on non-ASCII text (it
// tests the ranges one by one), while its own \p{L} is a table lookup. So when PCRE2's
// Unicode tables are older than tiktoken's (they only lack characters assigned since),
// the class is PCRE2's property plus the characters it lacks, found by asking it.
std::string unicode_class(std::string_view property, const code_point_range* begin, const code_point_range* end) {
    std::string ranges;
    int major_version = std::atoi(pcre2_unicode_version().c_str());
    if (property.empty() || major_version == 0 || major_version > tiktoken_unicode_major_version) {
        append_ranges(ranges, begin, end);
        return ranges;
    }
    // Whole ranges are asked at once (nearly all are known); a range that is not, code
    // point by code point.
    std::string test = fmt::format("^\\p{{{}}}*+$", property);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* property_test = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(test.data()), test.size(), PCRE2_UTF,
                                              &error_code, &error_offset, nullptr);
    pcre2_match_data* match = pcre2_match_data_create(1, nullptr);
    auto known = [&](char32_t first, char32_t last) {
        std::string characters;
        for (char32_t code = first; code <= last; ++code) append_utf8(characters, code);
        return pcre2_match(property_test, reinterpret_cast<PCRE2_SPTR>(characters.data()), characters.size(), 0,
                           PCRE2_NO_UTF_CHECK, match, nullptr) >= 0;
    };
    std::vector<code_point_range> missing;
    for (const auto* range = begin; range != end; ++range) {
        if (known(range->first, range->last)) continue;
        for (char32_t code = range->first; code <= range->last; ++code) {
            if (known(code, code)) continue;
            if (!missing.empty() && missing.back().last + 1 == code) missing.back().last = code;
            else missing.push_back({code, code});
        }
    }
    pcre2_match_data_free(match);
    pcre2_code_free(property_test);
    ranges = fmt::format("\\p{{{}}}", property);
    append_ranges(ranges, missing.data(), missing.data() + missing.size());
    return ranges;
}

std::string expand(std::string_view pattern) {
    std::string letters = unicode_class("L", std::begin(letter_ranges), std::end(letter_ranges));
    std::string numbers = unicode_class("N", std::begin(number_ranges), std::end(number_ranges));
    std::string whitespace = unicode_class("", std::begin(whitespace_ranges), std::end(whitespace_ranges));
    std::string regex;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '$' && i + 1 < pattern.size()) {
            switch (pattern[++i]) {
            case 'L': regex += letters; break;
            case 'N': regex += numbers; break;
            default: regex += whitespace; break;
            }
        } else {
            regex += pattern[i];
        }
    }
    return regex;
}

}  // namespace

std::optional<split_pattern> split_pattern_from_name(std::string_view name) {
    for (auto pattern : {split_pattern::gpt2, split_pattern::cl100k, split_pattern::clip, split_pattern::none})
        if (split_pattern_name(pattern) == name) return pattern;
    return std::nullopt;
}

std::string_view split_pattern_name(split_pattern pattern) {
    switch (pattern) {
    case split_pattern::gpt2: return "gpt2";
    case split_pattern::cl100k: return "cl100k";
    case split_pattern::clip: return "clip";
    case split_pattern::none: return "none";
    }
    return "";
}

std::string split_pattern_regex(split_pattern pattern) {
    switch (pattern) {
    case split_pattern::gpt2: return expand(gpt2_template);
    case split_pattern::cl100k: return expand(cl100k_template);
    case split_pattern::clip: return expand(clip_template);
    case split_pattern::none: return "";
    }
    return "";
}

split_scratch::split_scratch() : match_data_(pcre2_match_data_create(1, nullptr)) {
    if (!match_data_) throw std::bad_alloc();
}

split_scratch::split_scratch(split_scratch&& other) noexcept
    : match_data_(other.match_data_), normalized_(std::move(other.normalized_)) {
    other.match_data_ = nullptr;
}

split_scratch::~split_scratch() {
    pcre2_match_data_free(match_data_);
}

pretokenizer::pretokenizer(split_pattern pattern) : pattern_(pattern) {
    std::string regex = split_pattern_regex(pattern);
    if (regex.empty()) return;
    std::uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
    if (pattern == split_pattern::clip) options |= PCRE2_CASELESS;
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), options, &error_code,
                          &error_offset, nullptr);
    if (!code_) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error_code, message, sizeof message);
        throw error(fmt::format("pattern {}: {} at offset {}", split_pattern_name(pattern),
                                reinterpret_cast<const char*>(message), error_offset));
    }
    // Without a JIT (an unusual PCRE2 build) pcre2_match does the same work, slower.
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

pretokenizer::~pretokenizer() {
    pcre2_code_free(code_);
}

pretokenizer::pretokenizer(pretokenizer&& other) noexcept
    : pattern_(other.pattern_), code_(other.code_), jit_(other.jit_) {
    other.code_ = nullptr;
}

pretokenizer& pretokenizer::operator=(pretokenizer&& other) noexcept {
    std::swap(pattern_, other.pattern_);
    std::swap(code_, other.code_);
    std::swap(jit_, other.jit_);
    return *this;
}

void pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces, split_scratch& scratch) const {
    if (text.empty()) return;
    if (pattern_ == split_pattern::none) {
        pieces.push_back(text);
        return;
    }
    if (pattern_ == split_pattern::clip) {
        scratch.normalized_.clear();
        normalize_clip_text(text, scratch.normalized_);
        text = scratch.normalized_;
    }
    while (!text.empty()) {
        std::size_t valid = valid_utf8_prefix(text);
        if (valid > 0) split_valid(text.substr(0, valid), pieces, scratch);
        text.remove_prefix(valid);
        std::size_t invalid = invalid_utf8_prefix(text);
        if (invalid > 0) pieces.push_back(text.substr(0, invalid));
        text.remove_prefix(invalid);
    }
}

// Pieces are the matches of the pattern, one after another. Text between two matches
// (only whitespace, under the clip pattern) is dropped.
void pretokenizer::split_valid(std::string_view text, std::vector<std::string_view>& pieces,
                               split_scratch& scratch) const {
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    PCRE2_SIZE position = 0;
    while (position < text.size()) {
        // The text was checked to be UTF-8, so PCRE2 need not check it again (which it
        // would do over the whole subject at each call: quadratic).
        int status = jit_ ? pcre2_jit_match(code_, subject, text.size(), position, 0, scratch.match_data_, nullptr)
                          : pcre2_match(code_, subject, text.size(), position, PCRE2_NO_UTF_CHECK,
                                        scratch.match_data_, nullptr);
        if (status == PCRE2_ERROR_NOMATCH) return;
        if (status < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(status, message, sizeof message);
            throw error(fmt::format("pre-tokenizer: {}", reinterpret_cast<const char*>(message)));
        }
        const PCRE2_SIZE* match = pcre2_get_ovector_pointer(scratch.match_data_);
        pieces.push_back(text.substr(match[0], match[1] - match[0]));
        position = match[1];
    }
}

namespace {

// Appends the lower case of a character, as Hugging Face's Lowercase normalizer gives it.
void append_lowercase(std::string& out, char32_t code) {
    if (code < 0x80) {
        out += static_cast<char>(code >= 'A' && code <= 'Z' ? code + 32 : code);
        return;
    }
    const auto* end = std::end(lowercase_table);
    const auto* found = std::lower_bound(std::begin(lowercase_table), end, code,
                                         [](const char32_t (&entry)[3], char32_t value) { return entry[0] < value; });
    if (found == end || (*found)[0] != code) {
        append_utf8(out, code);
        return;
    }
    append_utf8(out, (*found)[1]);
    if ((*found)[2] != 0) append_utf8(out, (*found)[2]);
}

}  // namespace

void normalize_clip_text(std::string_view text, std::string& out) {
    while (!text.empty()) {
        std::size_t valid = valid_utf8_prefix(text);
        if (valid > 0) {
            utf8proc_uint8_t* composed = nullptr;
            utf8proc_ssize_t length =
                utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(valid),
                             &composed, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
            if (length < 0) throw error(fmt::format("Unicode normalization: {}", utf8proc_errmsg(length)));
            std::string_view nfc(reinterpret_cast<const char*>(composed), static_cast<std::size_t>(length));
            while (!nfc.empty()) {
                std::size_t sequence = utf8_sequence_length(nfc);
                append_lowercase(out, decode_utf8(nfc, sequence));
                nfc.remove_prefix(sequence);
            }
            std::free(composed);
        }
        text.remove_prefix(valid);
        std::size_t invalid = invalid_utf8_prefix(text);
        out.append(text.substr(0, invalid));
        text.remove_prefix(invalid);
    }
}

}  // namespace lowrank
