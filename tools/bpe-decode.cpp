// bpe-decode: token ids back to the bytes they stand for, with the tokenizer that made them.
#include "bpe/id_streams.hpp"
#include "bpe/tokenizer_options.hpp"
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"

#include <fmt/format.h>

using namespace lowrank;

namespace {

struct settings {
    tokenizer_options tokenizer;
    std::string format = "text";
    std::string pad_id;
    bool document = false, skip_special = false;
};

// A text file of ids unless it starts as an .npy file does.
id_format sniff_format(const std::string& path) {
    if (path == "-") return id_format::text;
    input_text input(path);
    return input.text().starts_with("\x93NUMPY") ? id_format::npy : id_format::text;
}

void decode(const settings& options, const common_values& common, std::vector<std::string> files) {
    std::optional<id_format> format;
    if (options.format != "auto") {
        format = id_format_from_name(options.format);
        if (!format) throw usage_error(fmt::format("unknown format '{}' (formats: auto, text, npy, u16, u32)", options.format));
    }
    bpe_tokenizer tokenizer = options.tokenizer.load();
    std::optional<std::uint32_t> pad_id;
    if (!options.pad_id.empty()) {
        pad_id = tokenizer.special_id(options.pad_id);
        if (!pad_id)
            throw usage_error(fmt::format("--pad-id {}: neither a special token of the tokenizer nor an id it has", options.pad_id));
    }
    if (files.empty()) files.push_back("-");
    output_stream out(common.output, output_kind::text);
    std::string text;
    bool newline_owed = false;
    for (const auto& file : files) {
        id_format file_format = format ? *format : sniff_format(file);
        read_id_sequences(file, file_format, [&](std::span<const std::uint32_t> ids, const std::string& where,
                                                 bool unterminated) {
            if (newline_owed) text += '\n';
            newline_owed = false;
            if (pad_id)
                while (!ids.empty() && ids.back() == *pad_id) ids = ids.first(ids.size() - 1);
            try {
                tokenizer.decode(ids, text, options.skip_special);
            } catch (const error& failure) {
                throw error(fmt::format("{}: {}", where, failure.what()));
            }
            if (!options.document) {
                if (unterminated) newline_owed = true;
                else text += '\n';
            }
            if (text.size() > (1u << 20)) {
                out.write(text);
                text.clear();
            }
        });
    }
    out.write(text);
    out.commit();
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("bpe-decode", "[FILE]...",
                     "Decode token ids back to text with the byte-level BPE tokenizer that made them. Each line of "
                     "ids (or row of an .npy array) gives its text followed by a newline, so that bpe-encode | "
                     "bpe-decode gives back the input byte for byte; with --document nothing is added between "
                     "sequences. No FILE, or '-': standard input.",
                     output_option);
    settings options;
    std::vector<std::string> files;
    options.tokenizer.add_to(cli);
    cli.options().add_options()
        ("document", flag(&options.document), "add no newline after each sequence (undoes bpe-encode --document)")
        ("format", value(&options.format, "FORMAT")->default_value("auto"),
         "input: text (ids per line), npy, u16 or u32 (raw little-endian), or auto: npy when the file starts as "
         "one, else text")
        ("skip-special", flag(&options.skip_special), "leave out special tokens (such as <|endoftext|>)")
        ("pad-id", value(&options.pad_id, "TOKEN"),
         "drop this token (a special token's name or an id) from the end of each sequence, as padding");
    cli.operands(files, 0, static_cast<std::size_t>(-1));
    cli.epilog("Examples:\n"
               "  bpe-encode --tokenizer gpt2 notes.txt | bpe-decode --tokenizer gpt2\n"
               "  bpe-decode --tokenizer gpt2 --format u16 --document train.u16 | head");
    return cli.run(argc, argv, [&] { decode(options, cli.common(), files); });
}
