#!/bin/bash
# lora-train end to end: 20 steps of LoRA against PyTorch's (tests/data/train/make-fixtures.py),
# losses going down on fortunes text, B = 0 leaving the base's first loss, merged and
# unmerged predictions, parameter counts, outputs, resuming after SIGKILL, determinism,
# NaN stops, and every bad input.
source "$(dirname "$0")/lib.sh"
n=tests/data/nn
t=tests/data/train
tiny=$n/gpt2-lm.safetensors  # vocabulary 96, 16 positions, width 32, 2 layers
loss_column() { awk -F'\t' 'NR > 1 { print $3 }' "$1"; }
first_loss() { awk -F'\t' 'NR == 2 { print $3 }' "$1"; }
# The mean loss of a log's first and last N steps: "first last".
loss_ends() { awk -F'\t' -v n="$2" 'NR > 1 { loss[NR - 1] = $3; count = NR - 1 }
    END { for (i = 1; i <= n; i++) { a += loss[i]; b += loss[count - n + i] } printf "%f %f\n", a / n, b / n }' "$1"; }
dev_metrics() { awk -F'\t' 'NR > 1 && $6 != "" { print $6 }' "$1"; }

# --- 20 steps agree with PyTorch's (same windows, same A, AdamW, warm-up, decay, clipping,
# two micro-batches a step) ----------------------------------------------------------------
expect_success "20 steps of LoRA" lora-train -q --model $tiny --seed 7 --rank 4 --alpha 8 --lr 5e-3 --warmup 3 --steps 20 --batch-size 2 --accumulate 2 --context 15 --log "$work/steps.tsv" -o "$work/steps" $t/lm.u16
worst=$(paste <(loss_column "$work/steps.tsv") <(awk 'NR > 1 { print $2 }' $t/lora-steps.tsv) |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > worst) worst = d } END { print worst + 0 }')
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-4) }' && [ "$(loss_column "$work/steps.tsv" | wc -l)" = 20 ] && pass ||
    fail "  every step's loss within 1e-4 of PyTorch's" "largest difference $worst"

# --- Fortunes text: a BPE tokenizer, a tiny GPT-2, then pre-training and LoRA --------------
cat /usr/share/games/fortunes/computers /usr/share/games/fortunes/science >"$work/corpus.txt"
bpe-train -q --vocab-size 1024 --special-tokens '<|endoftext|>' -o "$work/tokenizer" "$work/corpus.txt"
bpe-encode -q --tokenizer "$work/tokenizer" --document --format u16 -o "$work/train.u16" "$work/corpus.txt"
bpe-encode -q --tokenizer "$work/tokenizer" --document --format u16 -o "$work/people.u16" /usr/share/games/fortunes/people
head -c 16000 "$work/people.u16" >"$work/people-dev.u16"
tail -c +16001 "$work/people.u16" >"$work/people-train.u16"
model-init --arch gpt2 --preset tiny --seed 1 -o "$work/tiny.safetensors"
expect_success "full fine-tuning" lora-train -q --model "$work/tiny.safetensors" --method full --steps 80 --lr 3e-3 --warmup 10 --batch-size 8 --context 64 --log "$work/full.tsv" -o "$work/full.safetensors" "$work/train.u16"
read -r start end < <(loss_ends "$work/full.tsv" 5)
awk -v a="$start" -v b="$end" 'BEGIN { exit !(b < a - 1) }' && pass || fail "  the loss goes down by more than 1" "from $start to $end"
expect_success "the trained tensors merged into the base" lora-merge "$work/tiny.safetensors" "$work/full.safetensors" -o "$work/base.safetensors"
expect_success "LoRA on the pre-trained base, dev data" lora-train -q --model "$work/base.safetensors" --targets q,v,o,fc1,fc2 --steps 40 --lr 1e-2 --context 64 --dev "$work/people-dev.u16" --eval-every 10 --log "$work/lora.tsv" -o "$work/lora" "$work/people-train.u16"
read -r first last < <(dev_metrics "$work/lora.tsv" | sed -n '1p;$p' | tr '\n' ' ')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && pass || fail "  the dev loss goes down" "from $first to $last"
[ "$(dev_metrics "$work/lora.tsv" | wc -l)" = 4 ] && pass || fail "  evaluated every 10 steps"

