#!/bin/bash
# report.sh OUT BIN "METHODS" "WEIGHT-TYPES" THREADS: writes the demo's report (Markdown) on
# standard output, and its plots under OUT/report/.
set -eu
out=$1 bin=$2 methods=$3 weight_types=$4 threads=$5
mkdir -p "$out/report"

count() { tail -n +2 "$1" | wc -l; }
# metric FILE NAME: a value of glue-eval's output, to 4 decimals.
metric() { awk -F'\t' -v name="$2" '$1 == name { printf "%.4f", $2 }' "$1"; }
# trainable RUN: the trainable parameters lora-train counted.
trainable() { sed -n 's/^trainable params: \([0-9,]*\) .*/\1/p' "$out/methods/$1/params.txt" | tr -d ,; }
# total RUN: all parameters of the model lora-train trained.
total() { sed -n 's/.*|| all params: \([0-9,]*\) .*/\1/p' "$out/methods/$1/params.txt" | tr -d ,; }
# field FILE NAME: a value of a two-column TSV (clip-embed --report, npy-difference).
field() { awk -F'\t' -v name="$2" '$1 == name { print $2 }' "$1"; }
# last_loss LOG: the mean training loss of the last 50 steps of a lora-train log.
last_loss() { tail -n 50 "$1" | awk -F'\t' '{ sum += $3 } END { printf "%.3f", sum / NR }'; }
# with_commas N: 1234567 as 1,234,567.
with_commas() { echo "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }
# awk's commas(N), as with_commas.
awk_commas='function commas(n,  s, r) { s = n ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r }
'
# wall_clock: the seconds from the start of the first timed command to the end of the last
# (each times file holds a duration and was written as its command ended).
wall_clock() {
    for file in "$out"/times/*; do echo "$(stat -c %Y "$file") $(cut -f2 "$file")"; done |
        awk 'NR == 1 || $1 - $2 < first { first = $1 - $2 } $1 > last { last = $1 } END { printf "%.0f", last - first }'
}
# npy_rows FILE: the first dimension of an .npy file's shape.
npy_rows() { head -c 128 "$1" | LC_ALL=C sed -n "s/.*'shape': (\([0-9]*\),.*/\1/p"; }
# vocabulary_size DIR: the tokens of a tokenizer's vocab.json.
vocabulary_size() { /usr/bin/python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$1/vocab.json"; }

# The results table, which the accuracy plot reads too.
{
    printf 'method\ttrainable\tdev_acc\tdev_mcc\ttest_acc\ttest_mcc\n'
    for run in $methods $weight_types; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$(trainable "$run")" \
            "$(metric "$out/methods/$run/dev.metrics" acc)" "$(metric "$out/methods/$run/dev.metrics" mcc)" \
            "$(metric "$out/methods/$run/test.metrics" acc)" "$(metric "$out/methods/$run/test.metrics" mcc)"
    done
} >"$out/report/results.tsv"
head -n "$(( $(echo $methods | wc -w) + 1 ))" "$out/report/results.tsv" >"$out/report/methods.tsv"

# A few test images through vit-patchify and back, for the patch grid.
rm -rf "$out/report/examples"
"$bin/vit-patchify" -q --unpatchify --preset none --crop 28 --mean 0.2860 --std 0.3530 --channels 1 --patch 7 \
    -o "$out/report/examples" "$out/clip/examples.npy"
gnuplot -e "out='$out'; methods='$(echo "$methods" | tr -s ' ')'" plots.gp

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
full=$(trainable full)

cat <<MD
# The LoRA and CLIP papers in miniature

Made by \`make demo\` on $(date -u +%Y-%m-%d): $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GiB,
threads per tool: $threads. Every step is seeded: a second run gives the same numbers.

Each stage's seconds are the sum of its commands' (several run at once, one thread each);
from the first command to the last, the run took $(wall_clock) seconds.

| stage | seconds |
| --- | ---: |
$(cat "$out"/times/* | awk -F'\t' '{ seconds[$1] += $2 }
    END { n = split("data pretrain methods merge latency clip", stages, " ")
          for (i = 1; i <= n; i++) { printf "| %s | %.0f |\n", stages[i], seconds[stages[i]]; total += seconds[stages[i]] }
          printf "| **total** | **%.0f** |\n", total }')

## 1. Data

A text classification task from Debian's \`fortunes\`: which category is a fortune from?
The categories' fortunes, split with a fixed seed into GLUE-style TSV files:

| split | examples |
| --- | ---: |
| train | $(count "$out/task/train.tsv") |
| dev | $(count "$out/task/dev.tsv") |
| test | $(count "$out/task/test.tsv") |

| label | training examples |
| --- | ---: |
$(tail -n +2 "$out/task/train.tsv" | cut -f2 | sort | uniq -c | awk '{ printf "| %s | %d |\n", $2, $1 }')

The pre-training corpus is every category's fortunes but the task's dev and test ones:
$(with_commas "$(wc -l <"$out/task/corpus.txt")") fortunes, $(with_commas $(( $(stat -c %s "$out/ids/corpus.u16") / 2 ))) tokens of a
byte-level BPE vocabulary of $(with_commas "$(vocabulary_size "$out/tokenizer")") tokens that \`bpe-train\` learnt from it.

## 2. Pre-training

A GPT-2 of $(with_commas "$(total full)") parameters pre-trained from scratch on the corpus with
\`lora-train --task lm --method full\`: final training loss $(last_loss "$out/pretrain/log.tsv")
(the mean of the last 50 steps).

![pre-training loss](report/pretrain.png)

## 3. Methods: the LoRA paper's comparison

Each method fine-tunes the same pre-trained model, with a new classification head, on the
training split; the weights of the best dev accuracy are kept, then \`lora-predict\` labels
dev and test, and \`glue-eval\` scores them. The head (4 classes) trains with every method.

| method | trainable parameters | % of full | dev acc | dev MCC | test acc | test MCC |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| majority class | 0 | 0 | $(metric "$out/methods/majority/dev.metrics" acc) | $(metric "$out/methods/majority/dev.metrics" mcc) | $(metric "$out/methods/majority/test.metrics" acc) | $(metric "$out/methods/majority/test.metrics" mcc) |
$(awk -F'\t' -v full="$full" -v methods="$methods" "$awk_commas"'BEGIN { split(methods, keep, " "); for (i in keep) wanted[keep[i]] = 1 }
    NR > 1 && ($1 in wanted) { printf "| %s | %s | %.2f%% | %s | %s | %s | %s |\n", $1, commas($2), 100 * $2 / full, $3, $4, $5, $6 }' \
    "$out/report/results.tsv")

$(awk -F'\t' 'function gap(name, text,  test, dev) {
        test = 100 * (accuracy[name] - accuracy["full"]); dev = 100 * (dev_accuracy[name] - dev_accuracy["full"])
        printf "- %s: %.2f%% of the parameters full fine-tuning trains; test accuracy %.1f points %s full fine-tuning'"'"'s, dev accuracy %.1f %s.\n",
            text, 100 * trainable[name] / trainable["full"], (test >= 0 ? test : -test), (test >= 0 ? "above" : "below"),
            (dev >= 0 ? dev : -dev), (dev >= 0 ? "above" : "below") }
    NR > 1 { trainable[$1] = $2; dev_accuracy[$1] = $3; accuracy[$1] = $5 }
    END { gap("lora-r8", "LoRA r = 8 on W_q and W_v")
          gap("lora-r4-wte", "LoRA r = 4 on W_q, W_v and the token embedding")
          gap("lora-r8-wte", "LoRA r = 8 on W_q, W_v and the token embedding") }' "$out/report/results.tsv")

On a model this small, pre-trained on this little text, full fine-tuning learns the task
largely in the token embeddings: the categories' words move apart there. LoRA on the
attention alone leaves them frozen, as every other method here does; LoRA on the token
embedding too (\`--targets q,v,wte\`, PEFT's LoRA on an embedding: x = W0[ids] + s·Aᵀ[ids]·Bᵀ)
closes most of the gap.

![accuracy against trainable parameters](report/accuracy.png)

![training loss](report/loss.png)

### Which weights to adapt (the paper's Table 5)

LoRA on one weight type of every attention layer at r = 8, on two at r = 4, on four at
r = 2: the same number of trainable parameters.

| weights | trainable parameters | dev acc | dev MCC | test acc | test MCC |
| --- | ---: | ---: | ---: | ---: | ---: |
$(awk -F'\t' -v types="$weight_types" "$awk_commas"'BEGIN { split(types, keep, " "); for (i in keep) wanted[keep[i]] = 1 }
    NR > 1 && ($1 in wanted) { name = substr($1, 6); gsub(/./, "&,", name)
        printf "| W_{%s} | %s | %s | %s | %s | %s |\n", substr(name, 1, length(name) - 1), commas($2), $3, $4, $5, $6 }' \
    "$out/report/results.tsv")

## 4. Merging

\`lora-merge\` folded the LoRA run of the best dev accuracy, $(cat "$out/merge/best"), into the model's
weights (W = W0 + (alpha/r)·B·A, checked with \`--verify\`). On the test rows, merged and unmerged:

| rows | labels that differ | largest logit difference |
| ---: | ---: | ---: |
$(tail -n 1 "$out/merge/agreement.tsv" | awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }')

## 5. Inference latency (the paper's Table 1)

\`lora-predict\` over $(with_commas "$(npy_rows "$out/ids/latency.npy")") training rows at each batch size: milliseconds per batch (the fastest of five runs),
and the overhead against merged LoRA, which costs what the model alone costs.

| batch | LoRA merged | LoRA unmerged | Adapter^H | Adapter^L |
| ---: | ---: | ---: | ---: | ---: |
$(tail -n +2 "$out/latency.tsv" | awk -F'\t' '{ printf "| %s | %.2f ms | %.2f ms (%s) | %.2f ms (%s) | %.2f ms (%s) |\n", $1, $2, $3, $4, $5, $6, $7, $8 }')

## 6. CLIP on Fashion-MNIST

A tiny CLIP (\`model-init --arch clip --preset tiny\`, 28x28 gray images in 7x7 patches)
trained with the InfoNCE loss on the $(with_commas "$(wc -l <"$out/clip/captions/train.captions.txt")") training images, each with a caption made
from its class name and a template ("$(head -n 1 "$out/clip/captions/templates.txt")"); then zero-shot classification
of the $(with_commas "$(wc -l <"$out/clip/captions/t10k.captions.txt")") test images among the 10 class names (\`clip-embed --zeroshot\`, every template
averaged), and a linear probe: a classifier trained on the image features alone
(\`model-init --arch vit --from\`, \`lora-train --method head\`).

![test images in patches](report/patches.png)

| | test acc | test MCC |
| --- | ---: | ---: |
| chance | 0.1000 | 0 |
| zero-shot, before training | $(metric "$out/clip/initial.zeroshot.metrics" acc) | $(metric "$out/clip/initial.zeroshot.metrics" mcc) |
| zero-shot | $(metric "$out/clip/model.zeroshot.metrics" acc) | $(metric "$out/clip/model.zeroshot.metrics" mcc) |
| linear probe | $(metric "$out/clip/probe.metrics" acc) | $(metric "$out/clip/probe.metrics" mcc) |

Alignment (the mean squared distance of an image's embedding to its caption's, lower is
better) and uniformity (log E exp(-2·d²) over pairs of embeddings, lower is better) on the
test set (\`clip-embed --report\`):

| | alignment | uniformity, images | uniformity, texts | cosine of pairs | cosine of non-pairs |
| --- | ---: | ---: | ---: | ---: | ---: |
$(for model in initial model; do
    f=$out/clip/$model.alignment.tsv
    printf '| %s | %.4f | %.4f | %.4f | %.4f | %.4f |\n' "$([ $model = initial ] && echo "before training" || echo trained)" \
        "$(field "$f" alignment)" "$(field "$f" uniformity_images)" "$(field "$f" uniformity_texts)" \
        "$(field "$f" positive_cosine)" "$(field "$f" negative_cosine)"
done)

![CLIP's training loss](report/clip.png)
MD
