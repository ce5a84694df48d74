#!/usr/bin/env python3
"""A synthetic multi-task stream drawn from a planted model whose Bayes scores are known.

Writes tab-separated files (with a header) into --output_dir:
  train-00.tsv .. train-NN.tsv   --train_parts consecutive stretches of the stream
  eval.tsv                       the last --eval_fraction of the stream
  bayes.json                     the planted model's scores of each task on the validation
                                 split (train-NN, the last training part) and on eval.tsv

Columns (every label drawn from the planted model below, so nothing but noise separates a
perfect model from the truth):
  click           0/1 label
  purchase        0/1 label, only observable after a click: empty when click is 0
  purchase_power  class label 0, 1 or 2 (the user's spending tier, drawn per line)
  user_id         u<N>, users drawn uniformly
  user_region     r<N>, one of --regions
  user_activity   the user's earlier visits, an integer with a heavy tail (log-normal)
  hour            0..23, the hour of the impression
  item_id         i<N>, items drawn by a Zipf law of exponent --zipf
  item_category   c<N>, one of --categories
  item_tags       1 to 3 tags t<N> joined by ','
  item_price      a price with a heavy tail (log-normal)
  history         the user's last --history clicked items, oldest first, steps 'item,category'
                  joined by ';' (empty for a user who has not clicked yet)

The planted model (each user u has a latent vector p_u, a region and a wealth w_u; each item
i a latent vector q_i, a bias b_i, a category, tags and a price):
  click logit    = click_bias + b_i + <p_u, q_i> + A[region, category] + mean of the tags'
                   weights + 0.4 (log1p(activity) - mean) - 0.4 (log1p(price) - mean)
                   + 0.8 [category == category of the user's last click] + 0.3 [hour in 18..22]
  purchase logit = purchase_bias + 0.8 w_u - 0.6 (log1p(price) - mean) + 0.5 b_i   (given click)
  purchase_power = softmax over classes c of c * 1.2 w_u - (0, 0.3, 1.2)[c]
so log1p matters for the skewed numeric fields, the sequence carries the last click's
category and the ids carry the latent vectors.

bayes.json holds, per split and task, what the planted probabilities score:
  auc_exact       the expected AUC of ranking by the planted probability p, computed exactly
                  from the p of the split's rows: sum over pairs i != j of p_i (1 - p_j) [p_i >
                  p_j] (ties 1/2) over sum of p_i (1 - p_j); the ceiling of any model's AUC
                  (purchase: over the rows with a click, with p = P(purchase | click))
  auc_realized    the AUC of p against the drawn labels (what a perfect model would measure)
  log_loss        the planted probabilities' log loss on the drawn labels
  accuracy        purchase_power: the share of rows whose drawn class is the most probable one
  count           rows with the label present

Python 3 standard library only; the same --seed gives the same bytes.

Usage: tests/bench/synthetic_stream.py --output_dir=DIR [--rows=150000] [--seed=1]
         [--users=5000] [--items=2000] [--categories=20] [--regions=10] [--tags=30]
         [--latent_dim=4] [--history=10] [--zipf=1.0] [--train_parts=8]
         [--eval_fraction=0.1] [--warmup_fraction=0.2] [--click_bias=-1.0]
         [--purchase_bias=-0.5]
"""

import argparse
import bisect
import itertools
import json
import math
import os
import random