# --- With B = 0 (and up-projections 0) the first loss is the base's ------------------------
for method in lora adapter-h adapter-l bitfit; do
    lora-train -q --model "$work/base.safetensors" --method $method --steps 1 --context 64 --log "$work/first-$method.tsv" -o "$work/first-$method" "$work/people-train.u16"
done
reference=$(first_loss "$work/first-bitfit.tsv")
for method in lora adapter-h adapter-l; do
    [ "$(first_loss "$work/first-$method.tsv")" = "$reference" ] && pass || fail "$method: the first loss is the base's" "$(first_loss "$work/first-$method.tsv") against $reference"
done

# --- Merged (lora-merge) and unmerged (lora-predict) give the same predictions ------------
/usr/bin/python3 -c "
import numpy as np, sys
ids = np.fromfile(sys.argv[1], dtype='<u2')[:128].astype(np.int32).reshape(4, 32)
np.save(sys.argv[2], ids)" "$work/people-dev.u16" "$work/ids.npy"
expect_success "LoRA, unmerged" lora-predict --model "$work/base.safetensors" --adapter "$work/lora" -o "$work/unmerged.npy" "$work/ids.npy"
expect_success "LoRA, merged" lora-merge "$work/base.safetensors" "$work/lora" -o "$work/merged.safetensors"
expect_success "  predicts" lora-predict --model "$work/merged.safetensors" -o "$work/merged.npy" "$work/ids.npy"
expect_success "  the same logits to 1e-5" tests/e2e/close-npy "$work/unmerged.npy" "$work/merged.npy" 1e-5
for method in full top2 bitfit; do
    lora-train -q --model "$work/base.safetensors" --method $method --steps 5 --lr 1e-3 --context 64 -o "$work/$method.safetensors" "$work/people-train.u16"
    expect_success "$method, unmerged" lora-predict --model "$work/base.safetensors" --adapter "$work/$method.safetensors" -o "$work/$method-unmerged.npy" "$work/ids.npy"
    lora-merge "$work/base.safetensors" "$work/$method.safetensors" -o "$work/$method-merged.safetensors"
    lora-predict --model "$work/$method-merged.safetensors" -o "$work/$method-merged.npy" "$work/ids.npy"
    expect_success "$method: merged, the same logits to 1e-5" tests/e2e/close-npy "$work/$method-unmerged.npy" "$work/$method-merged.npy" 1e-5
done

# --- LoRA on the token embedding (PEFT's lora_embedding_A/B), at another rank by pattern -----
c=$n/gpt2-classify
expect_warning "LoRA on q, v (r = 4) and wte (r = 2)" "^trainable params: 1,376 \|\|" lora-train --model $c.safetensors --task classify --targets q,v,wte --rank 4 --rank-pattern wte=2 --lr 1e-2 --steps 3 --batch-size 2 -o "$work/wte" $c.ids.npy $c.targets.npy
expect_success "  PEFT's keys, shapes and rank_pattern" /usr/bin/python3 -c "
import json, struct, sys
folder = sys.argv[1]
config = json.load(open(folder + '/adapter_config.json'))
with open(folder + '/adapter_model.safetensors', 'rb') as f:
    header = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
shapes = {k: v['shape'] for k, v in header.items() if 'wte' in k}
assert shapes == {'base_model.model.transformer.wte.lora_embedding_A': [2, 96],
                  'base_model.model.transformer.wte.lora_embedding_B': [32, 2]}, shapes
assert 'transformer.wte' in config['target_modules'], config['target_modules']
assert (config['r'], config['lora_alpha']) == (8, 8), (config['r'], config['lora_alpha'])  # q and v of c_attn: 2 x 4
assert config['rank_pattern'] == {'transformer.wte': 2} and config['alpha_pattern'] == {'transformer.wte': 4}, config
" "$work/wte"
expect_success "  unmerged" lora-predict --model $c.safetensors --adapter "$work/wte" --format logits -o "$work/wte-unmerged.npy" $c.ids.npy
expect_success "  merged" lora-merge $c.safetensors "$work/wte" -o "$work/wte-merged.safetensors"
lora-predict --model "$work/wte-merged.safetensors" --format logits -o "$work/wte-merged.npy" $c.ids.npy
expect_success "  merged, the same logits to 1e-5" tests/e2e/close-npy "$work/wte-unmerged.npy" "$work/wte-merged.npy" 1e-5
lora-predict --model $c.safetensors --format logits -o "$work/wte-base.npy" $c.ids.npy
tests/e2e/close-npy "$work/wte-base.npy" "$work/wte-unmerged.npy" 1e-5 >/dev/null 2>&1 && fail "  the embedding's branch changes the logits" || pass

