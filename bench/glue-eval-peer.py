#!/usr/bin/python3
"""The peer of bench/glue-eval.sh: the same metrics with scikit-learn and SciPy, as one
whole process that reads the same files (with NumPy's fastest text reader).

    glue-eval-peer.py labels|values GOLD PRED
"""
import sys

import numpy as np

kind, gold_path, pred_path = sys.argv[1:4]
gold = np.fromfile(gold_path, sep=" ")
pred = np.fromfile(pred_path, sep=" ")
if kind == "labels":
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    gold, pred = gold.astype(np.int64), pred.astype(np.int64)
    print("mcc", matthews_corrcoef(gold, pred))
    print("acc", accuracy_score(gold, pred))
    print("f1", f1_score(gold == 1, pred == 1))
else:
    from scipy import stats
    print("pearson", stats.pearsonr(gold, pred)[0])
    print("spearman", stats.spearmanr(gold, pred)[0])
