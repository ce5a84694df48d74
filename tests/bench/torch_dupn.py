#!/usr/bin/env python3
"""The DUPN model of configs/movielens_dupn.pbtxt written in PyTorch, for train_bench only.

A one-off comparison, not a project dependency: train_bench runs it when `import torch` works
(Debian 12: apt-get install python3-torch, PyTorch 1.13) and prints its training samples/s on
one core beside Granary's samples/s per worker thread.

Same network as worker/models/dupn_model.h with the sizes of configs/movielens_dupn.pbtxt, same batch
size, same optimizer classes as configs/movielens_dupn_cluster.pbtxt (Adagrad on the
embeddings, Adam on the dense weights), same data (the TSV files granary_movielens_convert
writes). Tokens get an embedding row per (hash space, token), so the history's movies and
genres share rows with the target's, as Granary's hash_space does. Batches are built before
timing (Granary's reader parses on its own thread); timing covers forward, backward and the
optimizer steps only.

Prints one JSON line: best_samples_per_second (the best epoch's, the least disturbed by other
load), per-epoch figures, the click AUC on the eval file (a check that this model learns like
Granary's) and torch's version.
"""

import argparse
import csv
import glob
import gzip
import json
import time

import torch
from torch import nn

USER_FIELDS = ["user_id", "gender", "age", "occupation", "zip3"]
ITEM_FIELDS = ["movie_id", "genres", "year"]  # genres is a list, mean-pooled
# numeric_fields: as they are (empty = 0), into the user MLP and every head.
NUMERIC_FIELDS = ["movie_count", "movie_mean", "user_count", "user_mean", "user_bias",
                  "user_genre_mean", "movie_age", "history_co_rated_mean", "item_cf_mean",
                  "history_mean", "history_last", "history_liked", "history_recent_mean",
                  "mf_rating", "mf_rated_similarity", "mf_liked_affinity", "ease_liked_score"]
# A history step is movie,genre and these numbers (rating_vs_mean, rating_vs_movie_mean,
# similarity), which enter the LSTM as they are.
STEP_NUMERICS = 3
HASH_SPACE = {"movie_id": "movie_id", "genres": "genre", "genre": "genre"}
MAX_HISTORY = 20


class Vocabulary:
    """Row ids per (hash space, token); row 0 is padding and stays unused."""

    def __init__(self):
        self.ids = {}

    def row(self, field, token):
        key = (HASH_SPACE.get(field, field), token)
        if key not in self.ids:
            self.ids[key] = len(self.ids) + 1
        return self.ids[key]


def read_samples(path, vocab):
    samples = []
    with gzip.open(path, "rt", newline="") as f:
        for cells in csv.DictReader(f, delimiter="\t"):
            history = [step.split(",") for step in cells["history"].split(";") if step]
            history = history[-MAX_HISTORY:]
            samples.append({
                "user": [vocab.row(f, cells[f]) for f in USER_FIELDS],
                "movie": vocab.row("movie_id", cells["movie_id"]),
                "genres": [vocab.row("genres", g) for g in cells["genres"].split(",") if g],
                "year": vocab.row("year", cells["year"]),
                "numeric": [float(cells[f]) if cells[f] else 0.0 for f in NUMERIC_FIELDS],
                "steps": [(vocab.row("movie_id", m), vocab.row("genre", g),
                           [float(v) for v in numbers])
                          for m, g, *numbers in history],
                "click": float(cells["click"]),
                "rating": int(float(cells["rating_class"])),
                "above": float(cells["above_mean"]) if cells["above_mean"] else -1.0,
            })
    return samples


def make_batch(samples):
    n = len(samples)
    longest = max(1, max(len(s["steps"]) for s in samples))
    most_genres = max(1, max(len(s["genres"]) for s in samples))
    step_movies = torch.zeros(n, longest, dtype=torch.long)
    step_genres = torch.zeros(n, longest, dtype=torch.long)
    step_ratings = torch.zeros(n, longest, STEP_NUMERICS)
    genres = torch.zeros(n, most_genres, dtype=torch.long)
    for b, s in enumerate(samples):
        for t, (m, g, numbers) in enumerate(s["steps"]):
            step_movies[b, t], step_genres[b, t] = m, g
            step_ratings[b, t] = torch.tensor(numbers)
        genres[b, :len(s["genres"])] = torch.tensor(s["genres"], dtype=torch.long)
    above = torch.tensor([s["above"] for s in samples])
    return {
        "user": torch.tensor([s["user"] for s in samples], dtype=torch.long),
        "movie": torch.tensor([s["movie"] for s in samples], dtype=torch.long),
        "year": torch.tensor([s["year"] for s in samples], dtype=torch.long),
        "numeric": torch.tensor([s["numeric"] for s in samples]),
        "genres": genres,
        "genre_mask": (genres > 0).float(),
        "step_movies": step_movies,
        "step_genres": step_genres,
        "step_ratings": step_ratings,
        "lengths": torch.tensor([len(s["steps"]) for s in samples]),
        "click": torch.tensor([s["click"] for s in samples]),
        "rating": torch.tensor([s["rating"] for s in samples], dtype=torch.long),
        "above": above.clamp(min=0),
        "has_above": (above >= 0).float(),
    }