# --- head: a linear probe trains the classification head alone, and merges ---------------
expect_warning "head: the head's parameters alone train" "^trainable params: 96 \|\|" lora-train --model $c.safetensors --task classify --method head --lr 1e-2 --steps 3 --batch-size 2 -o "$work/head.safetensors" $c.ids.npy $c.targets.npy
expect_success "head: unmerged" lora-predict --model $c.safetensors --adapter "$work/head.safetensors" --format logits -o "$work/head-unmerged.npy" $c.ids.npy
expect_success "head: merged" lora-merge $c.safetensors "$work/head.safetensors" -o "$work/head-merged.safetensors"
lora-predict --model "$work/head-merged.safetensors" --format logits -o "$work/head-merged.npy" $c.ids.npy
expect_success "head: merged, the same logits to 1e-5" tests/e2e/close-npy "$work/head-unmerged.npy" "$work/head-merged.npy" 1e-5

# --- lora-predict applies adapters and prefix vectors as training evaluated them: the dev
# loss in the log is the cross-entropy of lora-predict's logits -----------------------------
c=$n/gpt2-classify
for method in adapter-h adapter-l prefix-embed prefix-layer; do
    options="--adapter-size 4"
    case $method in prefix-*) options="--prefix-length 2 --infix-length 2" ;; esac
    lora-train -q --model $c.safetensors --task classify --method $method $options --lr 1e-2 --steps 3 --batch-size 2 --dev $c.ids.npy --dev $c.targets.npy --metric loss --log "$work/$method.tsv" -o "$work/$method.safetensors" $c.ids.npy $c.targets.npy
    expect_success "$method: lora-predict applies it" lora-predict --model $c.safetensors --adapter "$work/$method.safetensors" --format logits -o "$work/$method-logits.npy" $c.ids.npy
    expect_success "  the log's dev loss from its logits" /usr/bin/python3 -c "
import numpy as np, sys
logits, gold = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2])
logged = float(open(sys.argv[3]).read().splitlines()[-1].split('\t')[5])
shifted = logits - logits.max(1, keepdims=True)
loss = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(gold)), gold])
sys.exit(0 if abs(loss - logged) < 1e-5 else f'{loss} against {logged}')" "$work/$method-logits.npy" $c.targets.npy "$work/$method.tsv"
done
lora-train -q --model $tiny --method prefix-embed --prefix-length 2 --steps 1 --context 12 -o "$work/prefix-lm.safetensors" $t/lm.u16
expect_failure "prefix vectors of another model" 1 "prefix-lm.safetensors: tensor 'transformer.h.0.prefix' has shape \[2, 32\], the model's 'transformer.h.0.prefix' is \[2, 64\]" lora-predict --model "$work/base.safetensors" --adapter "$work/prefix-lm.safetensors" -o "$work/bad.npy" "$work/ids.npy"

# --- The PEFT adapter: q and v of c_attn as one pair of rank 2r, alpha 2α --------------------
grep -q '"r": 8,' "$work/steps/adapter_config.json" && pass || fail "adapter_config.json: r = 2 × 4"
grep -q '"lora_alpha": 16,' "$work/steps/adapter_config.json" && pass || fail "adapter_config.json: lora_alpha = 2 × 8" "$(cat "$work/steps/adapter_config.json")"
grep -q '"target_modules": \[' "$work/steps/adapter_config.json" && grep -q '"attn.c_attn"' "$work/steps/adapter_config.json" && pass || fail "adapter_config.json: target_modules attn.c_attn"
grep -q '"fan_in_fan_out": true' "$work/steps/adapter_config.json" && grep -q '"task_type": "CAUSAL_LM"' "$work/steps/adapter_config.json" && pass || fail "adapter_config.json: fan_in_fan_out, task_type"
grep -aq 'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight' "$work/steps/adapter_model.safetensors" && pass || fail "adapter_model.safetensors: PEFT key names"

