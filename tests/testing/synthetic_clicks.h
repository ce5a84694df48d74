// A synthetic multi-task click dataset with a known structure, for end-to-end training tests:
// users have a latent preference and items a latent type; a user clicks an item when
// preference . type plus noise is positive, and "score" (a regression task) is the affinity
// itself. Each sample's history is the user's previous events (item, clicked). The last
// kEvalEventsPerUser events of every user are held out for evaluation. A DUPN job over it
// should reach a click AUC of 0.75 or more.
#ifndef GRANARY_TESTS_TESTING_SYNTHETIC_CLICKS_H_
#define GRANARY_TESTS_TESTING_SYNTHETIC_CLICKS_H_

#include <string>

#include "common/proto/config.pb.h"

namespace granary {

constexpr int kUsers = 200;
constexpr int kItems = 80;
constexpr int kTrainEventsPerUser = 50;
constexpr int kEvalEventsPerUser = 10;

// The dataset config (Protobuf text) of the files WriteSyntheticClicks writes.
extern const char kSyntheticClicksDataset[];

// Writes <dir>/train.tsv and <dir>/eval.tsv (deterministic).
void WriteSyntheticClicks(const std::string& dir);

// Tables "emb" (dim 8, Adagrad) and "dense" (Adam) for the job.
proto::ClusterConfig SyntheticClicksClusterConfig();

// The model and training sections of a DUPN job over the dataset (Protobuf text, without
// the dataset): 12 epochs of batches of 32, train.tsv cut into chunks of 8 KiB, metrics to
// out/metrics.jsonl.
extern const char kSyntheticClicksJob[];

// Writes what granary_* processes need to train the job in `dir`: train.tsv (its events
// `copies` times over, for a job long enough to act on while it runs), eval.tsv,
// dataset.pbtxt, job.pbtxt (kSyntheticClicksJob with `epochs` epochs, reading dataset.pbtxt)
// and cluster.pbtxt (SyntheticClicksClusterConfig). A failure fails the calling test.
void WriteSyntheticClicksRun(const std::string& dir, int copies, int epochs);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_SYNTHETIC_CLICKS_H_
