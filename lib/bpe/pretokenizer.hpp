// Pre-tokenization: the regular expression that cuts text into pieces before byte-pair
// encoding, so that no token spans two words. Patterns run through PCRE2 with its JIT.
//
//   gpt2    GPT-2's pattern (tiktoken r50k/gpt2): contractions, an optional space and a run
//           of letters, of digits or of other symbols, whitespace runs that leave their last
//           space to the next word.
//   cl100k  GPT-4's (tiktoken cl100k_base): case-insensitive contractions, numbers of at
//           most three digits, newlines kept apart.
//   clip    CLIP's: the text is put in Unicode normal form C and lower case; letter runs,
//           single digits, symbol runs; whitespace is dropped. Tokens end in "</w>".
//   none    no splitting: the whole text is one piece.
//
// \s, \p{L} and \p{N} are the characters tiktoken takes for whitespace, letters and
// numbers (Unicode's White_Space property, L and N categories in the Unicode version of
// tiktoken's tables), spelled out as ranges: the split does not change with the Unicode
// version of the installed PCRE2. Text that is not valid UTF-8 is split into
// stretches of valid UTF-8, which the pattern splits, and runs of other bytes, each one
// piece, so that any bytes encode and decode back.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace lowrank {

enum class split_pattern { gpt2, cl100k, clip, none };

std::optional<split_pattern> split_pattern_from_name(std::string_view name);
std::string_view split_pattern_name(split_pattern pattern);
// The regular expression of a pattern, in PCRE2 syntax (empty for none).
std::string split_pattern_regex(split_pattern pattern);

// What one thread needs to split text: PCRE2's match data and room for normalized text.
class split_scratch {
public:
    split_scratch();
    ~split_scratch();
    split_scratch(split_scratch&& other) noexcept;
    split_scratch(const split_scratch&) = delete;
    split_scratch& operator=(const split_scratch&) = delete;

private:
    friend class pretokenizer;
    pcre2_real_match_data_8* match_data_;
    std::string normalized_;
};

class pretokenizer {
public:
    explicit pretokenizer(split_pattern pattern);
    ~pretokenizer();
    pretokenizer(pretokenizer&& other) noexcept;
    pretokenizer& operator=(pretokenizer&& other) noexcept;
    pretokenizer(const pretokenizer&) = delete;
    pretokenizer& operator=(const pretokenizer&) = delete;

    split_pattern pattern() const { return pattern_; }

    // Appends the pieces of `text`, in order. They are views into `text`, or into `scratch`
    // when the pattern normalizes the text first (clip), valid until the scratch is used
    // again. Safe to call from several threads at once, each with its own scratch.
    void split(std::string_view text, std::vector<std::string_view>& pieces, split_scratch& scratch) const;

private:
    void split_valid(std::string_view text, std::vector<std::string_view>& pieces, split_scratch& scratch) const;

    split_pattern pattern_;
    pcre2_real_code_8* code_ = nullptr;
    bool jit_ = false;
};

// CLIP's text normalization as Hugging Face's CLIPTokenizerFast does it: Unicode normal
// form C, then each character in lower case. Bytes that are not UTF-8 pass unchanged.
void normalize_clip_text(std::string_view text, std::string& out);

}  // namespace lowrank
