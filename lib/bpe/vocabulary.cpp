#include "bpe/vocabulary.hpp"

#include "bpe/byte_level.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <functional>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace lowrank {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t max_id = max_vocabulary_size - 1;

// A token for messages: quoted, at most 40 characters.
std::string quote_token(std::string_view token) {
    if (token.size() > 40) return fmt::format("'{}...'", token.substr(0, 40));
    return fmt::format("'{}'", token);
}

std::size_t line_at(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

// nlohmann's message without its "[json.exception...] parse error at line 1, column 2: " prefix.
std::string parse_problem(const json::parse_error& failure) {
    std::string_view message = failure.what();
    std::size_t colon = message.find(": ");
    if (colon != std::string_view::npos) message.remove_prefix(colon + 2);
    return fmt::format("not valid JSON: {}", message);
}

void set_token(bpe_vocabulary& vocabulary, std::string token, std::uint64_t id, const std::string& path) {
    if (id > max_id) throw error_in(path, fmt::format("token {} has id {}, out of range (ids are below {})", quote_token(token), id, max_id + 1));
    if (vocabulary.tokens.size() <= id) vocabulary.tokens.resize(id + 1);
    if (!vocabulary.tokens[id].empty() && vocabulary.tokens[id] != token)
        throw error_in(path, fmt::format("id {} is given to both {} and {}", id, quote_token(vocabulary.tokens[id]), quote_token(token)));
    auto [place, inserted] = vocabulary.ids.emplace(token, static_cast<std::uint32_t>(id));
    if (!inserted && place->second != id)
        throw error_in(path, fmt::format("token {} is given two ids, {} and {}", quote_token(token), place->second, id));
    if (token.empty()) throw error_in(path, fmt::format("id {} is given to an empty token", id));
    vocabulary.tokens[id] = std::move(token);
}

// Reads vocab.json as it streams by, keeping the tokens in file order and catching what a
// JSON object would hide (a key given twice) or what is not an id.
class vocab_reader : public nlohmann::json_sax<json> {
public:
    vocab_reader(bpe_vocabulary& vocabulary, const std::string& path) : vocabulary_(vocabulary), path_(path) {}

    bool start_object(std::size_t) override { return ++depth_ == 1 || refuse("is not an id"); }
    bool end_object() override { return --depth_, true; }
    bool key(string_t& token) override { return key_ = token, true; }
    bool number_unsigned(number_unsigned_t id) override {
        if (depth_ != 1) return refuse("is not an id");
        set_token(vocabulary_, key_, id, path_);
        return true;
    }
    bool number_integer(number_integer_t id) override {
        if (id < 0) throw error_in(path_, fmt::format("token {} has id {}, out of range (ids are 0 or more)", quote_token(key_), id));
        return number_unsigned(static_cast<number_unsigned_t>(id));
    }
    bool number_float(number_float_t, const string_t&) override { return refuse("is not an integer id"); }
    bool null() override { return refuse("is not an id"); }
    bool boolean(bool) override { return refuse("is not an id"); }
    bool string(string_t&) override { return refuse("is not an id"); }
    bool binary(binary_t&) override { return refuse("is not an id"); }
    bool start_array(std::size_t) override { return refuse("is not an id"); }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& failure) override {
        throw error_at(path_, line_at(text_, position), parse_problem(static_cast<const json::parse_error&>(failure)));
    }
    void set_text(std::string_view text) { text_ = text; }

private:
    bool refuse(std::string_view what) {
        if (depth_ == 0) throw error_in(path_, "not a JSON object of token ids");
        throw error_in(path_, fmt::format("the value of token {} {}", quote_token(key_), what));
    }

    bpe_vocabulary& vocabulary_;
    const std::string& path_;
    std::string key_;
    std::string_view text_;
    int depth_ = 0;
};

json parse_json(std::string_view text, const std::string& path) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& failure) {
        throw error_at(path, line_at(text, failure.byte > 0 ? failure.byte - 1 : 0), parse_problem(failure));
    }
}

// Checks one merge and appends it. `where` places it in messages.
void add_merge(bpe_vocabulary& vocabulary, std::string_view left, std::string_view right, std::uint32_t priority,
               const std::function<error(std::string)>& problem) {
    auto left_id = vocabulary.id_of(left), right_id = vocabulary.id_of(right);
    if (!left_id) throw problem(fmt::format("{} is not in the vocabulary", quote_token(left)));
    if (!right_id) throw problem(fmt::format("{} is not in the vocabulary", quote_token(right)));
    std::string joined = std::string(left) + std::string(right);
    auto result = vocabulary.id_of(joined);
    if (!result) throw problem(fmt::format("the merge of {} and {} gives {}, which is not in the vocabulary", quote_token(left), quote_token(right), quote_token(joined)));
    vocabulary.merges.push_back({*left_id, *right_id, *result, priority});
}

