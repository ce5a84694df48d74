#!/usr/bin/env python3
"""A synthetic retrieval stream where DAT's and ATNN's claims can show, with its planted truth.

DAT (Yu et al., 2021) claims its category alignment helps the categories with few
interactions; ATNN (Wang et al., ICDE 2021) claims its generator ranks new items by popularity
from their profile alone. This stream has both situations, drawn from a planted model:

  - categories c0 .. c<K-1>: c0 (the major one) holds --major_share of the items and of the
    users' favourite categories, the others share the rest equally (minor categories);
  - every user u has a favourite category f_u and a latent vector p_u = m_{f_u} + noise, every
    item i a category k_i, a latent vector q_i = m_{k_i} + noise (m_k: a random unit centre
    per category), a tier t_i in 0..--tiers-1 (a side feature) and a bias
        b_i = --tier_weight * (t_i - (tiers - 1) / 2) + --hidden_bias_sd * N(0, 1)
    so an item's appeal is partly predictable from its tier, partly hidden;
  - click probability of user u on item i: sigmoid(--click_bias + --affinity * <p_u, q_i> + b_i).

Time order: --train_rounds rounds (train.tsv), then --eval_rounds rounds (eval.tsv). In each
round every user (in a shuffled order) is shown one warm item: with probability
--favorite_exposure one of their favourite category, otherwise any warm item. The last
--new_items items are NEW: they first appear in the eval period, each shown to
--new_item_impressions users drawn uniformly, at random places among the eval rows. A new
item's planted popularity is therefore its expected click rate over a uniformly drawn user,
mean over all users of the click probability above; its expected clicks in eval.tsv are
--new_item_impressions times that.

Columns (tab-separated, header first):
  click             0/1, drawn from the planted click probability (the retrieval positives)
  user_id           u<N>
  item_id           i<N>
  category          c<K> of the item (c0 the major one)
  tier              t<T> of the item
  item_impressions  log1p(the item's earlier impressions in the stream): 0 at its first one
  item_ctr          (earlier clicks + 1) / (earlier impressions + 2) of the item
The two item_* columns are ATNN's statistics; a new item has none at its first impression.

truth.json holds the planted truth and what simple baselines need:
  categories   per category: item count, share of the users who favour it, train positives
  items        one object per line: item_id, category, tier, new (first seen in eval),
               planted_popularity (mean over users of the click probability), train_positives
               (clicks in train.tsv; 0 for new items), group_ctr_baseline (the train click rate
               of the warm items of the same category and tier: a count baseline of new-item
               popularity from side features), eval_positives

Python 3 standard library only; the same arguments and --seed give the same bytes.

Usage: tests/bench/synthetic_retrieval.py --output_dir=DIR [--seed=1] [--users=400]
         [--items=240] [--new_items=40] [--categories=6] [--major_share=0.7] [--tiers=4]
         [--latent_dim=8] [--train_rounds=30] [--eval_rounds=5] [--new_item_impressions=40]
         [--favorite_exposure=0.5] [--click_bias=-2.5] [--affinity=3.0] [--tier_weight=0.8]
         [--hidden_bias_sd=0.5] [--user_noise=0.3] [--item_noise=0.3]
"""

import argparse
import json
import math
import os
import random

