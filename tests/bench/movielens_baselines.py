#!/usr/bin/env python3
"""Simple click baselines on granary_movielens_convert's output, to report beside the models.

Reads the TSV files the converter writes (train-NN.tsv.gz, eval.tsv.gz) and scores the click
label (rating >= 4) with models that need no embedding:
  - each numeric column alone (its AUC as a score, e.g. movie_mean: the movie's earlier mean);
  - logistic regression and gradient-boosted trees (scikit-learn) over the 9 statistics of
    earlier ratings, over those plus the 4 summaries of the history's ratings, and over all
    17 numeric columns (those and the 4 columns of the models refit per file: mf_rating,
    mf_rated_similarity, mf_liked_affinity, ease_liked_score).
Two splits, as for the models: "validation" trains on train-00..06 and scores train-07;
"eval" trains on every train file and scores eval.tsv.gz. Missing cells read as 0, as in the
models. A study tool, not a project dependency: Debian's python3-sklearn provides numpy and
scikit-learn.

    python3 tests/bench/movielens_baselines.py --data_dir=/tmp/ml [--json=FILE] [--esmm]

--esmm scores instead the labels of configs/movielens_esmm.pbtxt: the click, the conversion
given a click (above_mean on clicked ratings) and click AND conversion (CTCVR, on every rating),
by mf_rating alone and by logistic regression and trees on all 17 numeric columns, each
giving pCTCVR as pCTR * pCVR with pCVR trained on the clicked ratings only, and as one model
trained on the CTCVR label directly.
"""

import argparse
import csv
import glob
import gzip
import json
import os

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

STATISTICS = ["movie_count", "movie_mean", "user_count", "user_mean", "user_bias",
              "user_genre_mean", "movie_age", "history_co_rated_mean", "item_cf_mean"]
HISTORY_SUMMARIES = ["history_mean", "history_last", "history_liked", "history_recent_mean"]
REFIT_MODELS = ["mf_rating", "mf_rated_similarity", "mf_liked_affinity", "ease_liked_score"]
NUMERIC_FIELDS = STATISTICS + HISTORY_SUMMARIES + REFIT_MODELS


def read(paths):
    features, clicks = [], []
    for path in paths:
        with gzip.open(path, "rt", newline="") as f:
            for cells in csv.DictReader(f, delimiter="\t"):
                features.append([float(cells[c]) if cells[c] else 0.0 for c in NUMERIC_FIELDS])
                clicks.append(int(cells["click"]))
    return np.array(features), np.array(clicks)


def score(train, test):
    (x, y), (x_test, y_test) = train, test
    rows = {column: roc_auc_score(y_test, x_test[:, j])
            for j, column in enumerate(NUMERIC_FIELDS)}
    summarized = len(STATISTICS) + len(HISTORY_SUMMARIES)
    for name, width in ((f"the {len(STATISTICS)} statistics", len(STATISTICS)),
                        (f"the {summarized} statistics and history summaries", summarized),
                        (f"all {len(NUMERIC_FIELDS)} numeric columns", len(NUMERIC_FIELDS))):
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        logistic.fit(x[:, :width], y)
        rows[f"logistic regression on {name}"] = roc_auc_score(
            y_test, logistic.predict_proba(x_test[:, :width])[:, 1])
        trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
        trees.fit(x[:, :width], y)
        rows[f"gradient-boosted trees on {name}"] = roc_auc_score(
            y_test, trees.predict_proba(x_test[:, :width])[:, 1])
    return rows


def read_esmm(paths):
    """Features, clicks and above_mean labels (NaN where empty) of every rating."""
    features, clicks, above = [], [], []
    for path in paths:
        with gzip.open(path, "rt", newline="") as f:
            for cells in csv.DictReader(f, delimiter="\t"):
                features.append([float(cells[c]) if cells[c] else 0.0 for c in NUMERIC_FIELDS])
                clicks.append(int(cells["click"]))
                above.append(float(cells["above_mean"]) if cells["above_mean"] else np.nan)
    return np.array(features), np.array(clicks), np.array(above)