# --- Parameter counts (d = 32, L = 2): PEFT's line; the paper's formulas ---------------------
count() { lora-train --model $tiny "$@" --steps 1 --context 8 -o "$work/count" $t/lm.u16 2>&1 >/dev/null | sed -n 's/^trainable params: \([0-9,]*\) .*/\1/p' | tr -d ,; rm -rf "$work/count"; }
[ "$(count --rank 4)" = $((2 * 2 * (4 * 32 + 32 * 4))) ] && pass || fail "lora r=4 on q, v: 2·2·(r·d + d·r)"
for r in 2 8; do
    [ "$(count --method adapter-h --adapter-size $r)" = $((4 * (2 * 32 * r + r + 32))) ] && pass || fail "adapter-h r=$r: L_adpt = 4, L_LN = 0"
    [ "$(count --method adapter-l --adapter-size $r)" = $((2 * (2 * 32 * r + r + 32) + 2 * 2 * 32)) ] && pass || fail "adapter-l r=$r: L_adpt = 2, L_LN = 2"
done
[ "$(count --method prefix-layer --prefix-length 3)" = $((2 * 32 * 3)) ] && pass || fail "prefix-layer l_p=3: L·d·(l_p + l_i)"
[ "$(count --method prefix-embed --prefix-length 3)" = $((32 * 3)) ] && pass || fail "prefix-embed l_p=3: d·(l_p + l_i)"
expect_warning "the counts and fraction as PEFT prints them" "^trainable params: 1,024 \|\| all params: 30,080 \|\| trainable%: 3\.4043$" lora-train --model $tiny --rank 4 --steps 1 --context 15 -o "$work/count" $t/lm.u16

