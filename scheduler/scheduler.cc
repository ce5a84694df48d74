#include "scheduler/scheduler.h"

#include "scheduler/scheduler_impl.h"

namespace granary {

Scheduler::Scheduler(zmq::context_t* context, SchedulerOptions options)
    : impl_(std::make_unique<SchedulerImpl>(context, std::move(options))) {}

Scheduler::~Scheduler() = default;

absl::Status Scheduler::Run() { return impl_->Run(); }

void Scheduler::RequestStop() { impl_->RequestStop(); }

int Scheduler::port() const { return impl_->port(); }

}  // namespace granary
