// Trains a BPE tokenizer with Hugging Face tokenizers as `Tokenizer.train(files)` does: the
// model's default trainer (vocabulary 30,000, minimum frequency 0, alphabet from the
// corpus, no special tokens) and a ByteLevel pre-tokenizer without prefix space. Writes
// OUT/vocab.json and OUT/merges.txt as the Python binding's model.save(OUT) writes them.
//     node hf-train.js NODE_MODULES OUT FILE...
const path = require("path");
const fs = require("fs");
const [modules, out, ...files] = process.argv.slice(2);
const { Tokenizer, BPE, byteLevelPreTokenizer } = require(path.resolve(modules, "tokenizers"));

const tokenizer = new Tokenizer(BPE.empty());
tokenizer.setPreTokenizer(byteLevelPreTokenizer(false));
const start = process.hrtime.bigint();
tokenizer.train(files);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
if (process.env.HF_TRAIN_TIME) process.stderr.write(`hf-train: ${seconds.toFixed(3)} s\n`);

fs.mkdirSync(out, { recursive: true });
const json = path.join(out, "tokenizer.json");
tokenizer.save(json, false);
const model = JSON.parse(fs.readFileSync(json, "utf8")).model;
const vocab = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]);
fs.writeFileSync(path.join(out, "vocab.json"), "{" + vocab.map(([token, id]) => `${JSON.stringify(token)}:${id}`).join(",") + "}");
const merges = model.merges.map((merge) => (Array.isArray(merge) ? merge.join(" ") : merge));
fs.writeFileSync(path.join(out, "merges.txt"), "#version: 0.2\n" + merges.map((merge) => merge + "\n").join(""));
