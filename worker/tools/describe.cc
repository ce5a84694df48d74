#include "worker/tools/describe.h"

#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/config.h"
#include "google/protobuf/text_format.h"
#include "worker/job_config.h"
#include "worker/line_source.h"

namespace granary {
namespace {

// `lines` as Protobuf text-format comments.
std::string Comment(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) absl::StrAppend(&text, "# ", line, "\n");
  return text;
}

absl::StatusOr<std::string> TextOf(const google::protobuf::Message& message) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(message, &text)) {
    return absl::InternalError(absl::StrCat("cannot print a ", message.GetTypeName()));
  }
  return text;
}

// A config that fails the rules its role loads it with is a bug of the guessing rules.
absl::Status Internal(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::InternalError(
      absl::StrCat("granary_describe wrote a config its readers refuse: ", status.message()));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Describe(const DescribeRun& run) {
  if (run.sample_lines == 0) return absl::InvalidArgumentError("sample_lines must be >= 1");
  absl::StatusOr<LineSource> source = LineSource::Open(run.input, kDefaultMaxLineBytes);
  if (!source.ok()) return source.status();
  std::string_view line;
  if (!source->NextLine(&line)) {
    if (!source->status().ok()) return source->status();
    return absl::InvalidArgumentError(absl::StrCat(run.input, ": empty file, no header line"));
  }
  const std::string header(line);
  std::vector<std::string> lines;
  while (lines.size() < run.sample_lines && source->NextLine(&line)) {
    if (!source->line_too_long()) lines.emplace_back(line);
  }
  if (!source->status().ok()) return source->status();

  absl::StatusOr<DatasetGuess> guess = GuessDataset(header, lines, run.input, run.guess);
  if (!guess.ok()) return guess.status();
  StarterOptions starter_options = run.starter;
  starter_options.dataset_config = kDescribedDatasetFile;
  absl::StatusOr<StarterConfigs> starter = MakeStarterConfigs(*guess, starter_options);
  if (!starter.ok()) return starter.status();

  absl::Status status = Internal(ValidateDatasetConfig(guess->dataset, kDescribedDatasetFile,
                                                       /*tree=*/nullptr));
  if (status.ok()) {
    status = Internal(ValidateJobConfig(starter->job, guess->dataset, kDescribedJobFile,
                                        /*tree=*/nullptr));
  }
  if (status.ok()) {
    status =
        Internal(ValidateClusterConfig(starter->cluster, kDescribedClusterFile, /*tree=*/nullptr));
  }
  if (!status.ok()) return status;

  std::error_code error;
  std::filesystem::create_directories(run.output_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat(run.output_dir, ": cannot create the folder: ", error.message()));
  }
  const std::string source_note =
      absl::StrCat("Written by granary_describe from ", run.input, " (header and ", lines.size(),
                   " lines). Guesses; edit freely.");
  struct ConfigFile {
    const char* name;
    const google::protobuf::Message* config;
    std::vector<std::string> notes;
  };
  const ConfigFile configs[] = {{kDescribedDatasetFile, &guess->dataset, guess->reasons},
                                {kDescribedJobFile, &starter->job, starter->reasons},
                                {kDescribedClusterFile, &starter->cluster, {}}};
  std::vector<std::pair<const char*, std::string>> files;
  for (const ConfigFile& config : configs) {
    absl::StatusOr<std::string> text = TextOf(*config.config);
    if (!text.ok()) return text.status();
    std::vector<std::string> comment = {source_note};
    comment.insert(comment.end(), config.notes.begin(), config.notes.end());
    files.emplace_back(config.name, absl::StrCat(Comment(comment), *text));
  }
  for (const auto& [name, contents] : files) {
    status = WriteFileAtomically((std::filesystem::path(run.output_dir) / name).string(), contents);
    if (!status.ok()) return status;
  }
  std::vector<std::string> report = guess->reasons;
  report.insert(report.end(), starter->reasons.begin(), starter->reasons.end());
  report.push_back(absl::StrCat(
      "wrote ",
      absl::StrJoin({kDescribedDatasetFile, kDescribedJobFile, kDescribedClusterFile}, ", "),
      " into ", run.output_dir));
  return report;
}

}  // namespace granary