# Strength of each planted effect on the click logit (see the module docstring).
ACTIVITY_WEIGHT = 0.4
PRICE_WEIGHT = 0.4
SAME_CATEGORY_WEIGHT = 0.8
EVENING_WEIGHT = 0.3
EVENING_HOURS = range(18, 23)
REGION_CATEGORY_SCALE = 0.5
TAG_WEIGHT_SCALE = 0.5
ITEM_BIAS_SCALE = 0.5
# Planted effects on the purchase logit, given a click.
WEALTH_WEIGHT = 0.8
PURCHASE_PRICE_WEIGHT = 0.6
PURCHASE_ITEM_BIAS_WEIGHT = 0.5
# purchase_power: class c has logit c * POWER_SLOPE * wealth - POWER_OFFSETS[c].
POWER_SLOPE = 1.2
POWER_OFFSETS = (0.0, 0.3, 1.2)
# Log-normal parameters (of the natural log) of user_activity and item_price.
ACTIVITY_LOG_MEAN, ACTIVITY_LOG_SIGMA = 2.0, 1.5
PRICE_LOG_MEAN, PRICE_LOG_SIGMA = 3.0, 1.0
MAX_TAGS_PER_ITEM = 3


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def softmax(logits):
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def auc_exact(probabilities):
    """Expected AUC of ranking by p when each row is positive with probability p."""
    rows = sorted(probabilities)
    # Pairs (positive i, negative j), i != j: weight p_i (1 - p_j); credit when p_i > p_j,
    # half for ties. Walk groups of equal p in ascending order.
    negative_below = 0.0  # sum of (1 - p_j) over rows with smaller p
    credit = 0.0
    for _, group in itertools.groupby(rows):
        group = list(group)
        p = group[0]
        n = len(group)
        credit += n * p * negative_below
        # Ties within the group, excluding a row paired with itself.
        credit += 0.5 * p * (1 - p) * n * (n - 1)
        negative_below += n * (1 - p)
    total_positive = sum(rows)
    total_negative = len(rows) - total_positive
    self_pairs = sum(p * (1 - p) for p in rows)
    denominator = total_positive * total_negative - self_pairs
    return credit / denominator if denominator > 0 else float("nan")


def auc_realized(scores, labels):
    """AUC of scores against 0/1 labels (ties count 1/2)."""
    pairs = sorted(zip(scores, labels))
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = 0.0
    rank = 1
    for _, group in itertools.groupby(pairs, key=lambda pair: pair[0]):
        group = list(group)
        mean_rank = rank + (len(group) - 1) / 2.0
        rank_sum += mean_rank * sum(label for _, label in group)
        rank += len(group)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(probabilities, labels):
    eps = 1e-12
    total = 0.0
    for p, y in zip(probabilities, labels):
        p = min(max(p, eps), 1 - eps)
        total -= y * math.log(p) + (1 - y) * math.log(1 - p)
    return total / len(labels) if labels else float("nan")


