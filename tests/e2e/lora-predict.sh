#!/bin/bash
# lora-predict end to end: every model and output form against PyTorch fixtures
# (tests/data/nn/make-fixtures.py), adapters in PEFT's layout, generation, determinism,
# and every error path.
source "$(dirname "$0")/lib.sh"
d=tests/data/nn
close() { tests/e2e/close-npy "$@"; }

# --- Each model, each output, against PyTorch (1e-4) -------------------------------------------
expect_success "gpt2 LM logits" lora-predict --model $d/gpt2-lm.safetensors --pad-id 0 -o "$work/lm.npy" $d/gpt2-lm.ids.npy
expect_success "gpt2 LM logits agree" close $d/gpt2-lm.logits.npy "$work/lm.npy"
expect_success "hub spelling, F16: agree to F16 rounding" lora-predict --model $d/gpt2-lm.hub-f16.safetensors --pad-id 0 -o "$work/lm-f16.npy" $d/gpt2-lm.ids.npy
expect_success "hub spelling, F16: close" close $d/gpt2-lm.logits.npy "$work/lm-f16.npy" 2e-2
expect_success "sharded checkpoint" lora-predict --model $d/gpt2-sharded --pad-id 0 -o "$work/lm-sharded.npy" $d/gpt2-lm.ids.npy
expect_same "sharded checkpoint: the same logits" "$work/lm.npy" "$work/lm-sharded.npy"
expect_output "gpt2 classifier: labels (the config's pad id)" $d/gpt2-classify.labels.tsv lora-predict --model $d/gpt2-classify.safetensors $d/gpt2-classify.ids.npy
expect_success "gpt2 classifier: logits" lora-predict --model $d/gpt2-classify.safetensors --format logits -o "$work/classify.npy" $d/gpt2-classify.ids.npy
expect_success "gpt2 classifier: logits agree" close $d/gpt2-classify.logits.npy "$work/classify.npy"
expect_success "gpt2 regression: scores" lora-predict --model $d/gpt2-regress.safetensors -o "$work/scores.tsv" $d/gpt2-regress.ids.npy
expect_success "gpt2 regression: scores agree" close $d/gpt2-regress.logits.npy "$work/scores.tsv"
expect_output "vit: labels by id2label" $d/vit.labels.tsv lora-predict --model $d/vit.safetensors $d/vit.patches.npy
expect_success "vit: logits" lora-predict --model $d/vit.safetensors --format logits -o "$work/vit.npy" $d/vit.patches.npy
expect_success "vit: logits agree" close $d/vit.logits.npy "$work/vit.npy"
expect_success "clip: text embeddings" lora-predict --model $d/clip.safetensors -o "$work/text.npy" $d/clip.ids.npy
expect_success "clip: text embeddings agree" close $d/clip.text-embeds.npy "$work/text.npy"
expect_success "clip: image embeddings" lora-predict --model $d/clip.safetensors -o "$work/image.npy" $d/clip.patches.npy
expect_success "clip: image embeddings agree" close $d/clip.image-embeds.npy "$work/image.npy"
sed 's/^\([0-9]*\)\t\([0-9]\)$/\1\tname\2/' $d/gpt2-classify.labels.tsv >"$work/named.tsv"
expect_output "--label-names" "$work/named.tsv" lora-predict --model $d/gpt2-classify.safetensors --label-names name0,name1,name2 $d/gpt2-classify.ids.npy
expect_output "input on standard input" $d/vit.labels.tsv bash -c "lora-predict --model $d/vit.safetensors - <$d/vit.patches.npy"

