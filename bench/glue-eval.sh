#!/bin/bash
# glue-eval against scikit-learn + SciPy on 10 million predictions: each side is a whole
# process reading the same files. Prints both times and the ratio.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/glue-eval
mkdir -p "$out"
rows=${ROWS:-10000000}

if [ ! -f "$out/values.pred" ] || [ "$(wc -l <"$out/labels.gold")" -ne "$rows" ]; then
    /usr/bin/python3 - "$out" "$rows" <<'PY'
import sys
import numpy as np
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
gold = rng.integers(0, 3, n)
pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, 3, n))
for name, labels in (("gold", gold), ("pred", pred)):
    lines = np.empty((n, 2), dtype=np.uint8)
    lines[:, 0] = labels + ord("0")
    lines[:, 1] = ord("\n")
    lines.tofile(f"{out}/labels.{name}")
score = rng.uniform(0, 5, n)
for name, values in (("gold", score), ("pred", score + rng.normal(0, 1, n))):
    with open(f"{out}/values.{name}", "w") as f:
        f.write("\n".join(np.char.mod("%.4f", values).tolist()))
        f.write("\n")
PY
fi

seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

compare() {
    local what=$1 ours peer
    shift
    ours=$(seconds "$@")
    peer=$(seconds /usr/bin/python3 "$here/glue-eval-peer.py" "$kind" "$out/$kind.gold" "$out/$kind.pred")
    printf '%-44s glue-eval %6.2f s   %-22s %6.2f s   ratio %5.1fx\n' "$what" "$ours" "$peer_name" "$peer" \
        "$(echo "$peer / $ours" | bc -l)"
}

for threads in 1 2; do
    kind=labels peer_name="scikit-learn"
    compare "$rows rows, mcc+acc+f1, $threads thread(s)" \
        "$here/../bin/glue-eval" --threads "$threads" --metric mcc,acc,f1 "$out/labels.gold" "$out/labels.pred"
    kind=values peer_name="SciPy"
    compare "$rows rows, pearson+spearman, $threads thread(s)" \
        "$here/../bin/glue-eval" --threads "$threads" --metric pearson,spearman "$out/values.gold" "$out/values.pred"
done
