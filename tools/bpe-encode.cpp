// bpe-encode: text to token ids with a byte-level BPE tokenizer (GPT-2, Hugging Face,
// tiktoken files), the ids tiktoken and Hugging Face give, on all cores.
#include "bpe/id_streams.hpp"
#include "bpe/text_encoding.hpp"
#include "bpe/tokenizer_options.hpp"
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/threads.hpp"

#include <fmt/format.h>

using namespace lowrank;

namespace {

struct settings {
    tokenizer_options tokenizer;
    std::string format = "text", bos, eos, pad_id = "0";
    std::size_t pad_to = 0;
    bool document = false, allow_special = false;
};

std::optional<std::uint32_t> marker(const bpe_tokenizer& tokenizer, const std::string& given, const char* option) {
    if (given.empty()) return std::nullopt;
    auto id = tokenizer.special_id(given);
    if (!id) throw usage_error(fmt::format("--{} {}: neither a special token of the tokenizer nor an id it has", option, given));
    return id;
}

void encode(const command_line& cli, const settings& options, std::vector<std::string> files) {
    auto format = id_format_from_name(options.format);
    if (!format) throw usage_error(fmt::format("unknown format '{}' (formats: text, npy, u16, u32)", options.format));
    if (options.pad_to > max_row_length)
        throw usage_error(fmt::format("--pad-to {}: at most {} tokens", options.pad_to, max_row_length));
    bpe_tokenizer tokenizer = options.tokenizer.load();
    std::uint32_t pad_id = *marker(tokenizer, options.pad_id, "pad-id");
    if (*format == id_format::u16 && tokenizer.id_limit() > 0x10000)
        throw error_in(options.tokenizer.name(), fmt::format("ids go up to {}, beyond u16: use --format u32",
                                                             tokenizer.id_limit() - 1));
    text_encoding_options encoding{options.document, options.allow_special, marker(tokenizer, options.bos, "bos"),
                                   marker(tokenizer, options.eos, "eos"),
                                   *format == id_format::text && options.pad_to == 0};
    if (files.empty()) files.push_back("-");

    std::vector<bpe_encoder> encoders;
    for (int thread = 0; thread < thread_count(); ++thread) encoders.emplace_back(tokenizer);
    output_stream out(cli.common().output, *format == id_format::text ? output_kind::text : output_kind::binary);
    id_writer writer(out, *format, options.pad_to, pad_id);
    for (const auto& file : files) {
        input_text input(file);
        progress shown(fmt::format("encoding {}", display_name(file)), "bytes", input.text().size(), cli.common().quiet);
        encode_text(input.text(), file, encoding, encoders, [&](const id_batch& batch) {
            writer.write(batch);
            shown.advance(batch.input_bytes);
        });
    }
    writer.finish();
    if (writer.truncated() > 0)
        cli.warn(fmt::format("{} of {} sequences were longer than --pad-to {} and were cut", writer.truncated(),
                             writer.sequences(), options.pad_to));
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("bpe-encode", "[FILE]...",
                     "Encode text to token ids with a byte-level BPE tokenizer, exactly as tiktoken and Hugging Face "
                     "tokenizers do. Each input line is encoded on its own and gives one output line of "
                     "space-separated ids (the newline is not a token); with --document each input file is one text, "
                     "newlines included. Any bytes encode, valid UTF-8 or not. No FILE, or '-': standard input.",
                     output_option | threads_option);
    settings options;
    std::vector<std::string> files;
    options.tokenizer.add_to(cli);
    cli.options().add_options()
        ("document", flag(&options.document), "encode each input file as one text, newlines included")
        ("format", value(&options.format, "FORMAT")->default_value("text"),
         "output: text (ids per line), npy (int32), u16 or u32 (raw little-endian)")
        ("pad-to", value(&options.pad_to, "T")->default_value(0),
         "make every sequence T ids long: cut longer ones (keeping --eos) and pad shorter ones with --pad-id; "
         "npy gives an (N, T) array")
        ("pad-id", value(&options.pad_id, "TOKEN")->default_value("0"),
         "the token --pad-to pads with (a special token's name or an id)")
        ("bos", value(&options.bos, "TOKEN"), "start each sequence with this token (a special token's name or an id)")
        ("eos", value(&options.eos, "TOKEN"), "end each sequence with this token (a special token's name or an id)")
        ("allow-special", flag(&options.allow_special),
         "the names of special tokens (such as <|endoftext|>) in the text are those tokens; otherwise they are "
         "ordinary text");
    cli.operands(files, 0, static_cast<std::size_t>(-1));
    cli.epilog("Examples:\n"
               "  bpe-encode --tokenizer gpt2 notes.txt\n"
               "  bpe-encode --tokenizer gpt2 --document --eos '<|endoftext|>' --format u16 -o train.u16 *.txt\n"
               "  bpe-encode --tokenizer clip --pattern clip --bos '<|startoftext|>' --eos '<|endoftext|>' \\\n"
               "      --pad-to 77 --pad-id '<|endoftext|>' --format npy -o captions.npy captions.txt");
    return cli.run(argc, argv, [&] { encode(cli, options, files); });
}