std::optional<std::string> decode_base64(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        int quad[4];
        int padding = 0;
        for (int k = 0; k < 4; ++k) {
            char c = text[i + static_cast<std::size_t>(k)];
            if (c == '=' && i + 4 == text.size() && k >= 2) {
                quad[k] = 0;
                ++padding;
            } else if (padding > 0 || (quad[k] = value(c)) < 0) {
                return std::nullopt;
            }
        }
        std::uint32_t bits = static_cast<std::uint32_t>(quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3]);
        bytes += static_cast<char>(bits >> 16);
        if (padding < 2) bytes += static_cast<char>(bits >> 8 & 0xFF);
        if (padding < 1) bytes += static_cast<char>(bits & 0xFF);
    }
    return bytes;
}

}  // namespace

std::optional<std::uint32_t> bpe_vocabulary::id_of(std::string_view token) const {
    auto found = ids.find(std::string(token));
    if (found == ids.end()) return std::nullopt;
    return found->second;
}

std::uint32_t bpe_vocabulary::add(std::string_view token) {
    if (auto id = id_of(token)) return *id;
    auto id = static_cast<std::uint32_t>(tokens.size());
    tokens.emplace_back(token);
    ids.emplace(token, id);
    return id;
}

bpe_vocabulary read_vocab_json(const std::string& path) {
    input_text input(path);
    bpe_vocabulary vocabulary;
    vocab_reader reader(vocabulary, path);
    reader.set_text(input.text());
    json::sax_parse(input.text(), &reader);
    if (vocabulary.ids.empty()) throw error_in(path, "no tokens");
    return vocabulary;
}

void read_merges_txt(const std::string& path, bpe_vocabulary& vocabulary) {
    input_text input(path);
    line_cursor lines(input.text());
    std::string_view line;
    std::vector<std::string_view> parts;
    while (lines.next(line)) {
        if (line.empty() || (lines.line_number() == 1 && line.starts_with("#version"))) continue;
        split_into(line, ' ', parts);
        if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
            throw error_at(path, lines.line_number(),
                           fmt::format("malformed merge {}: expected two tokens separated by one space", quote_token(line)));
        add_merge(vocabulary, parts[0], parts[1], static_cast<std::uint32_t>(vocabulary.merges.size()),
                  [&](std::string what) { return error_at(path, lines.line_number(), what); });
    }
    find_special_tokens(vocabulary);
}

bpe_vocabulary read_tokenizer_json(const std::string& path) {
    input_text input(path);
    json root = parse_json(input.text(), path);
    auto problem = [&](std::string what) { return error_in(path, what); };
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
        throw problem("no \"model\" object: not a Hugging Face tokenizer.json");
    const json& model = root["model"];
    if (model.contains("type") && model["type"] != "BPE")
        throw problem(fmt::format("model.type is {}; only BPE models are read", model["type"].dump()));
    if (!model.contains("vocab") || !model["vocab"].is_object()) throw problem("no model.vocab object");
    if (!model.contains("merges") || !model["merges"].is_array()) throw problem("no model.merges array");
    if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string() &&
        !model["continuing_subword_prefix"].get<std::string>().empty())
        throw problem("model.continuing_subword_prefix is not supported");

    bpe_vocabulary vocabulary;
    if (model.contains("end_of_word_suffix") && model["end_of_word_suffix"].is_string())
        vocabulary.end_of_word_suffix = model["end_of_word_suffix"].get<std::string>();
    if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean())
        vocabulary.ignore_merges = model["ignore_merges"].get<bool>();
    for (const auto& [token, id] : model["vocab"].items()) {
        if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
            throw problem(fmt::format("model.vocab: the id of token {} is not a non-negative integer", quote_token(token)));
        set_token(vocabulary, token, id.get<std::uint64_t>(), path);
    }
    const json& merges = model["merges"];
    for (std::size_t i = 0; i < merges.size(); ++i) {
        const json& merge = merges[i];
        auto at = [&](std::string what) { return problem(fmt::format("model.merges[{}]: {}", i, what)); };
        std::string left, right;
        if (merge.is_string()) {
            auto parts = split(merge.get_ref<const std::string&>(), ' ');
            if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
                throw at(fmt::format("malformed merge {}: expected two tokens separated by one space", merge.dump()));
            left = parts[0];
            right = parts[1];
        } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
            left = merge[0].get<std::string>();
            right = merge[1].get<std::string>();
        } else {
            throw at(fmt::format("malformed merge {}: expected \"left right\" or [\"left\", \"right\"]", merge.dump()));
        }
        add_merge(vocabulary, left, right, static_cast<std::uint32_t>(i), at);
    }
    if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
        for (const json& added : root["added_tokens"]) {
            if (!added.is_object() || !added.contains("id") || !added["id"].is_number_unsigned() ||
                !added.contains("content") || !added["content"].is_string())
                throw problem(fmt::format("added_tokens: malformed entry {}", added.dump()));
            std::string content = added["content"].get<std::string>();
            auto id = added["id"].get<std::uint64_t>();
            set_token(vocabulary, content, id, path);
            if (std::find(vocabulary.special_tokens.begin(), vocabulary.special_tokens.end(), id) ==
                vocabulary.special_tokens.end())
                vocabulary.special_tokens.push_back(static_cast<std::uint32_t>(id));
        }
    }
    if (vocabulary.ids.empty()) throw problem("no tokens in model.vocab");
    return vocabulary;
}