# --- Determinism, resuming after SIGKILL ---------------------------------------------------
common=(-q --model "$work/base.safetensors" --steps 24 --lr 1e-2 --context 64 --threads 2 --dev "$work/people-dev.u16" --eval-every 8)
run() { lora-train "${common[@]}" "$@" "$work/people-train.u16"; }
expect_success "a run" run -o "$work/once"
expect_success "the same run again" run -o "$work/twice"
expect_same "  the same adapter, byte for byte" "$work/once/adapter_model.safetensors" "$work/twice/adapter_model.safetensors"
expect_same "  the same config" "$work/once/adapter_config.json" "$work/twice/adapter_config.json"
lora-train "${common[@]}" --checkpoint-dir "$work/ck" --checkpoint-every 4 -o "$work/killed" "$work/people-train.u16" &
pid=$!
while [ ! -e "$work/ck/checkpoint.safetensors" ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
expect_success "killed with SIGKILL, resumed" run --checkpoint-dir "$work/ck" --checkpoint-every 4 --resume -o "$work/killed"
expect_same "  the same adapter as the run never stopped" "$work/once/adapter_model.safetensors" "$work/killed/adapter_model.safetensors"
expect_warning "--resume without a checkpoint starts afresh" "^lora-train: warning: --resume: no checkpoint in .*/none; starting from the first step$" lora-train --model "$work/base.safetensors" --steps 24 --lr 1e-2 --context 64 --threads 2 --dev "$work/people-dev.u16" --eval-every 8 --checkpoint-dir "$work/none" --resume -o "$work/fresh" "$work/people-train.u16"
expect_same "  and ends as the run never stopped" "$work/once/adapter_model.safetensors" "$work/fresh/adapter_model.safetensors"
expect_failure "resuming with other settings" 1 "checkpoint.safetensors: written by a run with other settings \(lr was 0\.01, is now 0\.002\); resume with the same ones$" lora-train -q --model "$work/base.safetensors" --steps 24 --lr 2e-3 --context 64 --dev "$work/people-dev.u16" --eval-every 8 --checkpoint-dir "$work/ck" --resume -o "$work/other" "$work/people-train.u16"
expect_no_file "  writes nothing" "$work/other"

# --- NaN stops the run; the last checkpoint stays whole ----------------------------------------
expect_failure "a loss that overflows" 1 "^lora-train: step [0-9]+: the (loss|gradient norm) is (nan|inf|-nan); training stopped \(the checkpoint in .*/nan is left as it was\)$" lora-train -q --model $tiny --method full --steps 6 --lr 1e30 --max-grad-norm 0 --context 15 --checkpoint-dir "$work/nan" --checkpoint-every 1 --log "$work/nan.tsv" -o "$work/nan.safetensors" $t/lm.u16
failing_step=$(sed -n 's/^lora-train: step \([0-9]*\):.*/\1/p' "$work/stderr")
expect_no_file "  no output" "$work/nan.safetensors"
[ "$(awk 'END { print NR }' "$work/nan.tsv")" = "$failing_step" ] && pass || fail "  the log up to the step before" "$(cat "$work/nan.tsv")"
grep -aq "steps\\\\\":$((failing_step - 1))}" "$work/nan/checkpoint.safetensors" && pass || fail "  the checkpoint of the step before"
expect_failure "  which resumes, to fail at the same step" 1 "^lora-train: step $failing_step: " lora-train -q --model $tiny --method full --steps 6 --lr 1e30 --max-grad-norm 0 --context 15 --checkpoint-dir "$work/nan" --checkpoint-every 1 --resume -o "$work/nan.safetensors" $t/lm.u16

# --- Other tasks and methods run --------------------------------------------------------------
/usr/bin/python3 -c "
import numpy as np, sys
ids = np.load(sys.argv[1])
np.save(sys.argv[2], ids[:, :6]); np.save(sys.argv[3], ids[:, 6:])" $n/gpt2-lm.ids.npy "$work/x.npy" "$work/y.npy"
expect_success "classify, labels from a TSV column, dev accuracy" lora-train -q --model $n/gpt2-classify.safetensors --task classify --label-column prediction --steps 4 --batch-size 2 --dev $n/gpt2-classify.ids.npy --dev $n/gpt2-classify.labels.tsv --metric mcc --log "$work/classify.tsv" -o "$work/classify" $n/gpt2-classify.ids.npy $n/gpt2-classify.labels.tsv
grep -q '"modules_to_save": \[' "$work/classify/adapter_config.json" && grep -q '"score"' "$work/classify/adapter_config.json" && pass || fail "  the score head in modules_to_save"
expect_success "regress" lora-train -q --model $n/gpt2-regress.safetensors --task regress --method bitfit --steps 3 --batch-size 2 --dev $n/gpt2-regress.ids.npy --dev $n/gpt2-regress.targets.npy -o "$work/regress.safetensors" $n/gpt2-regress.ids.npy $n/gpt2-regress.targets.npy
expect_success "vit classify" lora-train -q --model $n/vit.safetensors --task classify --targets q,v --steps 2 --batch-size 2 -o "$work/vit" $n/vit.patches.npy $n/vit.targets.npy
expect_success "clip, InfoNCE" lora-train -q --model $n/clip.safetensors --task clip --steps 2 --batch-size 2 --dev $n/clip.patches.npy --dev $n/clip.ids.npy -o "$work/clip" $n/clip.patches.npy $n/clip.ids.npy
expect_success "clip, LoRA on the text tower's token embedding" lora-train -q --model $n/clip.safetensors --task clip --targets q,v,token_embedding --steps 2 --batch-size 2 -o "$work/clip-embedding" $n/clip.patches.npy $n/clip.ids.npy
expect_success "  its PEFT keys" grep -q '"base_model.model.text_model.embeddings.token_embedding.lora_embedding_A":{"dtype":"F32","shape":\[8,64\]' "$work/clip-embedding/adapter_model.safetensors"
for loss in triplet npair contrastive; do
    expect_success "clip, $loss" lora-train -q --model $n/clip.safetensors --task clip --loss $loss --method adapter-h --steps 2 --batch-size 2 -o "$work/clip-$loss.safetensors" $n/clip.patches.npy $n/clip.ids.npy
done
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], (np.arange(10) >= 5)[None].repeat(3, 0).astype(np.int8))" "$work/pairs-mask.npy"
expect_success "lm-pairs with a loss mask, prefix-layer with an infix" lora-train -q --model $tiny --task lm-pairs --loss-mask --method prefix-layer --prefix-length 2 --infix-length 2 --steps 3 --batch-size 2 --pad-id 0 -o "$work/pairs.safetensors" $n/gpt2-lm.ids.npy "$work/pairs-mask.npy"
expect_success "lm-pairs, prompts and continuations" lora-train -q --model $tiny --task lm-pairs --steps 3 --batch-size 2 --pad-id 0 --dev "$work/x.npy" --dev "$work/y.npy" -o "$work/pairs" "$work/x.npy" "$work/y.npy"

