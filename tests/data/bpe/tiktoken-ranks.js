// Writes a tiktoken rank file ("base64-token rank" per line) for one of the encodings the
// tiktoken npm package ships (gpt2, r50k_base, cl100k_base...):
//     node tiktoken-ranks.js NODE_MODULES ENCODING > ENCODING.tiktoken
// The package keeps the ranks as one string: a marker, the first rank, then the base64
// tokens in rank order.
const path = require("path");
const [modules, encoding] = process.argv.slice(2);
const data = require(path.resolve(modules, "tiktoken/encoders", encoding + ".json"));
const fields = data.bpe_ranks.split(" ");
const first = Number(fields[1]);
const lines = fields.slice(2).map((token, i) => `${token} ${first + i}\n`);
process.stdout.write(lines.join(""));
