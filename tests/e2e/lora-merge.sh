#!/bin/bash
# lora-merge end to end: merges against PyTorch's (fixtures and expectations made by
# tests/data/peft/make-fixtures.py; tests/data/peft/compare.py compares within one unit
# of the dtype and checks that every other tensor is the base's, byte for byte), sharded
# checkpoints, round trips, the plan, and every refusal.
source "$(dirname "$0")/lib.sh"
d=tests/data/peft
compare() { /usr/bin/python3 $d/compare.py "$@"; }
gpt2=$d/gpt2/model.safetensors

# --- Agreement with PyTorch ---------------------------------------------------------------
expect_success "GPT-2 Conv1D, rank_pattern, alpha_pattern" lora-merge $gpt2 $d/gpt2-lora -o "$work/lora.safetensors"
expect_success "  equals PyTorch's merge" compare "$work/lora.safetensors" $d/gpt2-lora.expected.safetensors --base $gpt2
expect_success "two adapters with weights, one rsLoRA" lora-merge $gpt2 $d/gpt2-lora:0.5 $d/gpt2-rslora:-1.5 -o "$work/two.safetensors"
expect_success "  equals PyTorch's merge" compare "$work/two.safetensors" $d/gpt2-two.expected.safetensors --base $gpt2
expect_warning "LoRA on a tied lm_head" "stores lm_head as Linear" lora-merge $gpt2 $d/gpt2-head -o "$work/head.safetensors"
expect_success "  gives lm_head.weight = wte + B A" compare "$work/head.safetensors" $d/gpt2-head.expected.safetensors --base $gpt2
grep -q '"config":"{.*\\"tie_word_embeddings\\": false' "$work/head.safetensors" && pass || fail "  the output's config unties the head"
expect_warning "LoRA on the token embedding of a tied LM" "adapter-lm: module 'transformer.wte': the LM head is tied to this embedding, so the merge changes the head too" lora-merge tests/data/nn/gpt2-lm.safetensors tests/data/nn/adapter-lm -o "$work/embedding.safetensors"
expect_success "BitFit biases replace the base's" lora-merge $gpt2 $d/gpt2-bitfit.safetensors -o "$work/bitfit.safetensors"
expect_success "  exactly" compare "$work/bitfit.safetensors" $d/gpt2-bitfit.expected.safetensors --units 0 --base $gpt2
expect_success "ViT: F16, vit. prefix, rsLoRA, modules_to_save" lora-merge $d/vit.safetensors $d/vit-lora -o "$work/vit.safetensors"
expect_success "  equals PyTorch's merge" compare "$work/vit.safetensors" $d/vit-lora.expected.safetensors --base $d/vit.safetensors
expect_success "CLIP: BF16 shards, lora_bias, embedding and Conv2d LoRA" lora-merge $d/clip-sharded $d/clip-lora $d/clip-embed:0.5 -o "$work/clip"
expect_success "  equals PyTorch's merge" compare "$work/clip" $d/clip-two.expected.safetensors --base $d/clip-sharded
for file in model-00001-of-00003.safetensors model-00002-of-00003.safetensors model-00003-of-00003.safetensors; do
    [ "$(stat -c %s "$work/clip/$file")" = "$(stat -c %s $d/clip-sharded/$file)" ] && pass || fail "  $file keeps its size"
done
expect_same "  the same index" "$work/clip/model.safetensors.index.json" $d/clip-sharded/model.safetensors.index.json
expect_same "  config.json copied" "$work/clip/config.json" $d/clip-sharded/config.json
expect_same "  tokenizer files copied" "$work/clip/tokenizer_config.json" $d/clip-sharded/tokenizer_config.json
expect_no_file "  stale pickled weights left behind" "$work/clip/pytorch_model.bin"