# --- PEFT adapters: LoRA on c_attn and attn.c_proj with an alpha_pattern, and on wte (which
# the tied LM head does not see); rsLoRA on c_fc with the score head in modules_to_save -----
expect_success "adapter on an LM" lora-predict --model $d/gpt2-lm.safetensors --adapter $d/adapter-lm --pad-id 0 -o "$work/adapter-lm.npy" $d/gpt2-lm.ids.npy
expect_success "adapter on an LM: agrees with PEFT's semantics" close $d/adapter-lm.logits.npy "$work/adapter-lm.npy"
expect_success "adapter on a classifier" lora-predict --model $d/gpt2-classify.safetensors --adapter $d/adapter-classify --format logits -o "$work/adapter-classify.npy" $d/gpt2-classify.ids.npy
expect_success "adapter on a classifier: agrees" close $d/adapter-classify.logits.npy "$work/adapter-classify.npy"

# --- Generation: greedy against PyTorch recomputing every step; sampling seeded ------------------
expect_output "greedy generation" $d/gpt2-lm.generated.txt lora-predict --model $d/gpt2-lm.safetensors --pad-id 0 --generate 5 $d/gpt2-lm.ids.npy
model-init --arch gpt2 --preset tiny --seed 3 -o "$work/tiny.safetensors"
lora-predict --model "$work/tiny.safetensors" --pad-id 0 --generate 12 --top-k 20 --temperature 2 --seed 4 --threads 1 $d/gpt2-lm.ids.npy >"$work/sampled"
expect_output "sampling: the same on 2 threads, in batches of 1" "$work/sampled" lora-predict --model "$work/tiny.safetensors" --pad-id 0 --generate 12 --top-k 20 --temperature 2 --seed 4 --threads 2 --batch-size 1 $d/gpt2-lm.ids.npy
lora-predict --model "$work/tiny.safetensors" --pad-id 0 --generate 12 --top-k 20 --temperature 2 --seed 5 $d/gpt2-lm.ids.npy >"$work/other-seed"
if cmp -s "$work/sampled" "$work/other-seed"; then fail "sampling: another seed, other tokens"; else pass; fi
if awk 'NF != (NR == 2 ? 19 : 22) { bad = 1 } END { exit bad }' "$work/sampled"; then pass; else fail "sampling: prompt + 12 tokens per row" "$(cat "$work/sampled")"; fi
expect_success "the same run twice" lora-predict --model $d/gpt2-lm.safetensors --pad-id 0 -o "$work/lm-again.npy" $d/gpt2-lm.ids.npy
expect_same "the same run twice: the same bytes" "$work/lm.npy" "$work/lm-again.npy"
expect_success "batches of 2" lora-predict --model $d/gpt2-lm.safetensors --pad-id 0 --batch-size 2 -o "$work/lm-batched.npy" $d/gpt2-lm.ids.npy
expect_success "batches of 2: the same logits (to rounding)" close "$work/lm.npy" "$work/lm-batched.npy" 1e-6

