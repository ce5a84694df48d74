#include "scheduler/day_close.h"

#include <signal.h>

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

// The fault_in_close steps (SchedulerOptions).
constexpr const char* kFaultSteps[] = {"shrink",  "export", "checkpoint",
                                       "publish", "report", "publish_error"};
constexpr char kPublishError[] = "publish_error";

// Fault injection: kills this process as kill -9 would, right after `step`, if `fault` names it.
void MaybeDieAfter(const std::string& fault, const char* step) {
  if (fault != step) return;
  LOG(ERROR) << "fault injection (--fault_in_close=" << fault << "): killing the scheduler";
  google::FlushLogFiles(google::GLOG_INFO);
  raise(SIGKILL);
}

// What the publish needs, copied: it runs on the file thread.
struct PublishWork {
  std::string model_dir;  // close_day_into
  std::string day;
  absl::Time started;
  std::vector<proto::Header> answers;
  std::string checkpoint_dir;
  uint64_t manifest_id = 0;
  RemoveTreeFn remove_tree;
  std::string fault;  // fault_in_close
};

// Moves the checkpoint to the base and writes the report.
absl::Status Publish(const PublishWork& work);

}  // namespace

absl::Status CheckCloseFault(const std::string& fault) {
  if (fault.empty()) return absl::OkStatus();
  for (const char* step : kFaultSteps) {
    if (fault == step) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("fault_in_close '", fault, "' is none of: ", absl::StrJoin(kFaultSteps, ", ")));
}

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
    MaybeDieAfter(options_.fault_in_close, "shrink");
    stage_ = Stage::kExport;
  } else {
    MaybeDieAfter(options_.fault_in_close, "export");
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
  MaybeDieAfter(options_.fault_in_close, "checkpoint");
  stage_ = Stage::kPublish;
  PublishWork work{options_.close_day_into,
                   options_.day,
                   started_,
                   answers_,
                   checkpoint.dir,
                   checkpoint.id,
                   options_.remove_tree,
                   options_.fault_in_close};
  LOG(INFO) << "closing day " << options_.day << ": publishing " << checkpoint.dir;
  files_.Post(
      absl::StrCat("publishing day ", options_.day), [work] { return Publish(work); },
      [this](const absl::Status& status) { published_ = status; });
  return std::nullopt;
}

namespace {

// Moves the close's checkpoint in as `base` by one rename. An earlier base of the day (an
// earlier run's) is renamed aside first and removed only once the new one is in: at every
// moment one of them is whole, under one of the two names. If the move fails, the earlier base
// is moved back.
absl::Status MoveBaseIn(const PublishWork& work, const std::filesystem::path& base) {
  namespace fs = std::filesystem;
  const fs::path bases = base.parent_path();
  const fs::path aside = bases / absl::StrCat(".", work.day, ".replaced");
  std::error_code error;
  // The checkpoint's files were synced by the servers; its folder entries are synced here, so
  // the rename moves a durable tree.
  absl::Status synced = SyncPath(work.checkpoint_dir);
  if (!synced.ok()) return synced;
  if (absl::Status removed = RemoveTree(work.remove_tree, aside.string()); !removed.ok()) {
    return removed;  // a leftover of a publish cut short
  }
  const bool replacing = fs::exists(base, error);
  if (replacing) {
    fs::rename(base, aside, error);
    if (error) {
      return absl::UnavailableError(absl::StrCat("cannot move the earlier base ", base.string(),
                                                 " aside to ", aside.string(), ": ",
                                                 error.message()));
    }
  }
  if (work.fault == kPublishError) {
    error = std::make_error_code(std::errc::io_error);
    LOG(ERROR) << "fault injection (--fault_in_close=" << work.fault
               << "): the move of the base fails";
  } else {
    fs::rename(work.checkpoint_dir, base, error);
  }
  if (error) {
    std::error_code restored;
    if (replacing) fs::rename(aside, base, restored);
    return absl::UnavailableError(absl::StrCat("cannot move checkpoint ", work.checkpoint_dir,
                                               " to ", base.string(), ": ", error.message()));
  }
  synced = SyncPath(bases.string());
  if (synced.ok()) synced = SyncPath(fs::path(work.checkpoint_dir).parent_path().string());
  if (!synced.ok()) return synced;
  if (replacing) return RemoveTree(work.remove_tree, aside.string());
  return absl::OkStatus();
}

absl::Status Publish(const PublishWork& work) {
  namespace fs = std::filesystem;
  const fs::path model(work.model_dir);
  const fs::path base = model / "bases" / work.day;
  std::error_code error;
  fs::create_directories(base.parent_path(), error);
  if (!error) fs::create_directories(model / "reports", error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create folders in ", model.string(), ": ", error.message()));
  }
  // The report: per table rows kept and evicted (summed over servers), and the delta files,
  // each with its size, which launch/daily.sh verifies.
  std::map<std::string, std::pair<uint64_t, uint64_t>> tables;  // kept, dropped
  std::vector<std::string> deltas;
  uint64_t delta_rows = 0, delta_tombstones = 0;
  bool already_shrunk = false;
  for (const proto::Header& answer : work.answers) {
    for (const proto::TableShrink& shrink : answer.shrink()) {
      tables[shrink.table()].first += shrink.kept();
      tables[shrink.table()].second += shrink.dropped();
      already_shrunk = already_shrunk || shrink.already_shrunk();
    }
    if (answer.has_delta()) {
      const uintmax_t bytes = fs::file_size(answer.delta().path(), error);
      if (error) {
        return absl::UnavailableError(absl::StrCat("delta file ", answer.delta().path(),
                                                   " of the export is missing: ", error.message()));
      }
      deltas.push_back(absl::StrFormat(
          R"({"path": "%s", "rows": %d, "tombstones": %d, "bytes": %d})", answer.delta().path(),
          answer.delta().rows(), answer.delta().tombstones(), bytes));
      delta_rows += answer.delta().rows();
      delta_tombstones += answer.delta().tombstones();
    }
  }
  if (absl::Status moved = MoveBaseIn(work, base); !moved.ok()) return moved;
  MaybeDieAfter(work.fault, "publish");
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
          " \"base_manifest_id\": %d, \"shrunk_by_an_earlier_run\": %s,\n"
          " \"tables\": [%s],\n \"delta\": {\"rows\": %d, \"tombstones\": %d, \"files\": [%s]}}\n",
          work.day, absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
          absl::ToDoubleSeconds(absl::Now() - work.started), base.string(), work.manifest_id,
          already_shrunk ? "true" : "false", absl::StrJoin(table_lines, ", "), delta_rows,
          delta_tombstones, absl::StrJoin(deltas, ", ")));
  if (!written.ok()) return written;
  MaybeDieAfter(work.fault, "report");
  LOG(INFO) << "day " << work.day << " closed: base " << base.string() << ", report "
            << report.string();
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary
