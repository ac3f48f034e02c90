#!/usr/bin/python3
"""Makes the glue-eval fixtures: gold and prediction files, and the metrics scikit-learn and
SciPy compute on them, which the end-to-end tests compare glue-eval's output against.

Run from anywhere with Debian's python3-numpy, python3-scipy and python3-sklearn:
    /usr/bin/python3 tests/data/glue-eval/make-fixtures.py
It rewrites the files in its own folder; the result is deterministic.
"""
import json
import os

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261127)

WORDS = ("the cat sat on a mat while \"quoted\" words , it 's don't say "
         "'single' \"\"double\"\" ( parens ) 3.5 % & <b> naïve café 東京").split()


def sentence():
    return " ".join(rng.choice(WORDS, size=rng.integers(3, 12)))


def write(name, lines, bom=False):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        if bom:
            f.write("\ufeff")
        for line in lines:
            f.write(line + "\n")


def reference_metrics(names, gold, pred, positive=None):
    """The metrics as scikit-learn and SciPy compute them."""
    values = {}
    for name in names:
        if name == "acc":
            values[name] = accuracy_score(gold, pred)
        elif name == "mcc":
            values[name] = matthews_corrcoef(gold, pred)
        elif name == "f1":
            # One class against the rest, which is scikit-learn's binary F1 when there are two.
            values[name] = f1_score([g == positive for g in gold], [p == positive for p in pred], zero_division=0)
        elif name == "pearson":
            values[name] = stats.pearsonr(gold, pred)[0]
        elif name == "spearman":
            values[name] = stats.spearmanr(gold, pred)[0]
    return {k: float(v) for k, v in values.items()}


def save_expected(name, metrics, score=None):
    expected = {"metrics": metrics}
    if score is not None:
        expected["score"] = score
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


# Generic mode: one value per line.
def generic_case(name, gold, pred, metrics, positive="1", numeric=True):
    write(f"{name}.gold", [str(g) for g in gold])
    write(f"{name}.pred", [str(p) for p in pred])
    if numeric:
        g, p = np.array(gold, dtype=float), np.array(pred, dtype=float)
        labels = reference_metrics([m for m in metrics if m in ("acc", "mcc", "f1")], g, p, float(positive))
        numbers = reference_metrics([m for m in metrics if m in ("pearson", "spearman")], g, p)
        values = {**labels, **numbers}
    else:
        values = reference_metrics(metrics, gold, pred, positive)
    save_expected(f"{name}.expected.json", {m: values[m] for m in metrics})


n = 200
gold = rng.integers(0, 2, n)
pred = np.where(rng.random(n) < 0.8, gold, 1 - gold)
generic_case("binary", gold.tolist(), pred.tolist(), ["acc", "f1", "mcc", "pearson", "spearman"])

classes = ["bird", "cat", "dog", "fish"]
gold = rng.integers(0, 4, 300)
pred = np.where(rng.random(300) < 0.6, gold, rng.integers(0, 4, 300))
generic_case("multiclass", [classes[i] for i in gold], [classes[i] for i in pred], ["acc", "mcc", "f1"],
             positive="dog", numeric=False)

# Scores on STS-B's 0..5 scale, rounded so that there are many ties.
gold = np.round(rng.uniform(0, 5, 400) * 5) / 5
pred = np.round((gold + rng.normal(0, 1.0, 400)) * 4) / 4
generic_case("regression", [f"{g:.3f}" for g in gold], [f"{p:.2f}" for p in pred], ["pearson", "spearman"])

gold = rng.integers(0, 2, 50)
generic_case("constant-prediction", gold.tolist(), [1] * 50, ["acc", "mcc", "f1"])
generic_case("no-positive", [0] * 30, [0] * 27 + [2] * 3, ["acc", "f1", "mcc"])

# Task mode: dev files in the layouts GLUE distributes, submissions in its format, rows shuffled.
def task_case(task, gold_name, header, make_row, labels, label_column, metrics, positive=None,
              n=80, bom=False, regression=False, ids_in_submission=False):
    rows, gold = [], []
    for i in range(n):
        label = float(np.round(rng.uniform(0, 5), 3)) if regression else labels[rng.integers(len(labels))]
        gold.append(label)
        row = make_row(i, f"{label:.3f}" if regression else label)
        assert row[label_column] == (f"{label:.3f}" if regression else label)
        rows.append("\t".join(row))
    write(gold_name, ([("\t".join(header))] if header else []) + rows, bom=bom)

    if regression:
        pred = [float(np.clip(g + rng.normal(0, 0.8), 0, 5)) for g in gold]
        shown = [f"{p:.3f}" for p in pred]
        pred = [float(s) for s in shown]
    else:
        pred = [g if rng.random() < 0.7 else labels[rng.integers(len(labels))] for g in gold]
        shown = [str(labels.index(p)) if ids_in_submission else p for p in pred]
    order = rng.permutation(n)
    write(f"{task}.submission.tsv", ["index\tprediction"] + [f"{i}\t{shown[i]}" for i in order])
    values = reference_metrics(metrics, gold, pred, positive)
    save_expected(f"{task}.expected.json", values, 100 * float(np.mean(list(values.values()))))


binary = ["0", "1"]
nli = ["entailment", "neutral", "contradiction"]
two_way = ["entailment", "not_entailment"]
task_case("cola", "cola.dev.tsv", None,
          lambda i, y: [f"gj0{i % 7}", y, "" if y == "1" else "*", sentence()], binary, 1, ["mcc"])
task_case("sst2", "sst2.dev.tsv", ["sentence", "label"], lambda i, y: [sentence(), y], binary, 1, ["acc"])
task_case("mrpc", "mrpc.dev.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
          lambda i, y: [y, str(1000 + i), str(2000 + i), sentence(), '"' + sentence() + '"'],
          binary, 0, ["f1", "acc"], positive="1", bom=True)
task_case("stsb", "stsb.dev.tsv", ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                                   "sentence1", "sentence2", "score"],
          lambda i, y: [str(i), "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none",
                        sentence(), sentence(), y], None, 9, ["pearson", "spearman"], regression=True)
task_case("qqp", "qqp.dev.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
          lambda i, y: [str(40000 + i), str(2 * i), str(2 * i + 1), sentence() + "?", sentence() + "?", y],
          binary, 5, ["f1", "acc"], positive="1")
mnli_header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "label2", "label3",
               "label4", "label5", "gold_label"]
for task, name in (("mnli-m", "mnli-m.dev_matched.tsv"), ("mnli-mm", "mnli-mm.dev_mismatched.tsv")):
    task_case(task, name, mnli_header,
              lambda i, y: [str(i), str(100 + i), f"{100 + i}e", "fiction", "( ( The cat ) sat )", "( It ( sat ) )",
                            "(ROOT (S (NP The cat) (VP sat)))", "(ROOT (S (NP It) (VP sat)))", sentence(),
                            sentence(), y, y, y, y, y, y], nli, 15, ["acc"])
task_case("qnli", "qnli.dev.tsv", ["index", "question", "sentence", "label"],
          lambda i, y: [str(i), sentence() + "?", sentence(), y], two_way, 3, ["acc"])
task_case("rte", "rte.dev.tsv", ["index", "sentence1", "sentence2", "label"],
          lambda i, y: [str(i), sentence(), sentence(), y], two_way, 3, ["acc"], ids_in_submission=True)
task_case("wnli", "wnli.dev.tsv", ["index", "sentence1", "sentence2", "label"],
          lambda i, y: [str(i), sentence(), sentence(), y], binary, 3, ["acc"])
task_case("ax", "ax.diagnostic-full.tsv", ["Lexical Semantics", "Predicate-Argument Structure", "Logic",
                                           "Knowledge", "Domain", "Premise", "Hypothesis", "Label"],
          lambda i, y: ["Negation" if i % 3 == 0 else "", "", "", "", "ACL", sentence(), sentence(), y],
          nli, 7, ["mcc"])