def score_esmm(train, test):
    """{baseline: (CTR AUC, CVR AUC given click, CTCVR AUC)}, as ESMM's three eval tasks."""
    def split(x, click, above):
        clicked = (click == 1) & ~np.isnan(above)
        ctcvr_labelled = (click == 0) | clicked
        ctcvr = np.where(click == 1, np.nan_to_num(above), 0.0)
        return clicked, ctcvr_labelled, ctcvr
    (x, click, above), (x_test, click_test, above_test) = train, test
    clicked, labelled, ctcvr = split(x, click, above)
    clicked_test, labelled_test, ctcvr_test = split(x_test, click_test, above_test)

    def aucs(p_ctr, p_cvr, p_ctcvr):
        return (roc_auc_score(click_test, p_ctr),
                roc_auc_score(above_test[clicked_test], p_cvr[clicked_test]),
                roc_auc_score(ctcvr_test[labelled_test], p_ctcvr[labelled_test]))

    mf = x_test[:, NUMERIC_FIELDS.index("mf_rating")]
    rows = {"mf_rating alone": aucs(mf, mf, mf)}
    for name, make in (("logistic regression", lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000))),
                       ("gradient-boosted trees", lambda: HistGradientBoostingClassifier(
                           max_iter=200, learning_rate=0.05, random_state=0))):
        ctr_model, cvr_model, ctcvr_model = make(), make(), make()
        ctr_model.fit(x, click)
        cvr_model.fit(x[clicked], above[clicked])
        ctcvr_model.fit(x[labelled], ctcvr[labelled])
        p_ctr = ctr_model.predict_proba(x_test)[:, 1]
        p_cvr = cvr_model.predict_proba(x_test)[:, 1]
        columns = f"all {len(NUMERIC_FIELDS)} numeric columns"
        rows[f"{name} on {columns}, pCTR * pCVR (pCVR on clicks only)"] = aucs(
            p_ctr, p_cvr, p_ctr * p_cvr)
        rows[f"{name} on {columns}, trained on the CTCVR label"] = aucs(
            p_ctr, p_cvr, ctcvr_model.predict_proba(x_test)[:, 1])
    return rows


def main_esmm(args, parts):
    validation = score_esmm(read_esmm(parts[:-1]), read_esmm(parts[-1:]))
    evaluation = score_esmm(read_esmm(parts),
                            read_esmm([os.path.join(args.data_dir, "eval.tsv.gz")]))
    print("| baseline | validation CTR / CVR given click / CTCVR AUC | eval CTR / CVR given "
          "click / CTCVR AUC |")
    print("|---|---|---|")
    for name in validation:
        print(f"| {name} | " + " / ".join(f"{v:.3f}" for v in validation[name]) + " | " +
              " / ".join(f"{v:.3f}" for v in evaluation[name]) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"baseline": name, "validation_auc": validation[name],
                        "eval_auc": evaluation[name]} for name in validation], f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="granary_movielens_convert's output")
    parser.add_argument("--json", help="also write the table here")
    parser.add_argument("--esmm", action="store_true",
                        help="score the labels of configs/movielens_esmm.pbtxt instead")
    args = parser.parse_args()
    parts = sorted(glob.glob(os.path.join(args.data_dir, "train-*.tsv.gz")))
    if len(parts) < 2:
        parser.error(f"{args.data_dir}: need >= 2 train-NN.tsv.gz files for the validation split")
    if args.esmm:
        main_esmm(args, parts)
        return
    validation = score(read(parts[:-1]), read(parts[-1:]))
    evaluation = score(read(parts), read([os.path.join(args.data_dir, "eval.tsv.gz")]))
    print(f"| click AUC of | validation ({os.path.basename(parts[-1])}) | eval |")
    print("|---|---|---|")
    for name in validation:
        print(f"| {name} | {validation[name]:.3f} | {evaluation[name]:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"baseline": name, "validation_auc": validation[name],
                        "eval_auc": evaluation[name]} for name in validation], f, indent=1)


if __name__ == "__main__":
    main()