# --- Bad input: one line naming the file, no output -----------------------------------------
/usr/bin/python3 - "$work" <<'PY'
import numpy as np, sys
work = sys.argv[1]
np.save(f"{work}/big-id.npy", np.array([[1, 2, 3], [4, 200, 5]], dtype=np.int32))
np.save(f"{work}/labels-7.npy", np.array([0, 7, 1, 2], dtype=np.int64))
np.save(f"{work}/labels-3.npy", np.array([0, 1, 2], dtype=np.int64))
np.save(f"{work}/empty.npy", np.zeros((0, 4), dtype=np.int32))
np.save(f"{work}/long.npy", np.ones((2, 17), dtype=np.int32))
np.save(f"{work}/float-labels.npy", np.array([0.5, 1, 2, 0], dtype=np.float32))
np.save(f"{work}/patches.npy", np.zeros((2, 4, 48), dtype=np.float32))
np.save(f"{work}/mask.npy", np.ones((3, 4), dtype=np.int32))
PY
: >"$work/empty.u16"
printf 'A' >"$work/odd.u16"
printf '\x01\x00\x63\x00' >"$work/big.u16"
out=$work/bad
expect_failure "missing model" 1 "/absent.safetensors: No such file or directory" lora-train --model "$work/absent.safetensors" -o $out $t/lm.u16
expect_failure "missing data" 1 "/absent.u16: No such file or directory" lora-train --model $tiny -o $out "$work/absent.u16"
expect_failure "empty token stream" 1 "/empty.u16: no token ids" lora-train --model $tiny -o $out "$work/empty.u16"
expect_failure "odd bytes in a .u16" 1 "/odd.u16: 1 bytes: not a whole number of 2-byte ids" lora-train --model $tiny -o $out "$work/odd.u16"
expect_failure "token id outside the vocabulary" 1 "/big.u16: token id 99 at position 1 is outside the vocabulary \(0\.\.95\)" lora-train --model $tiny -o $out "$work/big.u16"
expect_failure "a 2-D array as a token stream" 1 "/big-id.npy: a token stream is one sequence of ids \(a 1-D array\), not 2-dimensional" lora-train --model $tiny -o $out "$work/big-id.npy"
head -c 20 $t/lm.u16 >"$work/short.u16"
expect_failure "stream shorter than a window" 1 "/short.u16: 10 tokens, too few for one window of 16 tokens and the one after" lora-train --model $tiny -o $out "$work/short.u16"
expect_failure "ids outside the vocabulary" 1 "/big-id.npy: token id 200 at row 1, position 1 is outside the vocabulary \(0\.\.95\)" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out "$work/big-id.npy" "$work/labels-3.npy"
expect_failure "rows longer than the positions" 1 "/long.npy: 17 tokens per row, but the model has 16 positions" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out "$work/long.npy" "$work/labels-3.npy"
expect_failure "no rows" 1 "/empty.npy: no rows of token ids" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out "$work/empty.npy" "$work/labels-3.npy"
expect_failure "label out of range" 1 "/labels-7.npy: row 1: label 7 is outside the model's 3 classes \(0\.\.2\)" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out $n/gpt2-classify.ids.npy "$work/labels-7.npy"
expect_failure "float class labels" 1 "/float-labels.npy: class labels must be integers" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out $n/gpt2-classify.ids.npy "$work/float-labels.npy"
expect_failure "fewer labels than rows" 1 "/labels-3.npy: 3 labels for the 4 rows of .*gpt2-classify.ids.npy" lora-train --model $n/gpt2-classify.safetensors --task classify -o $out $n/gpt2-classify.ids.npy "$work/labels-3.npy"
expect_failure "a label column the TSV lacks" 1 "gpt2-classify.labels.tsv: no column 'label' \(columns: index, prediction\)" lora-train --model $n/gpt2-classify.safetensors --task classify --label-column label -o $out $n/gpt2-classify.ids.npy $n/gpt2-classify.labels.tsv
printf 'label\n0\nthree\n1\n2\n' >"$work/labels.tsv"
expect_failure "a label that is no class" 1 "/labels.tsv:3: label 'three' is neither a class id nor one of the model's labels \(LABEL_0, LABEL_1, LABEL_2\)" lora-train --model $n/gpt2-classify.safetensors --task classify --label-column label -o $out $n/gpt2-classify.ids.npy "$work/labels.tsv"
expect_failure "patches of another shape" 1 "/patches.npy: patches of shape \(4, 48\), the model takes \(16, 48\)" lora-train --model $n/vit.safetensors --task classify -o $out "$work/patches.npy" $n/vit.targets.npy
expect_failure "a loss mask of another shape" 1 "/mask.npy: a loss mask of shape \(3, 4\), the ids are \(3, 10\)" lora-train --model $tiny --task lm-pairs --loss-mask -o $out $n/gpt2-lm.ids.npy "$work/mask.npy"
expect_failure "dev data that do not fit either" 1 "/big.u16: token id 99" lora-train --model $tiny --dev "$work/big.u16" -o $out $t/lm.u16
expect_failure "a log in a folder that does not exist, before training" 1 "/absent/log.tsv: cannot create: No such file or directory" lora-train --model $tiny --steps 1000000 --log "$work/absent/log.tsv" -o $out $t/lm.u16
expect_failure "an output in a folder that does not exist, before training" 1 "/absent/out.safetensors: cannot create: No such file or directory" lora-train --model $tiny --method bitfit --steps 1000000 -o "$work/absent/out.safetensors" $t/lm.u16
mkdir -p "$work/busy" && touch "$work/busy/notes.txt"
expect_failure "a LoRA output folder that holds other things" 1 "/busy: is a folder that holds other things than an adapter; give a new or empty one" lora-train --model $tiny --steps 1 -o "$work/busy" $t/lm.u16
expect_no_file "no output after an error" "$out"
expect_failure "no --model" 2 "--model is required" lora-train -o $out $t/lm.u16
expect_failure "no data" 2 "missing operand" lora-train --model $tiny -o $out
expect_failure "LoRA to standard output" 2 "--method lora writes a PEFT adapter folder: give it with -o FOLDER" lora-train --model $tiny $t/lm.u16
expect_failure "unknown method" 2 "--method lora2: expected lora, full" lora-train --model $tiny --method lora2 -o $out $t/lm.u16
expect_failure "unknown task" 2 "--task lmm: expected lm, lm-pairs" lora-train --model $tiny --task lmm -o $out $t/lm.u16
expect_failure "unknown target" 2 "--targets: 'qq' is not a layer of this model" lora-train --model $tiny --targets q,qq -o $out $t/lm.u16
expect_failure "an unknown target names wte" 2 "--targets: 'qq' is not a layer of this model \(q, k, v, o, fc1, fc2, wte, or" lora-train --model $tiny --targets qq -o $out $t/lm.u16
expect_failure "a rank pattern off the targets" 2 "--rank-pattern: 'wte' is not one of --targets" lora-train --model $tiny --rank-pattern wte=2 -o $out $t/lm.u16
expect_failure "a rank pattern without a rank" 2 "--rank-pattern: 'q=0' is not TARGET=RANK with a rank of at least 1" lora-train --model $tiny --rank-pattern q=0 -o $out $t/lm.u16
expect_failure "two ranks on one fused layer" 2 "--rank-pattern: the targets on attn.c_attn need one rank" lora-train --model $tiny --rank-pattern q=4 -o $out $t/lm.u16
expect_failure "an option of another method" 2 "--rank goes with --method lora" lora-train --model $tiny --method full --rank 4 -o $out $t/lm.u16
expect_failure "an option of another task" 2 "--loss goes with --task clip" lora-train --model $tiny --loss triplet -o $out $t/lm.u16
expect_failure "one operand too many" 2 "--task lm takes 1 operand: TOKENS" lora-train --model $tiny -o $out $t/lm.u16 $t/lm.u16
expect_failure "a classification task on an LM" 2 "--task classify needs a model with a classification head \(model-init --labels N\)" lora-train --model $tiny --task classify -o $out $n/gpt2-lm.ids.npy $n/gpt2-classify.targets.npy
expect_failure "the wrong dev files" 2 "--dev: --task classify takes 2 dev files \(INPUT LABELS\)" lora-train --model $n/gpt2-classify.safetensors --task classify --dev $n/gpt2-classify.ids.npy -o $out $n/gpt2-classify.ids.npy $n/gpt2-classify.targets.npy
expect_failure "prefix tuning of a vit" 2 "prefix tuning is implemented for gpt2 models, not vit" lora-train --model $n/vit.safetensors --task classify --method prefix-embed -o $out $n/vit.patches.npy $n/vit.targets.npy
expect_failure "--epochs and --steps" 2 "give --epochs or --steps, not both" lora-train --model $tiny --epochs 1 --steps 3 -o $out $t/lm.u16
expect_failure "--batch-size 0" 2 "--batch-size must be at least 1" lora-train --model $tiny --batch-size 0 -o $out $t/lm.u16
expect_failure "--resume without --checkpoint-dir" 2 "--resume goes with --checkpoint-dir" lora-train --model $tiny --resume -o $out $t/lm.u16
expect_no_file "no output after a usage error" "$out"

finish