# --- Output forms, determinism ------------------------------------------------------------
expect_success "to standard output" bash -c "lora-merge $gpt2 $d/gpt2-lora >'$work/stdout.safetensors'"
expect_same "  the same bytes as -o" "$work/stdout.safetensors" "$work/lora.safetensors"
expect_success "again on one thread" lora-merge --threads 1 $d/clip-sharded $d/clip-lora $d/clip-embed:0.5 -o "$work/clip-again"
for file in "$work"/clip/*; do expect_same "  deterministic: $(basename "$file")" "$file" "$work/clip-again/$(basename "$file")"; done
expect_success "an existing checkpoint folder is replaced" lora-merge $d/clip-sharded $d/clip-lora -o "$work/clip"
lora-merge $d/clip-sharded $d/clip-lora -o "$work/clip-fresh"
diff -r -q "$work/clip" "$work/clip-fresh" >/dev/null && pass || fail "  by the new checkpoint as a whole"
lora-merge --verify $gpt2 $d/gpt2-lora -o "$work/verified.safetensors" >"$work/verify.out" 2>&1
grep -Eq '^verified: 6 changed tensors equal W0 \+ ΔW to within rounding \(largest difference [0-9.e-]+, in .*\), 24 unchanged tensors identical to the base.s$' "$work/verify.out" && pass ||
    fail "--verify reports what it checked" "$(cat "$work/verify.out")"
expect_same "  and writes the same output" "$work/verified.safetensors" "$work/lora.safetensors"

# --- Round trips: merge then unmerge gives the base within the dtype's rounding ------------
expect_success "unmerge an F32 merge" lora-merge --unmerge "$work/two.safetensors" $d/gpt2-lora:0.5 $d/gpt2-rslora:-1.5 -o "$work/back.safetensors"
expect_success "  the base again" compare "$work/back.safetensors" $gpt2 --via "$work/two.safetensors"
expect_success "unmerge a BF16 sharded merge" lora-merge --unmerge "$work/clip" $d/clip-lora -o "$work/clip-back"
expect_success "  the base again, to two roundings" compare "$work/clip-back" $d/clip-sharded --via "$work/clip"

# --- The plan -----------------------------------------------------------------------------
cat >"$work/expected" <<'EOF'
tensor	dtype	shape	update
h.0.attn.c_attn.weight	F32	16x48	lora:1
h.0.attn.c_proj.weight	F32	16x16	lora:1,lora:2
h.0.mlp.c_fc.weight	F32	16x64	lora:2
h.0.mlp.c_proj.weight	F32	64x16	lora:1
h.1.attn.c_attn.weight	F32	16x48	lora:1
h.1.attn.c_proj.weight	F32	16x16	lora:1,lora:2
h.1.mlp.c_fc.weight	F32	16x64	lora:2
h.1.mlp.c_proj.weight	F32	64x16	lora:1
EOF
expect_output "--dry-run lists the changes" "$work/expected" bash -c "lora-merge --dry-run -o '$work/none.safetensors' $gpt2 $d/gpt2-lora:0.5 $d/gpt2-rslora:-1.5 | cut -f 1,3,4,5"
expect_no_file "  and writes nothing" "$work/none.safetensors"
lora-merge --dry-run $d/clip-sharded $d/clip-embed >"$work/plan.tsv"
awk -F'\t' 'NR > 1 && !($6 > 0 && $7 > 0 && $8 > 0 && $8 <= $7) { bad = 1 } END { exit bad || NR != 3 }' "$work/plan.tsv" && pass ||
    fail "--dry-run norms: positive, max <= Frobenius" "$(cat "$work/plan.tsv")"
grep -q $'^lm_head.weight\tmodel.safetensors\tF32\t64x16\tuntied-from:wte.weight,lora:1\t' <(lora-merge -q --dry-run $gpt2 $d/gpt2-head) && pass ||
    fail "--dry-run shows the untied head"

# --- Adapters that do not fit: exit 1, one line naming each mismatch, no output ----------
cp -r $d/gpt2-lora "$work/r8" && sed -i 's/"r": 4/"r": 8/' "$work/r8/adapter_config.json"
cp -r $d/gpt2-lora "$work/pissa" && sed -i 's/"init_lora_weights": true/"init_lora_weights": "pissa"/' "$work/pissa/adapter_config.json"
cp -r $d/gpt2-lora "$work/dora" && sed -i 's/"use_dora": false/"use_dora": true/' "$work/dora/adapter_config.json"
cp -r $d/gpt2-lora "$work/ia3" && sed -i 's/"peft_type": "LORA"/"peft_type": "IA3"/' "$work/ia3/adapter_config.json"
cp -r $d/gpt2-lora "$work/broken" && echo '{"peft_type": ' >"$work/broken/adapter_config.json"
mkdir "$work/bin-only" && cp $d/gpt2-lora/adapter_config.json "$work/bin-only/" && echo x >"$work/bin-only/adapter_model.bin"
mkdir "$work/not-an-adapter"
head -c 300 $gpt2 >"$work/truncated.safetensors"
cp -r $d/clip-sharded "$work/shard-missing" && rm "$work/shard-missing/model-00002-of-00003.safetensors"
out=$work/out.safetensors
expect_failure "wrong rank" 1 "^lora-merge: 1 problem: .*/gpt2-wrong-rank: module 'transformer.h.0.attn.c_attn': wrong rank: lora_A has rank 4 but lora_B has rank 3$" lora-merge $gpt2 $d/gpt2-wrong-rank -o "$out"
expect_no_file "  no output" "$out"
expect_failure "rank other than the config's" 1 "4 problems: .*/r8: module 'transformer.h.0.attn.c_attn': wrong rank: lora_A has rank 4 but adapter_config.json gives r = 8 for it;" lora-merge $gpt2 "$work/r8" -o "$out"
expect_failure "missing base tensor" 1 "gpt2-missing: module 'transformer.h.7.attn.c_attn': the base tests/data/peft/gpt2/model.safetensors has no tensor for it$" lora-merge $gpt2 $d/gpt2-missing -o "$out"
expect_failure "shapes that do not fit" 1 "gpt2-wrong-shape: module 'transformer.h.0.attn.c_attn': B A is \[48, 20\] \(added transposed\), base tensor 'h.0.attn.c_attn.weight' in tests/data/peft/gpt2/model.safetensors is \[16, 48\]" lora-merge $gpt2 $d/gpt2-wrong-shape -o "$out"
expect_failure "wrong architecture" 1 "vit-lora: made for a vit model, but the base is a gpt2 model \(.*gpt2/config.json\); .*vit-lora: none of its 6 modules and tensors is in the base" lora-merge $gpt2 $d/vit-lora -o "$out"
expect_failure "every mismatch of every adapter, in one line" 1 "^lora-merge: 3 problems: .*gpt2-wrong-rank: .*; .*gpt2-missing: .*; .*gpt2-wrong-shape: " lora-merge $gpt2 $d/gpt2-wrong-rank $d/gpt2-missing $d/gpt2-wrong-shape -o "$out"
expect_no_file "  no output" "$out"
expect_failure "base-changing initialisation" 1 "init_lora_weights 'pissa' changed the base weights .*give --residual-base" lora-merge $gpt2 "$work/pissa" -o "$out"
expect_success "  accepted with --residual-base" lora-merge --residual-base $gpt2 "$work/pissa" -o "$out"
rm -f "$out"
expect_failure "DoRA" 1 "/dora: a DoRA adapter \(use_dora\): its weight-decomposed merge is not supported$" lora-merge $gpt2 "$work/dora" -o "$out"
expect_failure "not LoRA" 1 "/ia3/adapter_config.json: peft_type is 'IA3': only LoRA adapters" lora-merge $gpt2 "$work/ia3" -o "$out"
expect_failure "adapter-h adds modules" 1 "method 'adapter-h' adds modules to the model, which no change of the base weights can express; apply it with lora-predict instead" lora-merge $gpt2 $d/gpt2-adapter-h.safetensors -o "$out"
expect_failure "--unmerge of a replacement" 1 "gpt2-bitfit.safetensors: tensor 'transformer.h.0.[a-z_.]+.bias' \(and 10 more\) replaces a base tensor, which --unmerge cannot undo" lora-merge --unmerge $gpt2 $d/gpt2-bitfit.safetensors -o "$out"
expect_failure "malformed adapter_config.json" 1 "/broken/adapter_config.json: adapter_config.json is not valid JSON" lora-merge $gpt2 "$work/broken" -o "$out"
expect_failure "pickled adapter" 1 "/bin-only/adapter_model.bin: pickled PyTorch weights are not read" lora-merge $gpt2 "$work/bin-only" -o "$out"
expect_failure "a folder that is no adapter" 1 "/not-an-adapter: no adapter_config.json: not a PEFT adapter folder" lora-merge $gpt2 "$work/not-an-adapter" -o "$out"
expect_failure "a safetensors file that is no adapter" 1 "vit.safetensors: no \"lowrank_method\" in __metadata__" lora-merge $gpt2 $d/vit.safetensors -o "$out"
expect_failure "missing adapter" 1 "/absent: No such file or directory" lora-merge $gpt2 "$work/absent" -o "$out"
expect_failure "missing base" 1 "/absent.safetensors: No such file or directory" lora-merge "$work/absent.safetensors" $d/gpt2-lora -o "$out"
expect_failure "truncated base" 1 "truncated.safetensors: safetensors header length .* runs past the end of the file" lora-merge "$work/truncated.safetensors" $d/gpt2-lora -o "$out"
expect_failure "a shard missing" 1 "shard-missing/model.safetensors.index.json: shard 'model-00002-of-00003.safetensors' is missing" lora-merge "$work/shard-missing" $d/clip-lora -o "$work/clip-out"
expect_no_file "  no output" "$work/clip-out"
expect_failure "output is the base" 1 "is the base itself" lora-merge $gpt2 $d/gpt2-lora -o $gpt2
mkdir -p "$work/keep" && echo precious >"$work/keep/notes.txt"
expect_failure "an output folder that holds no checkpoint" 1 "/keep: exists and holds no checkpoint \(model.safetensors or model.safetensors.index.json\); not replacing it" lora-merge $d/clip-sharded $d/clip-lora -o "$work/keep"
[ "$(cat "$work/keep/notes.txt")" = precious ] && pass || fail "  the folder is left as it was"
expect_failure "a file base into a folder" 1 "/keep: is a directory" lora-merge $gpt2 $d/gpt2-lora -o "$work/keep"

