// WarningCollector: the text of the WARNING log lines glog writes while it exists, from any
// thread, for tests that check what was logged (and how often).
#ifndef GRANARY_TESTS_TESTING_WARNING_COLLECTOR_H_
#define GRANARY_TESTS_TESTING_WARNING_COLLECTOR_H_

#include <mutex>
#include <string>
#include <vector>

#include "glog/logging.h"

namespace granary {

// Thread-safe.
class WarningCollector : public google::LogSink {
 public:
  WarningCollector() { google::AddLogSink(this); }
  ~WarningCollector() override { google::RemoveLogSink(this); }
  WarningCollector(const WarningCollector&) = delete;
  WarningCollector& operator=(const WarningCollector&) = delete;

  void send(google::LogSeverity severity, const char*, const char*, int,
            const google::LogMessageTime&, const char* message, size_t length) override {
    if (severity != google::GLOG_WARNING) return;
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.emplace_back(message, length);
  }

  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_WARNING_COLLECTOR_H_
