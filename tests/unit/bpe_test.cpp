#include "bpe/byte_level.hpp"
#include "bpe/id_streams.hpp"
#include "bpe/pretokenizer.hpp"
#include "bpe/tokenizer.hpp"
#include "bpe/trainer.hpp"
#include "bpe/utf8.hpp"
#include "bpe/vocabulary.hpp"
#include "core/error.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>
#include <map>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

std::vector<std::string> split_text(split_pattern pattern, std::string_view text) {
    pretokenizer splitter(pattern);
    split_scratch scratch;
    std::vector<std::string_view> pieces;
    splitter.split(text, pieces, scratch);
    return {pieces.begin(), pieces.end()};
}

// A vocabulary of the bytes a, b, c, d (byte-level characters are the bytes themselves) and
// the given merges, in priority order.
bpe_vocabulary small_vocabulary(const std::vector<std::pair<std::string, std::string>>& merges) {
    bpe_vocabulary vocabulary;
    for (const char* token : {"a", "b", "c", "d"}) vocabulary.add(token);
    for (const auto& [left, right] : merges) {
        std::uint32_t result = vocabulary.add(left + right);
        vocabulary.merges.push_back({*vocabulary.id_of(left), *vocabulary.id_of(right), result,
                                     static_cast<std::uint32_t>(vocabulary.merges.size())});
    }
    return vocabulary;
}

std::vector<std::string> encode_tokens(const bpe_tokenizer& tokenizer, std::string_view text) {
    bpe_encoder encoder(tokenizer);
    std::vector<std::uint32_t> ids;
    encoder.encode(text, ids);
    std::vector<std::string> tokens;
    for (std::uint32_t id : ids) tokens.push_back(tokenizer.vocabulary().tokens[id]);
    return tokens;
}

// The textbook algorithm, to check the encoder against: merge the lowest-priority pair,
// leftmost first, rescanning the whole word each time.
std::vector<std::string> naive_bpe(const bpe_vocabulary& vocabulary, std::string_view word) {
    std::vector<std::string> symbols;
    for (char c : word) symbols.emplace_back(1, c);
    std::map<std::pair<std::string, std::string>, std::uint32_t> priority;
    for (const auto& merge : vocabulary.merges)
        priority[{vocabulary.tokens[merge.left], vocabulary.tokens[merge.right]}] = merge.priority;
    for (;;) {
        std::size_t best = symbols.size();
        std::uint32_t best_priority = 0xFFFFFFFF;
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
            auto found = priority.find({symbols[i], symbols[i + 1]});
            if (found != priority.end() && found->second < best_priority) best = i, best_priority = found->second;
        }
        if (best == symbols.size()) return symbols;
        symbols[best] += symbols[best + 1];
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
}

}  // namespace

TEST_CASE("byte-level alphabet: GPT-2's bytes_to_unicode") {
    CHECK(byte_level_character(' ') == U'\u0120');
    CHECK(byte_level_character('\n') == U'\u010A');
    CHECK(byte_level_character(0x00) == U'\u0100');
    CHECK(byte_level_character(0x7F) == U'\u0121');
    CHECK(byte_level_character(0xAD) == U'\u0143');
    CHECK(byte_level_character('!') == U'!');
    CHECK(byte_level_rank('!') == 0);
    CHECK(byte_level_rank(0x00) == 188);
    CHECK(byte_level_rank(' ') == 220);
    CHECK(byte_level_rank(0xAD) == 255);
    for (int byte = 0; byte < 256; ++byte)
        CHECK(byte_level_byte(byte_level_character(static_cast<std::uint8_t>(byte))) == byte);
    CHECK(byte_level_byte(U'\u0144') == -1);
    CHECK(to_byte_level(" hi\n") == "\u0120hi\u010A");
    CHECK(from_byte_level("\u0120hi\u010A") == " hi\n");
    CHECK(!from_byte_level("h\u00ADi"));  // U+00AD is not a byte-level character (0xAD is U+0143)
}