# --- Errors -----------------------------------------------------------------------------------
/usr/bin/python3 - "$work" <<'PY'
import json, os, struct, sys
import array
work = sys.argv[1]
def npy(name, descr, shape, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(os.path.join(work, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(array.array("i" if descr == "<i4" else "f", values).tobytes())
npy("big-id.npy", "<i4", (2, 3), [1, 2, 3, 4, 96, 5])
npy("long.npy", "<i4", (1, 17), [1] * 17)
npy("vector.npy", "<i4", (4,), [1, 2, 3, 4])
npy("patches.npy", "<f4", (1, 4, 48), [0.5] * 192)
npy("nan.npy", "<f4", (1, 16, 48), [float("nan")] * 768)
npy("empty.npy", "<i4", (0, 4), [])
PY
mkdir -p "$work/no-config" "$work/bad-adapter" "$work/dora" "$work/nan-adapter"
cp $d/adapter-lm/* "$work/nan-adapter/"
printf '\x00\x00\xc0\x7f' | dd of="$work/nan-adapter/adapter_model.safetensors" bs=1 seek=$(($(stat -c %s $d/adapter-lm/adapter_model.safetensors) - 4)) conv=notrunc 2>/dev/null
cp $d/adapter-lm/adapter_model.safetensors "$work/no-config/"
cp $d/adapter-classify/adapter_model.safetensors "$work/bad-adapter/"
cp $d/adapter-classify/adapter_config.json "$work/bad-adapter/"
cp $d/adapter-lm/adapter_model.safetensors "$work/dora/"
sed 's/"use_dora": false/"use_dora": true/' $d/adapter-lm/adapter_config.json >"$work/dora/adapter_config.json"
expect_failure "model missing" 1 "/absent.safetensors: No such file or directory" lora-predict --model "$work/absent.safetensors" -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "input missing" 1 "/absent.npy: No such file or directory" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" "$work/absent.npy"
expect_failure "input not .npy" 1 "gpt2-lm.safetensors: " lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" $d/gpt2-lm.safetensors
expect_failure "token id outside the vocabulary" 1 "/big-id.npy: token id 96 at row 1, position 1 is outside the vocabulary \(0..95\)" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" "$work/big-id.npy"
expect_failure "more tokens than positions" 1 "/long.npy: 17 tokens per row, but the model has 16 positions" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" "$work/long.npy"
expect_failure "ids not (N, T)" 1 "/vector.npy: token ids must be an array \(N, T\), not 1-dimensional" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" "$work/vector.npy"
expect_failure "no rows" 1 "/empty.npy: no rows" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" "$work/empty.npy"
expect_failure "patches of another size" 1 "/patches.npy: patches of shape \(4, 48\), the model takes \(16, 48\)" lora-predict --model $d/vit.safetensors -o "$work/out.npy" "$work/patches.npy"
expect_failure "patches with NaN" 1 "/nan.npy: patches hold a NaN" lora-predict --model $d/vit.safetensors -o "$work/out.npy" "$work/nan.npy"
expect_failure "ids for a vit" 1 "gpt2-lm.ids.npy: holds token ids; a vit model takes patches" lora-predict --model $d/vit.safetensors -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "patches for a gpt2" 1 "vit.patches.npy: holds patches; a gpt2 model takes token ids" lora-predict --model $d/gpt2-lm.safetensors -o "$work/out.npy" $d/vit.patches.npy
expect_failure "adapter without a config" 1 "/no-config: no adapter_config.json: not a PEFT adapter folder" lora-predict --model $d/gpt2-lm.safetensors --adapter "$work/no-config" -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "adapter for another model" 1 "adapter_model.safetensors: tensor 'base_model.model.score.weight' has shape \[3, 32\], the model's 'score.weight' is \[1, 32\]" lora-predict --model $d/gpt2-regress.safetensors --adapter "$work/bad-adapter" -o "$work/out.tsv" $d/gpt2-regress.ids.npy
expect_failure "adapter module the model lacks" 1 "adapter-classify: module 'transformer.h.0.mlp.c_fc': not a linear layer of the model" lora-predict --model $d/vit.safetensors --adapter $d/adapter-classify -o "$work/out.tsv" $d/vit.patches.npy
model-init -q --arch gpt2 --preset tiny --set n_embd=32 --set n_head=4 --set n_layer=2 --set n_positions=16 --set vocab_size=100 -o "$work/vocab-100.safetensors"
expect_failure "an embedding's LoRA for another vocabulary" 1 "adapter-lm: module 'transformer.wte': lora_embedding_A \[2, 96\] and lora_embedding_B \[32, 2\] do not fit an embedding of 100 entries of width 32" lora-predict --model "$work/vocab-100.safetensors" --adapter $d/adapter-lm -o "$work/out.npy" $d/gpt2-lm.ids.npy
mkdir -p "$work/position-lora"
cp $d/adapter-lm/adapter_config.json "$work/position-lora/"
sed 's/transformer\.wte\.lora_embedding/transformer.wpe.lora_embedding/g' $d/adapter-lm/adapter_model.safetensors >"$work/position-lora/adapter_model.safetensors"
expect_failure "LoRA on the position embedding" 1 "/position-lora: module 'transformer.wpe': not a token embedding of the model" lora-predict --model $d/gpt2-lm.safetensors --adapter "$work/position-lora" -o "$work/out.npy" $d/gpt2-lm.ids.npy
mkdir -p "$work/conv-lora"
cp $d/adapter-lm/adapter_config.json "$work/conv-lora/"
/usr/bin/python3 - $d/adapter-lm/adapter_model.safetensors "$work/conv-lora/adapter_model.safetensors" <<'PY'
import json, struct, sys
source, target = sys.argv[1:]
with open(source, "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    data = f.read()
module = "base_model.model.transformer.h.0.attn.c_attn"  # its pair, reshaped as Conv2d LoRA's
header[module + ".lora_A.weight"]["shape"] = [2, 8, 2, 2]
header[module + ".lora_B.weight"]["shape"] = [96, 2, 1, 1]
text = json.dumps(header).encode()
with open(target, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
PY
expect_failure "Conv2d LoRA" 1 "/conv-lora: module 'transformer.h.0.attn.c_attn': LoRA on a convolution is not applied \(merge it with lora-merge\)" lora-predict --model $d/gpt2-lm.safetensors --adapter "$work/conv-lora" -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "DoRA adapter" 1 "/dora: a DoRA adapter \(use_dora\)" lora-predict --model $d/gpt2-lm.safetensors --adapter "$work/dora" -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "adapter holding a NaN" 1 "nan-adapter/adapter_model.safetensors: tensor '.*' holds NaN at element" lora-predict --model $d/gpt2-lm.safetensors --adapter "$work/nan-adapter" -o "$work/out.npy" $d/gpt2-lm.ids.npy
expect_failure "prompt + new tokens over the positions" 1 "gpt2-lm.ids.npy: 10 prompt tokens and 7 new ones need 17 positions, the model has 16" lora-predict --model $d/gpt2-lm.safetensors --generate 7 -o "$work/out.txt" $d/gpt2-lm.ids.npy
expect_no_file "no output after an error" "$work/out.npy"
expect_no_file "no text output after an error" "$work/out.txt"
expect_failure "no --model" 2 "--model is required" lora-predict $d/gpt2-lm.ids.npy
expect_failure "no input" 2 "missing operand" lora-predict --model $d/gpt2-lm.safetensors
expect_failure "labels from an LM" 2 "--format labels: this gpt2 model writes logits" lora-predict --model $d/gpt2-lm.safetensors --format labels $d/gpt2-lm.ids.npy
expect_failure "embeddings from a classifier" 2 "--format embeddings: this gpt2 model writes labels or logits" lora-predict --model $d/gpt2-classify.safetensors --format embeddings $d/gpt2-classify.ids.npy
expect_failure "--label-names of the wrong length" 2 "--label-names gives 2 labels, the model has 3" lora-predict --model $d/gpt2-classify.safetensors --label-names a,b $d/gpt2-classify.ids.npy
expect_failure "--generate with a classifier" 2 "--generate needs a gpt2 language model" lora-predict --model $d/gpt2-classify.safetensors --generate 3 $d/gpt2-classify.ids.npy
expect_failure "--top-k without --generate" 2 "--top-k, --temperature and --stop-id go with --generate" lora-predict --model $d/gpt2-lm.safetensors --top-k 3 $d/gpt2-lm.ids.npy
expect_failure "--temperature 0" 2 "--temperature must be positive" lora-predict --model $d/gpt2-lm.safetensors --generate 2 --temperature 0 $d/gpt2-lm.ids.npy
expect_failure "--batch-size 0" 2 "--batch-size must be at least 1" lora-predict --model $d/gpt2-lm.safetensors --batch-size 0 $d/gpt2-lm.ids.npy

finish