class PlantedModel:
    def __init__(self, args, rng):
        self.args = args
        k = args.latent_dim
        scale = 1.0 / math.sqrt(k) * 1.2
        self.user_latent = [[rng.gauss(0, scale) for _ in range(k)] for _ in range(args.users)]
        self.user_region = [rng.randrange(args.regions) for _ in range(args.users)]
        self.user_wealth = [rng.gauss(0, 1) for _ in range(args.users)]
        self.user_activity = [int(rng.lognormvariate(ACTIVITY_LOG_MEAN, ACTIVITY_LOG_SIGMA))
                              for _ in range(args.users)]
        self.item_latent = [[rng.gauss(0, scale) for _ in range(k)] for _ in range(args.items)]
        self.item_bias = [rng.gauss(0, ITEM_BIAS_SCALE) for _ in range(args.items)]
        self.item_category = [rng.randrange(args.categories) for _ in range(args.items)]
        self.item_tags = [sorted(rng.sample(range(args.tags), rng.randint(1, MAX_TAGS_PER_ITEM)))
                          for _ in range(args.items)]
        self.item_price = [round(rng.lognormvariate(PRICE_LOG_MEAN, PRICE_LOG_SIGMA), 2)
                           for _ in range(args.items)]
        self.region_category = [[rng.gauss(0, REGION_CATEGORY_SCALE)
                                 for _ in range(args.categories)] for _ in range(args.regions)]
        self.tag_weight = [rng.gauss(0, TAG_WEIGHT_SCALE) for _ in range(args.tags)]
        # Zipf popularity of items: the cumulative weights of ranks 1..items, over a random
        # order of the items so that popularity is unrelated to the id.
        self.item_by_rank = list(range(args.items))
        rng.shuffle(self.item_by_rank)
        cumulative, total = [], 0.0
        for rank in range(1, args.items + 1):
            total += rank ** -args.zipf
            cumulative.append(total)
        self.item_cumulative = cumulative
        # Centre the numeric effects on their log-normal means so the biases keep their meaning.
        self.activity_centre = ACTIVITY_LOG_MEAN
        self.price_centre = PRICE_LOG_MEAN

    def draw_item(self, rng):
        at = rng.random() * self.item_cumulative[-1]
        return self.item_by_rank[bisect.bisect_left(self.item_cumulative, at)]

    def click_probability(self, user, item, hour, last_category):
        a = self.args
        logit = a.click_bias + self.item_bias[item]
        logit += sum(x * y for x, y in zip(self.user_latent[user], self.item_latent[item]))
        logit += self.region_category[self.user_region[user]][self.item_category[item]]
        tags = self.item_tags[item]
        logit += sum(self.tag_weight[t] for t in tags) / len(tags)
        logit += ACTIVITY_WEIGHT * (math.log1p(self.user_activity[user]) - self.activity_centre)
        logit -= PRICE_WEIGHT * (math.log1p(self.item_price[item]) - self.price_centre)
        if last_category == self.item_category[item]:
            logit += SAME_CATEGORY_WEIGHT
        if hour in EVENING_HOURS:
            logit += EVENING_WEIGHT
        return sigmoid(logit)

    def purchase_probability(self, user, item):
        a = self.args
        logit = (a.purchase_bias + WEALTH_WEIGHT * self.user_wealth[user]
                 - PURCHASE_PRICE_WEIGHT * (math.log1p(self.item_price[item]) - self.price_centre)
                 + PURCHASE_ITEM_BIAS_WEIGHT * self.item_bias[item])
        return sigmoid(logit)

    def power_probabilities(self, user):
        w = self.user_wealth[user]
        return softmax([c * POWER_SLOPE * w - POWER_OFFSETS[c] for c in range(len(POWER_OFFSETS))])


HEADER = ["click", "purchase", "purchase_power", "user_id", "user_region", "user_activity",
          "hour", "item_id", "item_category", "item_tags", "item_price", "history"]