TEST_CASE("UTF-8: sequences, overlongs, surrogates, truncation") {
    CHECK(utf8_sequence_length("a") == 1);
    CHECK(utf8_sequence_length("\xC3\xA9") == 2);
    CHECK(utf8_sequence_length("\xE4\xB8\xAD") == 3);
    CHECK(utf8_sequence_length("\xF0\x9F\x98\x80") == 4);
    CHECK(utf8_sequence_length("\xC0\x80") == 0);          // overlong
    CHECK(utf8_sequence_length("\xED\xA0\x80") == 0);      // surrogate
    CHECK(utf8_sequence_length("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
    CHECK(utf8_sequence_length("\xE4\xB8") == 0);          // truncated
    CHECK(utf8_sequence_length("\x80") == 0);
    CHECK(valid_utf8_prefix("abcdefghij\xC3\xA9k\xFFz") == 13);
    CHECK(invalid_utf8_prefix("\xFF\xFE\xC3\xA9") == 2);
    CHECK(is_utf8_text("a caf\xC3\xA9"));
    CHECK(is_utf8_text(""));
    CHECK_FALSE(is_utf8_text("caf\xE9"));
    CHECK_FALSE(is_utf8_text(std::string("a\0b", 3)));
}

TEST_CASE("pre-tokenizer: GPT-2's pattern") {
    CHECK(split_text(split_pattern::gpt2, "Hello world's  end!!\n\n") ==
          std::vector<std::string>{"Hello", " world", "'s", " ", " end", "!!", "\n\n"});
    CHECK(split_text(split_pattern::gpt2, "a1b 22  x\t y") ==
          std::vector<std::string>{"a", "1", "b", " 22", " ", " x", "\t", " y"});
    // A space followed by a letter unknown to Unicode 14 but known to tiktoken's tables.
    CHECK(split_text(split_pattern::gpt2, " \u1C89\u1C8A") == std::vector<std::string>{" \u1C89\u1C8A"});
    // U+180E is not a space (PCRE2's own \s would say it is).
    CHECK(split_text(split_pattern::gpt2, "a\u180E b") == std::vector<std::string>{"a", "\u180E", " b"});
    // Bytes that are not UTF-8 form pieces of their own.
    CHECK(split_text(split_pattern::gpt2, "ab\xFF\xFE cd") == std::vector<std::string>{"ab", "\xFF\xFE", " cd"});
}

TEST_CASE("pre-tokenizer: cl100k, clip and none") {
    CHECK(split_text(split_pattern::cl100k, "12345 I'LL go\n\n x") ==
          std::vector<std::string>{"123", "45", " I", "'LL", " go", "\n\n", " x"});
    CHECK(split_text(split_pattern::clip, "A  Photo of 2 CATS!!") ==
          std::vector<std::string>{"a", "photo", "of", "2", "cats", "!!"});
    // Hugging Face lower-cases İ to i and a combining dot, which is not a letter.
    CHECK(split_text(split_pattern::clip, "İ") == std::vector<std::string>{"i", "\u0307"});
    CHECK(split_text(split_pattern::clip, "e\u0301") == std::vector<std::string>{"\u00E9"});  // NFC
    CHECK(split_text(split_pattern::none, " any thing ") == std::vector<std::string>{" any thing "});
    CHECK(split_text(split_pattern::none, "").empty());
    CHECK(split_pattern_from_name("cl100k") == split_pattern::cl100k);
    CHECK(!split_pattern_from_name("gpt5"));
}

TEST_CASE("encoder: lowest priority first, leftmost among equals") {
    // Priorities: a b (0), b c (1), ab c (2), c d (3).
    bpe_tokenizer tokenizer(small_vocabulary({{"a", "b"}, {"b", "c"}, {"ab", "c"}, {"c", "d"}}), split_pattern::none);
    CHECK(encode_tokens(tokenizer, "abc") == std::vector<std::string>{"abc"});
    CHECK(encode_tokens(tokenizer, "bcd") == std::vector<std::string>{"bc", "d"});  // b c before c d
    CHECK(encode_tokens(tokenizer, "abab") == std::vector<std::string>{"ab", "ab"});
    CHECK(encode_tokens(tokenizer, "dcd") == std::vector<std::string>{"d", "cd"});
    CHECK(encode_tokens(tokenizer, "").empty());
}

TEST_CASE("encoder: long words (heap) give what short ones (arrays) and the textbook algorithm give") {
    bpe_vocabulary vocabulary =
        small_vocabulary({{"a", "a"}, {"b", "a"}, {"aa", "aa"}, {"a", "b"}, {"ba", "aa"}, {"c", "ab"}, {"aaaa", "aaaa"}, {"d", "c"}});
    bpe_tokenizer tokenizer(vocabulary, split_pattern::none);
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        std::string word;
        std::uint64_t state = seed;
        std::size_t length = 1 + seed * 37 % 400;
        for (std::size_t i = 0; i < length; ++i) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            word += "aabacd"[(state >> 33) % 6];
        }
        CHECK_MESSAGE(encode_tokens(tokenizer, word) == naive_bpe(vocabulary, word), word);
    }
}