class Dupn(nn.Module):
    def __init__(self, rows, dim=16, lstm_hidden=32, attention_hidden=32, user_mlp=64, head=32):
        super().__init__()
        self.embedding = nn.Embedding(rows, dim, sparse=True)
        nn.init.normal_(self.embedding.weight, std=0.05)
        item_width = len(ITEM_FIELDS) * dim
        self.lstm = nn.LSTM(2 * dim + STEP_NUMERICS, lstm_hidden, batch_first=True)
        self.state_proj = nn.Linear(lstm_hidden, attention_hidden, bias=False)
        self.query_proj = nn.Linear(item_width, attention_hidden)
        self.score = nn.Linear(attention_hidden, 1, bias=False)
        self.user_mlp = nn.Sequential(
            nn.Linear(len(USER_FIELDS) * dim + lstm_hidden + len(NUMERIC_FIELDS), user_mlp),
            nn.ReLU())
        width = user_mlp + item_width + len(NUMERIC_FIELDS)
        self.heads = nn.ModuleList([
            nn.Sequential(nn.Linear(width, head), nn.ReLU(), nn.Linear(head, out))
            for out in (1, 5, 1)])

    def forward(self, batch):
        emb = self.embedding
        n = batch["user"].shape[0]
        profile = emb(batch["user"]).reshape(n, -1)
        mask = batch["genre_mask"].unsqueeze(-1)
        genres = (emb(batch["genres"]) * mask).sum(1) / mask.sum(1).clamp(min=1)
        item = torch.cat([emb(batch["movie"]), genres, emb(batch["year"])], dim=1)
        steps = torch.cat([emb(batch["step_movies"]), emb(batch["step_genres"]),
                           batch["step_ratings"]], dim=2)
        states, _ = self.lstm(steps)
        valid = (torch.arange(steps.shape[1]).unsqueeze(0) <
                 batch["lengths"].unsqueeze(1)).float()
        scores = self.score(torch.tanh(self.state_proj(states) +
                                       self.query_proj(item).unsqueeze(1))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(valid == 0, -1e30), dim=1) * valid
        pooled = (weights.unsqueeze(-1) * states).sum(1)
        numeric = batch["numeric"]
        user = self.user_mlp(torch.cat([profile, pooled, numeric], dim=1))
        head_input = torch.cat([user, item, numeric], dim=1)
        return [h(head_input) for h in self.heads]


def loss_of(outputs, batch):
    bce = nn.functional.binary_cross_entropy_with_logits
    click = bce(outputs[0].squeeze(1), batch["click"])
    rating = nn.functional.cross_entropy(outputs[1], batch["rating"])
    per_sample = bce(outputs[2].squeeze(1), batch["above"], reduction="none")
    above = (per_sample * batch["has_above"]).sum() / batch["has_above"].sum().clamp(min=1)
    return click + 0.5 * rating + 0.5 * above


def auc(scores, labels):
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    positives = labels > 0.5
    n_pos, n_neg = positives.sum().item(), (~positives).sum().item()
    return (ranks[positives].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="granary_movielens_convert's output")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    vocab = Vocabulary()
    train = []
    for path in sorted(glob.glob(f"{args.data_dir}/train-*.tsv.gz")):
        train += read_samples(path, vocab)
    evaluation = read_samples(f"{args.data_dir}/eval.tsv.gz", vocab)
    size = args.batch_size
    train_batches = [make_batch(train[i:i + size]) for i in range(0, len(train), size)]
    eval_batches = [make_batch(evaluation[i:i + size]) for i in range(0, len(evaluation), size)]

    model = Dupn(len(vocab.ids) + 1)
    sparse = [model.embedding.weight]
    dense = [p for name, p in model.named_parameters() if not name.startswith("embedding")]
    optimizers = [torch.optim.Adagrad(sparse, lr=0.05, initial_accumulator_value=0.1),
                  torch.optim.Adam(dense, lr=0.001)]
    epochs = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for batch in train_batches:
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss_of(model(batch), batch).backward()
            for optimizer in optimizers:
                optimizer.step()
        seconds = time.perf_counter() - start
        epochs.append({"samples": len(train), "seconds": seconds,
                       "samples_per_second": len(train) / seconds})
    with torch.no_grad():
        scores = torch.cat([model(b)[0].squeeze(1) for b in eval_batches])
        labels = torch.cat([b["click"] for b in eval_batches])
    best = max(epoch["samples_per_second"] for epoch in epochs)
    print(json.dumps({"best_samples_per_second": best,
                      "threads": args.threads, "batch_size": size, "epochs": epochs,
                      "click_auc": auc(scores, labels), "torch_version": torch.__version__}))


if __name__ == "__main__":
    main()
