#!/bin/bash
# model-init end to end: every architecture and preset that is small enough, the config in
# the metadata, determinism, and every error path.
source "$(dirname "$0")/lib.sh"

# The header of a safetensors file as "name dtype shape" lines, then the config's JSON
# (quietly cut short when its reader, such as grep -q, has seen enough).
describe() {
    /usr/bin/python3 - "$1" <<'PY'
import json, signal, struct, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
with open(sys.argv[1], "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
metadata = header.pop("__metadata__")
for name in sorted(header):
    print(name, header[name]["dtype"], header[name]["shape"])
print(metadata["format"], json.dumps(json.loads(metadata["config"]), sort_keys=True))
PY
}

# --- Every architecture: tensors, shapes, config --------------------------------------------
for arch in gpt2 vit clip; do
    for preset in tiny small; do
        expect_success "$arch $preset" model-init --arch $arch --preset $preset -o "$work/$arch-$preset.safetensors"
    done
done
describe "$work/gpt2-tiny.safetensors" >"$work/gpt2.txt"
expect_success "gpt2: 2 layers of tensors and the tied embedding" grep -q "^transformer.h.1.mlp.c_proj.weight F32 \[256, 64\]$" "$work/gpt2.txt"
if [ "$(grep -c '^transformer\.' "$work/gpt2.txt")" -eq 28 ] && ! grep -q lm_head "$work/gpt2.txt"; then pass; else fail "gpt2: 28 tensors, no lm_head" "$(cat "$work/gpt2.txt")"; fi
expect_success "gpt2: the config in the metadata" grep -q '^pt {"activation_function": "gelu_new", "architectures": \["GPT2LMHeadModel"\]' "$work/gpt2.txt"
describe "$work/vit-small.safetensors" >"$work/vit.txt"
expect_success "vit: patch embedding as Conv2d weights" grep -q "^vision_model.embeddings.patch_embedding.weight F32 \[256, 3, 4, 4\]$" "$work/vit.txt"
expect_success "vit: 65 positions (64 patches and the class token)" grep -q "^vision_model.embeddings.position_embedding.weight F32 \[65, 256\]$" "$work/vit.txt"
expect_success "vit: classifier of 10 labels" grep -q "^classifier.weight F32 \[10, 256\]$" "$work/vit.txt"
describe "$work/clip-tiny.safetensors" >"$work/clip.txt"
expect_success "clip: logit_scale is a scalar" grep -q "^logit_scale F32 \[\]$" "$work/clip.txt"
expect_success "clip: text projection" grep -q "^text_projection.weight F32 \[32, 64\]$" "$work/clip.txt"

# --- Options: labels, fields, config files ----------------------------------------------------
expect_success "--labels on gpt2" model-init --arch gpt2 --preset tiny --labels 3 -o "$work/classify.safetensors"
describe "$work/classify.safetensors" >"$work/classify.txt"
expect_success "--labels: the score head" grep -q "^score.weight F32 \[3, 64\]$" "$work/classify.txt"
expect_success "--labels: GPT2ForSequenceClassification" grep -q '"architectures": \["GPT2ForSequenceClassification"\]' "$work/classify.txt"
expect_success "--labels 1: regression" model-init --arch gpt2 --preset tiny --labels 1 -o "$work/regress.safetensors"
expect_success "--labels 1: problem_type" grep -q '"problem_type": "regression"' <(describe "$work/regress.safetensors")
expect_success "--set changes a field" model-init --arch gpt2 --preset tiny --set n_layer=3 --set n_positions=64 -o "$work/set.safetensors"
expect_success "--set: a third layer" grep -q "^transformer.h.2.ln_1.weight" <(describe "$work/set.safetensors")
expect_success "--set: 64 positions" grep -q "^transformer.wpe.weight F32 \[64, 64\]$" <(describe "$work/set.safetensors")
expect_success "--set on a clip tower" model-init --arch clip --preset tiny --set vision_config.patch_size=4 -o "$work/clip4.safetensors"
expect_success "--set on a clip tower: 65 positions" grep -q "^vision_model.embeddings.position_embedding.weight F32 \[65, 64\]$" <(describe "$work/clip4.safetensors")
printf '{"model_type": "gpt2", "vocab_size": 100, "n_positions": 8, "n_embd": 16, "n_layer": 1, "n_head": 2}\n' >"$work/config.json"
expect_success "--config" model-init --arch gpt2 --config "$work/config.json" -o "$work/config.safetensors"
expect_success "--config: its shapes" grep -q "^transformer.wte.weight F32 \[100, 16\]$" <(describe "$work/config.safetensors")
printf '{"vocab_size": 10, "n_positions": 4, "n_embd": 8, "n_layer": 1, "n_head": 2}\n' >"$work/no-type.json"
expect_success "--config without model_type takes --arch's" model-init --arch gpt2 --config "$work/no-type.json" -o "$work/no-type.safetensors"

# --- Deterministic: same seed, same bytes, whatever the threads -------------------------------
model-init --arch clip --preset tiny --seed 5 --threads 1 -o "$work/seed-a.safetensors"
model-init --arch clip --preset tiny --seed 5 --threads 2 -o "$work/seed-b.safetensors"
model-init --arch clip --preset tiny --seed 6 -o "$work/seed-c.safetensors"
expect_same "same seed, other thread count: identical files" "$work/seed-a.safetensors" "$work/seed-b.safetensors"
if cmp -s "$work/seed-a.safetensors" "$work/seed-c.safetensors"; then fail "another seed gives another model"; else pass; fi

# --- Errors -------------------------------------------------------------------------------------
printf '{"model_type": "clip"}\n' >"$work/clip.json"
printf '{"model_type": "gpt2", ' >"$work/broken.json"
printf '{"model_type": "gpt2", "n_head": "many"}\n' >"$work/bad-field.json"
expect_failure "config file missing" 1 "/absent.json: No such file or directory" model-init --arch gpt2 --config "$work/absent.json" -o "$work/out.safetensors"
expect_failure "config of another architecture" 1 "/clip.json: model_type \"clip\" is not gpt2's \(gpt2\)" model-init --arch gpt2 --config "$work/clip.json" -o "$work/out.safetensors"
expect_failure "config not JSON" 1 "/broken.json: not a JSON object" model-init --arch gpt2 --config "$work/broken.json" -o "$work/out.safetensors"
expect_failure "config field of the wrong type" 1 "/bad-field.json: config field 'n_head' must be a positive integer, not \"many\"" model-init --arch gpt2 --config "$work/bad-field.json" -o "$work/out.safetensors"
expect_failure "output folder missing" 1 "/absent/out.safetensors: cannot create" model-init --arch gpt2 --preset tiny -o "$work/absent/out.safetensors"
expect_no_file "no output after an error" "$work/out.safetensors"
# --- --from: a new head on a trained body ---------------------------------------------------
# The body's tensors keep the source's bytes (float32 in and out); the head is new.
tensor_bytes() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    begin, end = header[sys.argv[2]]["data_offsets"]
    f.seek(8 + n + begin)
    sys.stdout.buffer.write(f.read(end - begin))
PY
}
model-init --arch gpt2 --preset tiny --seed 5 -o "$work/lm.safetensors"
expect_warning "--from: the new head is named" "no tensor 'score.weight': initialised" model-init --arch gpt2 --from "$work/lm.safetensors" --labels 4 --seed 6 -o "$work/classifier.safetensors"
tensor_bytes "$work/lm.safetensors" transformer.h.1.attn.c_attn.weight >"$work/body-before"
tensor_bytes "$work/classifier.safetensors" transformer.h.1.attn.c_attn.weight >"$work/body-after"
expect_same "--from: the body keeps its weights" "$work/body-before" "$work/body-after"
describe "$work/classifier.safetensors" >"$work/classifier.txt"
expect_success "--from: a four-class head" grep -q "^score.weight F32 \[4, 64\]$" "$work/classifier.txt"
expect_success "--from: the config says so" grep -q '"architectures": \["GPT2ForSequenceClassification"\]' "$work/classifier.txt"
model-init --arch clip --preset tiny -o "$work/clip.safetensors"
model-init -q --arch vit --from "$work/clip.safetensors" --labels 10 -o "$work/probe.safetensors"
tensor_bytes "$work/clip.safetensors" vision_model.encoder.layers.1.mlp.fc2.weight >"$work/tower-before"
tensor_bytes "$work/probe.safetensors" vision_model.encoder.layers.1.mlp.fc2.weight >"$work/tower-after"
expect_same "--from clip to vit: the vision tower's weights" "$work/tower-before" "$work/tower-after"
describe "$work/probe.safetensors" >"$work/probe.txt"
expect_success "--from clip to vit: no text tower" bash -c "! grep -q '^text_model' '$work/probe.txt'"
expect_success "--from clip to vit: a ten-class classifier" grep -q "^classifier.weight F32 \[10, 64\]$" "$work/probe.txt"
expect_failure "--from a model of another architecture" 1 "lm.safetensors: is a gpt2 model, not vit" model-init --arch vit --from "$work/lm.safetensors" -o "$work/out.safetensors"
expect_failure "--from with --preset" 2 "--preset, --config and --from exclude each other" model-init --arch gpt2 --preset tiny --from "$work/lm.safetensors" -o "$work/out.safetensors"
expect_failure "--from a missing file" 1 "absent.safetensors: No such file" model-init --arch gpt2 --from "$work/absent.safetensors" -o "$work/out.safetensors"