TEST_CASE("encoder: sequences with markers, cut and padded; decoding") {
    bpe_vocabulary vocabulary = small_vocabulary({{"a", "b"}});
    std::uint32_t bos = vocabulary.add("<s>"), eos = vocabulary.add("</s>");
    find_special_tokens(vocabulary);
    bpe_tokenizer tokenizer(vocabulary, split_pattern::none);
    CHECK(tokenizer.special_id("</s>") == eos);
    CHECK(tokenizer.special_id("2") == 2u);
    CHECK(!tokenizer.special_id("99"));
    bpe_encoder encoder(tokenizer);
    bool truncated = false;
    CHECK(encoder.encode_sequence("abcd", {.bos = bos, .eos = eos, .context_length = 8, .pad_id = 0}, truncated) ==
          std::vector<std::int32_t>{5, 4, 2, 3, 6, 0, 0, 0});
    CHECK(!truncated);
    CHECK(encoder.encode_sequence("abcdabcd", {.bos = bos, .eos = eos, .context_length = 4}, truncated) ==
          std::vector<std::int32_t>{5, 4, 2, 6});
    CHECK(truncated);
    std::vector<std::uint32_t> ids;
    encoder.encode("ab</s>c", ids, true);
    CHECK(ids == std::vector<std::uint32_t>{4, eos, 2});
    std::string text;
    tokenizer.decode(ids, text);
    CHECK(text == "ab</s>c");
    text.clear();
    tokenizer.decode(ids, text, true);
    CHECK(text == "abc");
    std::vector<std::uint32_t> unknown{1, 99};
    CHECK_THROWS_WITH_AS(tokenizer.decode(unknown, text), "unknown id 99 (ids are 0 to 6)", error);
    CHECK_THROWS_AS(encoder.encode("abz", ids), error);  // no token for the byte 'z'
}

TEST_CASE("vocab.json and merges.txt: reading, and errors naming the file and line") {
    scratch_folder folder;
    write_file(folder.file("vocab.json"), R"({"a": 0, "b": 1, "ab": 2, "<|end|>": 3})");
    write_file(folder.file("merges.txt"), "#version: 0.2\na b\n\n");
    bpe_vocabulary vocabulary = read_vocab_json(folder.file("vocab.json"));
    read_merges_txt(folder.file("merges.txt"), vocabulary);
    find_special_tokens(vocabulary);
    REQUIRE(vocabulary.merges.size() == 1);
    CHECK(vocabulary.merges[0].result == 2);
    CHECK(vocabulary.special_tokens == std::vector<std::uint32_t>{3});

    auto merges_error = [&](const std::string& merges) {
        write_file(folder.file("bad.txt"), merges);
        bpe_vocabulary copy = read_vocab_json(folder.file("vocab.json"));
        try {
            read_merges_txt(folder.file("bad.txt"), copy);
        } catch (const error& failure) {
            return std::string(failure.what()).substr(folder.path().string().size() + 1);
        }
        return std::string("no error");
    };
    CHECK(merges_error("#version: 0.2\na b\na  b\n") == "bad.txt:3: malformed merge 'a  b': expected two tokens separated by one space");
    CHECK(merges_error("a\n") == "bad.txt:1: malformed merge 'a': expected two tokens separated by one space");
    CHECK(merges_error("a x\n") == "bad.txt:1: 'x' is not in the vocabulary");
    CHECK(merges_error("b a\n") == "bad.txt:1: the merge of 'b' and 'a' gives 'ba', which is not in the vocabulary");

    write_file(folder.file("twice.json"), R"({"a": 0, "b": 0})");
    CHECK_THROWS_WITH_AS(read_vocab_json(folder.file("twice.json")), doctest::Contains("id 0 is given to both 'a' and 'b'"), error);
    write_file(folder.file("string.json"), R"({"a": "0"})");
    CHECK_THROWS_WITH_AS(read_vocab_json(folder.file("string.json")), doctest::Contains("the value of token 'a' is not an id"), error);
    write_file(folder.file("list.json"), R"([1, 2])");
    CHECK_THROWS_WITH_AS(read_vocab_json(folder.file("list.json")), doctest::Contains("not a JSON object of token ids"), error);
    write_file(folder.file("broken.json"), "{\n\"a\": 0,\n\"b\" 1}");
    CHECK_THROWS_WITH_AS(read_vocab_json(folder.file("broken.json")), doctest::Contains("broken.json:3: not valid JSON"), error);
}