bpe_vocabulary read_tiktoken_ranks(const std::string& path) {
    input_text input(path);
    line_cursor lines(input.text());
    std::string_view line;
    bpe_vocabulary vocabulary;
    std::unordered_map<std::string, std::uint32_t> id_by_bytes;
    std::vector<std::string> bytes_by_id;
    while (lines.next(line)) {
        if (line.empty()) continue;
        std::size_t space = line.find(' ');
        auto rank = space == std::string_view::npos ? std::nullopt : parse_integer(line.substr(space + 1));
        auto bytes = space == std::string_view::npos ? std::nullopt : decode_base64(line.substr(0, space));
        if (!rank || !bytes || *rank < 0)
            throw error_at(path, lines.line_number(), fmt::format("malformed line {}: expected 'base64-token rank'", quote_token(line)));
        try {
            set_token(vocabulary, to_byte_level(*bytes), static_cast<std::uint64_t>(*rank), path);
        } catch (const error& failure) {
            // The same problem, placed on its line.
            std::string_view what = failure.what();
            throw error_at(path, lines.line_number(), what.substr(what.find(": ") + 2));
        }
        id_by_bytes.emplace(*bytes, static_cast<std::uint32_t>(*rank));
        if (bytes_by_id.size() <= static_cast<std::size_t>(*rank)) bytes_by_id.resize(static_cast<std::size_t>(*rank) + 1);
        bytes_by_id[static_cast<std::size_t>(*rank)] = std::move(*bytes);
    }
    if (vocabulary.ids.empty()) throw error_in(path, "no tokens");
    // Every way to cut a token in two tokens is a merge into it, at the token's rank.
    for (std::uint32_t id = 0; id < bytes_by_id.size(); ++id) {
        const std::string& bytes = bytes_by_id[id];
        for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
            auto left = id_by_bytes.find(bytes.substr(0, cut));
            if (left == id_by_bytes.end()) continue;
            auto right = id_by_bytes.find(bytes.substr(cut));
            if (right == id_by_bytes.end()) continue;
            vocabulary.merges.push_back({left->second, right->second, id, id});
        }
    }
    // tiktoken takes a piece that is a token as that token before any merging.
    vocabulary.ignore_merges = true;
    return vocabulary;
}

void find_special_tokens(bpe_vocabulary& vocabulary) {
    std::vector<bool> made(vocabulary.tokens.size(), false);
    for (const auto& merge : vocabulary.merges) made[merge.result] = true;
    std::string_view suffix = vocabulary.end_of_word_suffix;
    for (std::uint32_t id = 0; id < vocabulary.tokens.size(); ++id) {
        std::string_view token = vocabulary.tokens[id];
        if (token.empty() || made[id]) continue;
        if (!suffix.empty() && token.size() > suffix.size() && token.ends_with(suffix)) token.remove_suffix(suffix.size());
        auto bytes = from_byte_level(token);
        if (bytes && bytes->size() == 1) continue;
        if (std::find(vocabulary.special_tokens.begin(), vocabulary.special_tokens.end(), id) == vocabulary.special_tokens.end())
            vocabulary.special_tokens.push_back(id);
    }
}

void write_vocab_json(output_stream& out, const std::vector<std::string>& tokens) {
    std::string text = "{";
    bool first = true;
    for (std::size_t id = 0; id < tokens.size(); ++id) {
        if (tokens[id].empty()) continue;
        if (!first) text += ',';
        first = false;
        text += '"';
        for (char c : tokens[id]) {
            switch (c) {
            case '"': text += "\\\""; break;
            case '\\': text += "\\\\"; break;
            case '\n': text += "\\n"; break;
            case '\r': text += "\\r"; break;
            case '\t': text += "\\t"; break;
            case '\b': text += "\\b"; break;
            case '\f': text += "\\f"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) text += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                else text += c;
            }
        }
        text += fmt::format("\":{}", id);
    }
    text += '}';
    out.write(text);
}

void write_merges_txt(output_stream& out, const std::vector<std::pair<std::string_view, std::string_view>>& merges) {
    std::string text = "#version: 0.2\n";
    for (const auto& [left, right] : merges) {
        text += left;
        text += ' ';
        text += right;
        text += '\n';
    }
    out.write(text);
}

}  // namespace lowrank
