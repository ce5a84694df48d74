#include "scheduler/day_close.h"

#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "glog/logging.h"
#include "scheduler/checkpoint_store.h"

namespace granary {
namespace {

// What the publish needs, copied: it runs on the file thread.
struct PublishWork {
  std::string model_dir;  // close_day_into
  std::string day;
  absl::Time started;
  std::vector<proto::Header> answers;
  std::string checkpoint_dir;
  RemoveTreeFn remove_tree;
};

// Moves the checkpoint to the base and writes the report.
absl::Status Publish(const PublishWork& work);

}  // namespace

DayClose::DayClose(const SchedulerOptions& options, SchedulerSocket& socket, ServerOrders& orders,
                   CheckpointCoordinator& checkpoints, FileWorker& files)
    : options_(options),
      socket_(socket),
      orders_(orders),
      checkpoints_(checkpoints),
      files_(files) {}

void DayClose::Begin() {
  LOG(INFO) << "all workers finished their jobs: closing day " << options_.day;
  stage_ = Stage::kShrink;
  started_ = absl::Now();
}

absl::Status DayClose::Fail(const absl::Status& error) {
  absl::Status failed = absl::Status(
      error.code(), absl::StrCat("closing day ", options_.day, " failed: ", error.message()));
  LOG(ERROR) << failed.message();
  stage_ = Stage::kDone;
  return failed;
}

std::optional<absl::Status> DayClose::Advance() {
  if (stage_ == Stage::kPublish) {
    if (!published_.has_value()) return std::nullopt;  // the file thread is still at it
    stage_ = Stage::kDone;
    if (!published_->ok()) return Fail(*published_);
    return absl::OkStatus();
  }
  if (stage_ != Stage::kShrink && stage_ != Stage::kExport) return std::nullopt;
  if (checkpoints_.in_progress()) return std::nullopt;  // let it finish
  const proto::Command command = stage_ == Stage::kShrink ? proto::SHRINK : proto::EXPORT_DELTA;
  if (!orders_.busy()) {
    proto::Header order = socket_.NewHeader(command);
    order.set_export_dir(absl::StrCat(options_.close_day_into, "/deltas/", options_.day));
    LOG(INFO) << "closing day " << options_.day << ": " << proto::Command_Name(command);
    orders_.Send(std::move(order));
    return std::nullopt;
  }
  if (absl::Status error = orders_.Error(); !error.ok()) return Fail(error);
  if (!orders_.Complete()) return std::nullopt;
  for (const auto& [rank, answer] : orders_.answers()) answers_.push_back(answer);
  orders_.Finish();
  if (stage_ == Stage::kShrink) {
    stage_ = Stage::kExport;
  } else {
    // The close goes on when this checkpoint ends (CheckpointEnded).
    stage_ = Stage::kCheckpoint;
    checkpoints_.Request(absl::StrCat("day ", options_.day, " closed"));
  }
  return std::nullopt;
}

std::optional<absl::Status> DayClose::CheckpointEnded(
    const CheckpointCoordinator::Outcome& checkpoint) {
  if (stage_ != Stage::kCheckpoint) return std::nullopt;
  if (!checkpoint.status.ok()) return Fail(checkpoint.status);
  stage_ = Stage::kPublish;
  PublishWork work{options_.close_day_into, options_.day,        started_, answers_,
                   checkpoint.dir,          options_.remove_tree};
  LOG(INFO) << "closing day " << options_.day << ": publishing " << checkpoint.dir;
  files_.Post(
      absl::StrCat("publishing day ", options_.day), [work] { return Publish(work); },
      [this](const absl::Status& status) { published_ = status; });
  return std::nullopt;
}

namespace {

absl::Status Publish(const PublishWork& work) {
  namespace fs = std::filesystem;
  const std::string& checkpoint_dir = work.checkpoint_dir;
  const fs::path model(work.model_dir);
  const fs::path base = model / "bases" / work.day;
  std::error_code error;
  fs::create_directories(base.parent_path(), error);
  fs::create_directories(model / "reports", error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create folders in ", model.string(), ": ", error.message()));
  }
  // A base of this day from an earlier run of it is replaced: re-running a day is idempotent.
  if (absl::Status removed = RemoveTree(work.remove_tree, base.string()); !removed.ok()) {
    return removed;
  }
  fs::rename(checkpoint_dir, base, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot move checkpoint ", checkpoint_dir, " to ",
                                               base.string(), ": ", error.message()));
  }
  // The report: per table rows kept and evicted (summed over servers), and the delta files.
  std::map<std::string, std::pair<uint64_t, uint64_t>> tables;  // kept, dropped
  std::vector<std::string> deltas;
  uint64_t delta_rows = 0, delta_tombstones = 0;
  for (const proto::Header& answer : work.answers) {
    for (const proto::TableShrink& shrink : answer.shrink()) {
      tables[shrink.table()].first += shrink.kept();
      tables[shrink.table()].second += shrink.dropped();
    }
    if (answer.has_delta()) {
      deltas.push_back(absl::StrCat("\"", answer.delta().path(), "\""));
      delta_rows += answer.delta().rows();
      delta_tombstones += answer.delta().tombstones();
    }
  }
  std::vector<std::string> table_lines;
  for (const auto& [name, counts] : tables) {
    table_lines.push_back(absl::StrFormat(R"({"table": "%s", "rows_kept": %d, "rows_evicted": %d})",
                                          name, counts.first, counts.second));
  }
  const fs::path report = model / "reports" / absl::StrCat(work.day, ".close.json");
  absl::Status written = WriteFileAtomically(
      report.string(),
      absl::StrFormat(
          "{\"day\": \"%s\", \"closed\": \"%s\", \"close_seconds\": %.3f, \"base\": \"%s\",\n"
          " \"tables\": [%s],\n \"delta\": {\"rows\": %d, \"tombstones\": %d, \"files\": [%s]}}\n",
          work.day, absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
          absl::ToDoubleSeconds(absl::Now() - work.started), base.string(),
          absl::StrJoin(table_lines, ", "), delta_rows, delta_tombstones,
          absl::StrJoin(deltas, ", ")));
  if (!written.ok()) return written;
  LOG(INFO) << "day " << work.day << " closed: base " << base.string() << ", report "
            << report.string();
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary
