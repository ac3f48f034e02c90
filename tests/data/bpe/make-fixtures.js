// Makes the golden ids the BPE tests compare with, from independent implementations:
// tiktoken (OpenAI's tokenizer) for GPT-2 and GPT-4's cl100k, Hugging Face tokenizers for
// a CLIP-style tokenizer. Run from the repository root after `make`:
//     node tests/data/bpe/make-fixtures.js "$(tests/data/bpe/npm-packages)"
//
// Inputs: texts.txt (a varied set of lines: prose, code, CJK, emoji, combining marks,
// whitespace runs, very long words) and document.txt. Outputs, one line of ids per input
// line (or per document):
//   gpt2-lines.ids, gpt2-document.ids, gpt2-allow-special.ids, cl100k-lines.ids
//   clip/merges.txt  CLIP-style merges learned by bin/bpe-train --pattern clip from texts.txt
//   clip/vocab.json  CLIP's layout: 256 bytes, the same with "</w>", merges, then
//                    <|startoftext|> and <|endoftext|>
//   clip/tokenizer.json  the same as Hugging Face's CLIPTokenizerFast builds it
//   clip-lines.ids   Hugging Face's ids for texts.txt with that tokenizer (with BOS and EOS)
const path = require("path");
const fs = require("fs");
const { execFileSync } = require("child_process");

const modules = process.argv[2];
const here = __dirname;
const { get_encoding } = require(path.resolve(modules, "tiktoken"));
const { Tokenizer } = require(path.resolve(modules, "tokenizers"));

const lines = fs.readFileSync(path.join(here, "texts.txt"), "utf8").split("\n");
lines.pop();  // the text ends with a newline
const document = fs.readFileSync(path.join(here, "document.txt"), "utf8");
const write = (name, rows) => fs.writeFileSync(path.join(here, name), rows.map((ids) => Array.from(ids).join(" ") + "\n").join(""));

const gpt2 = get_encoding("gpt2");
write("gpt2-lines.ids", lines.map((line) => gpt2.encode_ordinary(line)));
write("gpt2-document.ids", [gpt2.encode_ordinary(document)]);
write("gpt2-allow-special.ids", lines.map((line) => gpt2.encode(line, "all")));
const cl100k = get_encoding("cl100k_base");
write("cl100k-lines.ids", lines.map((line) => cl100k.encode_ordinary(line)));

// GPT-2's byte-level alphabet (bytes_to_unicode), in its order.
const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
const alphabet = [];
for (let b = 0; b < 256; ++b) if (printable(b)) alphabet.push(String.fromCodePoint(b));
for (let b = 0, n = 0; b < 256; ++b) if (!printable(b)) alphabet.push(String.fromCodePoint(256 + n++));

const clip = path.join(here, "clip");
fs.mkdirSync(clip, { recursive: true });
const learned = fs.mkdtempSync(path.join(require("os").tmpdir(), "clip-"));
execFileSync(path.resolve("bin/bpe-train"), ["-q", "--pattern", "clip", "--vocab-size", "1200", "-o", learned, path.join(here, "texts.txt")]);
const merges = fs.readFileSync(path.join(learned, "merges.txt"), "utf8").split("\n").filter((line) => line && !line.startsWith("#version"));
fs.rmSync(learned, { recursive: true });
fs.writeFileSync(path.join(clip, "merges.txt"), "#version: 0.2\n" + merges.map((m) => m + "\n").join(""));
const tokens = [...alphabet, ...alphabet.map((c) => c + "</w>"), ...merges.map((m) => m.replace(" ", ""))];
tokens.push("<|startoftext|>", "<|endoftext|>");
const vocab = Object.fromEntries(tokens.map((token, id) => [token, id]));
fs.writeFileSync(path.join(clip, "vocab.json"), JSON.stringify(vocab));
const [bos, eos] = [tokens.length - 2, tokens.length - 1];
const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const clipTokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(bos, "<|startoftext|>"), special(eos, "<|endoftext|>")],
  normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }] },
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: "Removed", invert: true },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  },
  post_processor: { type: "RobertaProcessing", sep: ["<|endoftext|>", eos], cls: ["<|startoftext|>", bos], trim_offsets: false, add_prefix_space: false },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: "<|endoftext|>", continuing_subword_prefix: "", end_of_word_suffix: "</w>", fuse_unk: false, byte_fallback: false, vocab, merges },
};
fs.writeFileSync(path.join(clip, "tokenizer.json"), JSON.stringify(clipTokenizer));
const hf = Tokenizer.fromString(JSON.stringify(clipTokenizer));
Promise.all(lines.map((line) => hf.encode(line))).then((encodings) => write("clip-lines.ids", encodings.map((e) => e.getIds())));