# --- Usage errors: exit 2 -----------------------------------------------------------------
expect_failure "no adapter" 2 "too few operands" lora-merge $gpt2
expect_failure "weight not finite" 2 "adapter weight in '.*gpt2-lora:inf' is not a finite number" lora-merge $gpt2 $d/gpt2-lora:inf -o "$out"
expect_failure "--verify with --dry-run" 2 "--verify checks a written output; --dry-run writes none" lora-merge --verify --dry-run $gpt2 $d/gpt2-lora
expect_failure "--verify to standard output" 2 "--verify reads the output back: give -o FILE" bash -c "set -o pipefail; lora-merge --verify $gpt2 $d/gpt2-lora | cat"
expect_failure "a folder base to standard output" 2 "is a folder checkpoint: give -o FOLDER" bash -c "set -o pipefail; lora-merge $d/clip-sharded $d/clip-lora | cat"

# --- Killed at any moment: the target folder is the old one or the complete new one ----------
reference=$work/clip-again
mkdir -p "$work/killed"
survived=yes
for trial in $(seq 10); do
    rm -rf "$work/killed/out"
    [ $((trial % 2)) -eq 0 ] && cp -r "$work/clip" "$work/killed/out"
    lora-merge $d/clip-sharded $d/clip-lora $d/clip-embed:0.5 -o "$work/killed/out" &
    pid=$!
    sleep "0.00$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -e "$work/killed/out" ] && ! diff -r -q "$work/killed/out" "$reference" >/dev/null && ! diff -r -q "$work/killed/out" "$work/clip" >/dev/null; then
        survived="trial $trial: the output folder is neither the old one nor the new one"
        break
    fi
done
[ "$survived" = yes ] && pass || fail "killed at a random moment" "$survived"

finish
