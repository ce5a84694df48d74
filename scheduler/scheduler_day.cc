// Scheduler: closing a training day (see SchedulerOptions::close_day_into).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/node_name.h"
#include "glog/logging.h"
#include "scheduler/scheduler.h"

namespace granary {

void Scheduler::AdvanceDayClose() {
  if (day_close_ == DayClose::kNotYet || day_close_ == DayClose::kDone || shutting_down_) return;
  if (checkpoint_.has_value() && day_close_ != DayClose::kCheckpoint) return;  // let it finish
  auto fail = [this](const absl::Status& error) {
    run_outcome_ = absl::Status(
        error.code(), absl::StrCat("closing day ", options_.day, " failed: ", error.message()));
    LOG(ERROR) << run_outcome_.message();
    day_close_ = DayClose::kDone;
    StartShutdown(std::string(run_outcome_.message()));
  };
  if (day_close_ == DayClose::kShrink || day_close_ == DayClose::kExport) {
    const proto::Command command =
        day_close_ == DayClose::kShrink ? proto::SHRINK : proto::EXPORT_DELTA;
    if (!round_.has_value()) {
      proto::Header order = NewHeader(command);
      order.set_export_dir(absl::StrCat(options_.close_day_into, "/deltas/", options_.day));
      LOG(INFO) << "closing day " << options_.day << ": " << proto::Command_Name(command);
      SendOrderToServers(std::move(order));
      return;
    }
    if (absl::Status error = RoundError(); !error.ok()) {
      fail(error);
      return;
    }
    if (!RoundComplete()) return;
    for (auto& [rank, answer] : round_->answers) day_close_answers_.push_back(answer);
    round_.reset();
    if (day_close_ == DayClose::kShrink) {
      day_close_ = DayClose::kExport;
    } else {
      day_close_ = DayClose::kCheckpoint;
      RequestCheckpoint(absl::StrCat("day ", options_.day, " closed"));
    }
  }
  // kCheckpoint goes on in FinishCheckpoint, which calls back into DayCheckpointDone.
}

absl::Status Scheduler::PublishDay(const std::string& checkpoint_dir) {
  namespace fs = std::filesystem;
  const fs::path model(options_.close_day_into);
  const fs::path base = model / "bases" / options_.day;
  std::error_code error;
  fs::create_directories(base.parent_path(), error);
  fs::create_directories(model / "reports", error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create folders in ", model.string(), ": ", error.message()));
  }
  // A base of this day from an earlier run of it is replaced: re-running a day is idempotent.
  fs::remove_all(base, error);
  fs::rename(checkpoint_dir, base, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot move checkpoint ", checkpoint_dir, " to ",
                                               base.string(), ": ", error.message()));
  }
  // The report: per table rows kept and evicted (summed over servers), and the delta files.
  std::map<std::string, std::pair<uint64_t, uint64_t>> tables;  // kept, dropped
  std::vector<std::string> deltas;
  uint64_t delta_rows = 0, delta_tombstones = 0;
  for (const proto::Header& answer : day_close_answers_) {
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
  const fs::path report = model / "reports" / absl::StrCat(options_.day, ".close.json");
  absl::Status written = WriteFileAtomically(
      report.string(),
      absl::StrFormat(
          "{\"day\": \"%s\", \"closed\": \"%s\", \"close_seconds\": %.3f, \"base\": \"%s\",\n"
          " \"tables\": [%s],\n \"delta\": {\"rows\": %d, \"tombstones\": %d, \"files\": [%s]}}\n",
          options_.day, absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
          absl::ToDoubleSeconds(absl::Now() - day_close_started_), base.string(),
          absl::StrJoin(table_lines, ", "), delta_rows, delta_tombstones,
          absl::StrJoin(deltas, ", ")));
  if (!written.ok()) return written;
  LOG(INFO) << "day " << options_.day << " closed: base " << base.string() << ", report "
            << report.string();
  return absl::OkStatus();
}

}  // namespace granary
