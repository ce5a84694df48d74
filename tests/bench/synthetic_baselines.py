#!/usr/bin/env python3
"""Simple baselines on the synthetic stream of tests/bench/synthetic_stream.py: no model, only
counts of the training files, scored on the same splits as tests/bench/describe_sweep.sh.

  validation  counts of train-00..06, scored on train-07
  eval        counts of every train file, scored on eval.tsv

click and purchase (AUC; purchase over the rows with a click):
  item rate       the item's smoothed rate in the training files
  user rate       the user's smoothed rate
  user + item     the sum of both rates' log-odds
purchase_power (accuracy):
  majority        the most frequent class of the training files
  user majority   the user's most frequent class (the majority class for a new user)

Usage: tests/bench/synthetic_baselines.py --data_dir=DIR   (Python 3 standard library only)
"""

import argparse
import collections
import glob
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic_stream import auc_realized  # noqa: E402

# Additive smoothing of a rate towards the global rate, in pseudo-counts.
PRIOR_COUNT = 5.0


def read(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            yield dict(zip(header, line.rstrip("\n").split("\t")))


class Rate:
    def __init__(self):
        self.hits = collections.Counter()
        self.counts = collections.Counter()

    def add(self, key, label):
        self.counts[key] += 1
        self.hits[key] += label

    def of(self, key, prior):
        return (self.hits[key] + PRIOR_COUNT * prior) / (self.counts[key] + PRIOR_COUNT)


def logit(p):
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def scores(train_files, eval_file):
    rates = {task: {side: Rate() for side in ("item_id", "user_id")}
             for task in ("click", "purchase")}
    totals = {task: [0, 0] for task in ("click", "purchase")}
    power_overall = collections.Counter()
    power_by_user = collections.defaultdict(collections.Counter)
    for path in train_files:
        for row in read(path):
            for task in ("click", "purchase"):
                if row[task] == "":
                    continue
                label = int(row[task])
                totals[task][0] += label
                totals[task][1] += 1
                for side in ("item_id", "user_id"):
                    rates[task][side].add(row[side], label)
            power_overall[row["purchase_power"]] += 1
            power_by_user[row["user_id"]][row["purchase_power"]] += 1
    result = {}
    rows = list(read(eval_file))
    for task in ("click", "purchase"):
        prior = totals[task][0] / max(totals[task][1], 1)
        labelled = [r for r in rows if r[task] != ""]
        labels = [int(r[task]) for r in labelled]
        item = [rates[task]["item_id"].of(r["item_id"], prior) for r in labelled]
        user = [rates[task]["user_id"].of(r["user_id"], prior) for r in labelled]
        both = [logit(i) + logit(u) for i, u in zip(item, user)]
        result[task] = {"item rate": auc_realized(item, labels),
                        "user rate": auc_realized(user, labels),
                        "user + item": auc_realized(both, labels)}
    majority = power_overall.most_common(1)[0][0]
    hits = sum(1 for r in rows if r["purchase_power"] == majority)
    user_hits = sum(1 for r in rows
                    if r["purchase_power"] == (power_by_user[r["user_id"]].most_common(1)[0][0]
                                               if power_by_user[r["user_id"]] else majority))
    result["purchase_power"] = {"majority": hits / len(rows), "user majority": user_hits / len(rows)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    args = parser.parse_args()
    train = sorted(glob.glob(os.path.join(args.data_dir, "train-*.tsv")))
    splits = {"validation": scores(train[:-1], train[-1]),
              "eval": scores(train, os.path.join(args.data_dir, "eval.tsv"))}
    for task in ("click", "purchase", "purchase_power"):
        for baseline in splits["eval"][task]:
            print("%-15s %-14s validation %.4f  eval %.4f" % (
                task, baseline, splits["validation"][task][baseline], splits["eval"][task][baseline]))


if __name__ == "__main__":
    main()