TEST_CASE("tokenizer.json and tiktoken rank files") {
    scratch_folder folder;
    write_file(folder.file("tokenizer.json"),
               R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]},
                   "added_tokens": [{"id": 3, "content": "<pad>", "special": true}]})");
    bpe_vocabulary from_json = read_tokenizer_json(folder.file("tokenizer.json"));
    CHECK(from_json.merges.size() == 1);
    CHECK(from_json.tokens[3] == "<pad>");
    CHECK(from_json.special_tokens == std::vector<std::uint32_t>{3});
    write_file(folder.file("word.json"), R"({"model": {"type": "WordPiece", "vocab": {}}})");
    CHECK_THROWS_WITH_AS(read_tokenizer_json(folder.file("word.json")), doctest::Contains("model.type is \"WordPiece\""), error);

    // a (YQ==) 0, b (Yg==) 1, ab (YWI=) 2, " a" (IGE=) 3.
    write_file(folder.file("ranks.tiktoken"), "YQ== 0\nYg== 1\nYWI= 2\nIGE= 3\n");
    bpe_vocabulary ranks = read_tiktoken_ranks(folder.file("ranks.tiktoken"));
    CHECK(ranks.tokens[3] == "\u0120a");
    REQUIRE(ranks.merges.size() == 1);
    CHECK(ranks.merges[0].left == 0);
    CHECK(ranks.merges[0].result == 2);
    write_file(folder.file("bad.tiktoken"), "YQ== 0\nYQ 1\n");
    CHECK_THROWS_WITH_AS(read_tiktoken_ranks(folder.file("bad.tiktoken")), doctest::Contains("bad.tiktoken:2: malformed line"), error);
}

TEST_CASE("trainer: Hugging Face's own example, worked by hand") {
    // From the tests of Hugging Face's BpeTrainer: with a minimum frequency of 2 the merges
    // are "r e", "a re" and "i s", the alphabet sorted by code point.
    word_counts words;
    for (auto [word, count] : std::vector<std::pair<std::string, int>>{
             {"roses", 1}, {"are", 2}, {"red", 1}, {"voilets", 1}, {"blue", 1}, {"BERT", 1}, {"is", 2},
             {"big", 1}, {"and", 1}, {"so", 1}, {"GPT-2", 1}})
        words.add(word, static_cast<std::uint64_t>(count));
    bpe_training_options options;
    options.min_frequency = 2;
    options.all_bytes = false;
    bpe_vocabulary vocabulary = train_bpe(words, options, nullptr, [](std::size_t) {});
    std::vector<std::string> expected{"-", "2", "B", "E", "G", "P", "R", "T", "a", "b", "d", "e", "g",
                                      "i", "l", "n", "o", "r", "s", "t", "u", "v", "re", "are", "is"};
    CHECK(vocabulary.tokens == expected);
    REQUIRE(vocabulary.merges.size() == 3);
    CHECK(vocabulary.merges[0].left == 17);
    CHECK(vocabulary.merges[0].right == 11);
    CHECK(vocabulary.merges[1].left == 8);
    CHECK(vocabulary.merges[1].right == 22);
    CHECK(vocabulary.merges[2].result == 24);
}

TEST_CASE("trainer: ties go to the smallest pair; counts are 64-bit") {
    // "ab" and "cd" occur equally often: (a, b) has the smaller ids and merges first.
    word_counts words;
    words.add("cd", 5'000'000'000ull);  // more than 32 bits can count
    words.add("ab", 5'000'000'000ull);
    words.add("xy", 4'999'999'999ull);
    bpe_training_options options;
    options.all_bytes = false;
    options.vocab_size = 8;
    bpe_vocabulary vocabulary = train_bpe(words, options, nullptr, [](std::size_t) {});
    REQUIRE(vocabulary.merges.size() == 2);
    CHECK(vocabulary.tokens[vocabulary.merges[0].result] == "ab");
    CHECK(vocabulary.tokens[vocabulary.merges[1].result] == "cd");
}

TEST_CASE("id_writer: text lines, an unterminated last line, several batches") {
    scratch_folder folder;
    {
        output_stream out(folder.file("ids.txt"), output_kind::text);
        id_writer writer(out, id_format::text);
        writer.write({{1, 2, 3}, {2}, false, 0});        // "1 2", then "3" goes on
        writer.write({{4, 5}, {1, 2}, true, 0});         // "3 4", then "5" without a newline
        writer.finish();
    }
    CHECK(read_file(folder.file("ids.txt")) == "1 2\n3 4\n5");

    // The same batches formatted on the threads that made them, joined by the writer; then
    // a second input whose first sequence is empty.
    std::vector<id_batch> batches{{{1, 2, 3}, {2}, false, 0}, {{4, 5}, {1, 2}, true, 0}, {{}, {0}, false, 0}, {{7}, {}, false, 0}, {{8}, {1}, false, 0}};
    {
        output_stream out(folder.file("formatted.txt"), output_kind::text);
        id_writer writer(out, id_format::text);
        for (auto& batch : batches) {
            format_ids_as_text(batch);
            writer.write(batch);
        }
        writer.finish();
        CHECK(writer.sequences() == 5);
    }
    CHECK(read_file(folder.file("formatted.txt")) == "1 2\n3 4\n5\n\n7 8\n");
}