HEADER = ("click", "user_id", "item_id", "category", "tier", "item_impressions", "item_ctr")
# item_ctr's prior: (clicks + CTR_PRIOR_CLICKS) / (impressions + CTR_PRIOR_IMPRESSIONS).
CTR_PRIOR_CLICKS = 1.0
CTR_PRIOR_IMPRESSIONS = 2.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=240, help="items in all, new ones included")
    parser.add_argument("--new_items", type=int, default=40)
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--major_share", type=float, default=0.7)
    parser.add_argument("--tiers", type=int, default=4)
    parser.add_argument("--latent_dim", type=int, default=8)
    parser.add_argument("--train_rounds", type=int, default=30)
    parser.add_argument("--eval_rounds", type=int, default=5)
    parser.add_argument("--new_item_impressions", type=int, default=40)
    parser.add_argument("--favorite_exposure", type=float, default=0.5)
    parser.add_argument("--click_bias", type=float, default=-2.5)
    parser.add_argument("--affinity", type=float, default=3.0)
    parser.add_argument("--tier_weight", type=float, default=0.8)
    parser.add_argument("--hidden_bias_sd", type=float, default=0.5)
    parser.add_argument("--user_noise", type=float, default=0.3)
    parser.add_argument("--item_noise", type=float, default=0.3)
    args = parser.parse_args()
    checks = [
        (args.users >= 2, "--users must be >= 2"),
        (args.categories >= 2, "--categories must be >= 2"),
        (0 < args.major_share < 1, "--major_share must be in (0, 1)"),
        (args.tiers >= 1, "--tiers must be >= 1"),
        (args.latent_dim >= 1, "--latent_dim must be >= 1"),
        (0 <= args.new_items, "--new_items must be >= 0"),
        (args.items - args.new_items >= args.categories,
         "--items - --new_items must leave at least one warm item per category"),
        (args.train_rounds >= 1 and args.eval_rounds >= 1, "--*_rounds must be >= 1"),
        (args.new_item_impressions >= 1, "--new_item_impressions must be >= 1"),
        (0 <= args.favorite_exposure <= 1, "--favorite_exposure must be in [0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return args


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def unit_vector(rng, dim):
    v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def noisy(rng, centre, noise):
    return [c + rng.gauss(0.0, noise / math.sqrt(len(centre))) for c in centre]


def category_of(rng, shares):
    return rng.choices(range(len(shares)), weights=shares)[0]


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    minor_share = (1.0 - args.major_share) / (args.categories - 1)
    shares = [args.major_share] + [minor_share] * (args.categories - 1)
    centres = [unit_vector(rng, args.latent_dim) for _ in range(args.categories)]

    warm = args.items - args.new_items
    # One warm item of each category, so every category has items to show; the rest by share.
    item_category = list(range(args.categories))
    item_category += [category_of(rng, shares) for _ in range(warm - args.categories)]
    rng.shuffle(item_category)
    item_category += [category_of(rng, shares) for _ in range(args.new_items)]
    item_tier = [rng.randrange(args.tiers) for _ in range(args.items)]
    centre_tier = (args.tiers - 1) / 2.0
    item_bias = [args.tier_weight * (t - centre_tier) + rng.gauss(0.0, args.hidden_bias_sd)
                 for t in item_tier]
    item_vector = [noisy(rng, centres[k], args.item_noise) for k in item_category]

    user_favorite = [category_of(rng, shares) for _ in range(args.users)]
    user_vector = [noisy(rng, centres[k], args.user_noise) for k in user_favorite]

    def click_probability(u, i):
        dot = sum(a * b for a, b in zip(user_vector[u], item_vector[i]))
        return sigmoid(args.click_bias + args.affinity * dot + item_bias[i])

    warm_of_category = [[i for i in range(warm) if item_category[i] == k]
                        for k in range(args.categories)]

    impressions = [0] * args.items
    clicks = [0] * args.items
    train_positives = [0] * args.items
    eval_positives = [0] * args.items

    def row(u, i):
        p = click_probability(u, i)
        click = 1 if rng.random() < p else 0
        line = "%d\tu%d\ti%d\tc%d\tt%d\t%.4f\t%.4f\n" % (
            click, u, i, item_category[i], item_tier[i], math.log1p(impressions[i]),
            (clicks[i] + CTR_PRIOR_CLICKS) / (impressions[i] + CTR_PRIOR_IMPRESSIONS))
        impressions[i] += 1
        clicks[i] += click
        return line, click

    def warm_impression(u):
        if rng.random() < args.favorite_exposure:
            return rng.choice(warm_of_category[user_favorite[u]])
        return rng.randrange(warm)

    def rounds(count):
        for _ in range(count):
            users = list(range(args.users))
            rng.shuffle(users)
            for u in users:
                yield u, warm_impression(u)

    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "train.tsv"), "w") as out:
        out.write("\t".join(HEADER) + "\n")
        for u, i in rounds(args.train_rounds):
            line, click = row(u, i)
            train_positives[i] += click
            out.write(line)

    events = list(rounds(args.eval_rounds))
    new_events = [(rng.randrange(args.users), i)
                  for i in range(warm, args.items) for _ in range(args.new_item_impressions)]
    # Place the new items' impressions at uniformly random places among the eval rows.
    slots = sorted(rng.sample(range(len(events) + len(new_events)), len(new_events)))
    rng.shuffle(new_events)
    merged, next_new = [], 0
    for position in range(len(events) + len(new_events)):
        if next_new < len(slots) and slots[next_new] == position:
            merged.append(new_events[next_new])
            next_new += 1
        else:
            merged.append(events[position - next_new])
    with open(os.path.join(args.output_dir, "eval.tsv"), "w") as out:
        out.write("\t".join(HEADER) + "\n")
        for u, i in merged:
            line, click = row(u, i)
            eval_positives[i] += click
            out.write(line)

    # The count baseline of a new item's popularity: the train click rate of warm items of the
    # same category and tier (of the category alone if the group had no impression).
    group_impressions, group_clicks = {}, {}
    category_impressions = [0] * args.categories
    category_clicks = [0] * args.categories
    train_impressions = [0] * args.items
    for i in range(warm):
        key = (item_category[i], item_tier[i])
        group_impressions[key] = group_impressions.get(key, 0)
        group_clicks[key] = group_clicks.get(key, 0)
    with open(os.path.join(args.output_dir, "train.tsv")) as train:
        next(train)
        for line in train:
            cells = line.split("\t")
            i = int(cells[2][1:])
            train_impressions[i] += 1
            key = (item_category[i], item_tier[i])
            group_impressions[key] += 1
            group_clicks[key] += int(cells[0])
            category_impressions[item_category[i]] += 1
            category_clicks[item_category[i]] += int(cells[0])

    def group_ctr(i):
        key = (item_category[i], item_tier[i])
        if group_impressions.get(key, 0) > 0:
            return group_clicks[key] / group_impressions[key]
        k = item_category[i]
        return category_clicks[k] / max(1, category_impressions[k])

    item_lines = []
    for i in range(args.items):
        popularity = sum(click_probability(u, i) for u in range(args.users)) / args.users
        item_lines.append(json.dumps({
            "item_id": "i%d" % i,
            "category": "c%d" % item_category[i],
            "tier": "t%d" % item_tier[i],
            "new": i >= warm,
            "planted_popularity": round(popularity, 6),
            "train_positives": train_positives[i],
            "group_ctr_baseline": round(group_ctr(i), 6),
            "eval_positives": eval_positives[i],
        }, sort_keys=True))
    categories = []
    for k in range(args.categories):
        categories.append(json.dumps({
            "category": "c%d" % k,
            "items": item_category.count(k),
            "user_share": round(user_favorite.count(k) / args.users, 6),
            "train_positives": sum(train_positives[i] for i in range(args.items)
                                   if item_category[i] == k),
        }, sort_keys=True))
    # The arguments that shape the data (not where it was written), so equal sets compare equal.
    planted_arguments = {k: v for k, v in vars(args).items() if k != "output_dir"}
    with open(os.path.join(args.output_dir, "truth.json"), "w") as out:
        out.write('{"arguments": %s,\n "categories": [\n  %s\n ],\n "items": [\n  %s\n ]}\n' % (
            json.dumps(planted_arguments, sort_keys=True), ",\n  ".join(categories),
            ",\n  ".join(item_lines)))


if __name__ == "__main__":
    main()