expect_failure "no --arch" 2 "--arch is required" model-init --preset tiny -o "$work/out.safetensors"
expect_failure "unknown architecture" 2 "--arch 'bert': expected gpt2, vit or clip" model-init --arch bert -o "$work/out.safetensors"
expect_failure "unknown preset" 2 "unknown preset 'huge' for gpt2 \(presets: tiny, small, gpt2, gpt2-medium\)" model-init --arch gpt2 --preset huge -o "$work/out.safetensors"
expect_failure "preset of another architecture" 2 "unknown preset 'gpt2' for vit" model-init --arch vit --preset gpt2 -o "$work/out.safetensors"
expect_failure "--preset with --config" 2 "--preset, --config and --from exclude each other" model-init --arch gpt2 --preset tiny --config "$work/config.json" -o "$work/out.safetensors"
expect_failure "unknown field" 2 "--set n_layers: gpt2 has no config field 'n_layers' \(fields: " model-init --arch gpt2 --preset tiny --set n_layers=2 -o "$work/out.safetensors"
expect_failure "--set without a value" 2 "--set 'n_layer': expected KEY=VALUE" model-init --arch gpt2 --preset tiny --set n_layer -o "$work/out.safetensors"
expect_failure "a value the field cannot take" 2 "config field 'n_head' \(5\) must divide n_embd \(64\)" model-init --arch gpt2 --preset tiny --set n_head=5 -o "$work/out.safetensors"
expect_failure "unsupported activation" 2 "'activation_function' names an unsupported activation \"relu\"" model-init --arch gpt2 --preset tiny --set activation_function=relu -o "$work/out.safetensors"
expect_failure "--labels on clip" 2 "--labels: clip models have no classification head" model-init --arch clip --preset tiny --labels 2 -o "$work/out.safetensors"
expect_failure "--labels 0" 2 "--labels must be at least 1" model-init --arch gpt2 --preset tiny --labels 0 -o "$work/out.safetensors"
expect_failure "an operand" 2 "unexpected operand" model-init --arch gpt2 --preset tiny extra
expect_no_file "no output after a usage error" "$work/out.safetensors"

finish