def split_scores(rows):
    """bayes.json's entry of one split: rows of (p_click, click, p_purchase, purchase, power
    probabilities, power)."""
    p_click = [r[0] for r in rows]
    clicks = [r[1] for r in rows]
    clicked = [r for r in rows if r[1] == 1]
    p_purchase = [r[2] for r in clicked]
    purchases = [r[3] for r in clicked]
    power_hits = sum(1 for r in rows if max(range(len(r[4])), key=r[4].__getitem__) == r[5])
    power_loss = -sum(math.log(r[4][r[5]]) for r in rows) / len(rows)
    return {
        "rows": len(rows),
        "click": {"count": len(rows), "auc_exact": auc_exact(p_click),
                  "auc_realized": auc_realized(p_click, clicks),
                  "log_loss": log_loss(p_click, clicks), "positive_rate": sum(clicks) / len(rows)},
        "purchase": {"count": len(clicked), "auc_exact": auc_exact(p_purchase),
                     "auc_realized": auc_realized(p_purchase, purchases),
                     "log_loss": log_loss(p_purchase, purchases),
                     "positive_rate": sum(purchases) / max(len(clicked), 1)},
        "purchase_power": {"count": len(rows), "accuracy": power_hits / len(rows),
                           "log_loss": power_loss},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--rows", type=int, default=150000, help="rows written (after warm-up)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--tags", type=int, default=30)
    parser.add_argument("--latent_dim", type=int, default=4)
    parser.add_argument("--history", type=int, default=10, help="steps kept in 'history'")
    parser.add_argument("--zipf", type=float, default=1.0, help="item popularity exponent")
    parser.add_argument("--train_parts", type=int, default=8)
    parser.add_argument("--eval_fraction", type=float, default=0.1)
    parser.add_argument("--warmup_fraction", type=float, default=0.2,
                        help="rows drawn first, not written, so that histories exist")
    parser.add_argument("--click_bias", type=float, default=-1.0)
    parser.add_argument("--purchase_bias", type=float, default=-0.5)
    args = parser.parse_args()
    if args.rows < args.train_parts + 1 or args.train_parts < 1:
        parser.error("--rows must exceed --train_parts >= 1")
    if not 0 < args.eval_fraction < 1 or not 0 <= args.warmup_fraction < 1:
        parser.error("--eval_fraction must be in (0, 1) and --warmup_fraction in [0, 1)")

    rng = random.Random(args.seed)
    model = PlantedModel(args, rng)
    os.makedirs(args.output_dir, exist_ok=True)
    histories = [[] for _ in range(args.users)]  # per user: (item, category) clicked, oldest first
    eval_rows = int(args.rows * args.eval_fraction)
    train_rows = args.rows - eval_rows
    part_rows = math.ceil(train_rows / args.train_parts)
    warmup = int(args.rows * args.warmup_fraction)
    paths = [os.path.join(args.output_dir, "train-%02d.tsv" % p) for p in range(args.train_parts)]
    paths.append(os.path.join(args.output_dir, "eval.tsv"))
    validation_rows, eval_scores = [], []
    out = None
    for n in range(-warmup, args.rows):
        user = rng.randrange(args.users)
        item = model.draw_item(rng)
        hour = rng.randrange(24)
        history = histories[user]
        last_category = history[-1][1] if history else None
        p_click = model.click_probability(user, item, hour, last_category)
        p_purchase = model.purchase_probability(user, item)
        power_probabilities = model.power_probabilities(user)
        click = 1 if rng.random() < p_click else 0
        purchase = (1 if rng.random() < p_purchase else 0) if click else None
        power = rng.choices(range(len(power_probabilities)), weights=power_probabilities)[0]
        if n >= 0:
            file_index = args.train_parts if n >= train_rows else n // part_rows
            if n == 0 or (n < train_rows and n % part_rows == 0) or n == train_rows:
                if out:
                    out.close()
                out = open(paths[file_index], "w")
                out.write("\t".join(HEADER) + "\n")
            cells = [str(click), "" if purchase is None else str(purchase), str(power),
                     "u%d" % user, "r%d" % model.user_region[user], str(model.user_activity[user]),
                     str(hour), "i%d" % item, "c%d" % model.item_category[item],
                     ",".join("t%d" % t for t in model.item_tags[item]),
                     "%.2f" % model.item_price[item],
                     ";".join("i%d,c%d" % step for step in history)]
            out.write("\t".join(cells) + "\n")
            scored = (p_click, click, p_purchase, purchase, power_probabilities, power)
            if file_index == args.train_parts:
                eval_scores.append(scored)
            elif file_index == args.train_parts - 1:
                validation_rows.append(scored)
        if click:
            history.append((item, model.item_category[item]))
            del history[:-args.history]
    out.close()
    bayes = {"seed": args.seed, "rows": args.rows,
             "validation": dict(split_scores(validation_rows),
                                file=os.path.basename(paths[args.train_parts - 1])),
             "eval": dict(split_scores(eval_scores), file="eval.tsv")}
    with open(os.path.join(args.output_dir, "bayes.json"), "w") as f:
        json.dump(bayes, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps({split: {task: round(bayes[split][task].get("auc_exact",
                                                                bayes[split][task].get("accuracy")), 4)
                              for task in ("click", "purchase", "purchase_power")}
                      for split in ("validation", "eval")}))


if __name__ == "__main__":
    main()
