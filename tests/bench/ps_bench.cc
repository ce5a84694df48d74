// ps_bench: push, pull and push+pull round-trip throughput of Granary's data plane, in
// ps-lite's terms, beside a raw ZeroMQ transfer of the same bytes and beside ps-lite itself,
// run in the same slices.
//
// The whole cluster runs inside this process — a scheduler, --servers parameter servers and
// --workers workers — but every node talks TCP over 127.0.0.1 exactly as separate processes
// would (tests/testing/in_process_cluster.h), so what is timed is the real path: KVWorker
// slicing and framing, the calling thread's own sockets, loopback TCP, the server's forwarding
// and handler threads, and back.
//
// Each workload (keys per request x floats per key) is timed for three ops, each a blocking
// round trip: push (Push + Wait), pull (Pull + Wait) and push+pull (both, one after the
// other). Two server modes run side by side:
//   transport  ServerOptions::apply_updates = false: requests are validated and acknowledged
//              without touching tables. ps-lite's benchmark uses an empty server handler, so
//              this is the apples-to-apples comparison with it.
//   table      a real SGD table (ZEROS initializer) applies every push and serves every pull.
// Every workload gets fresh clusters (one per mode, a table per row width), as it gets a fresh
// raw pair: connections that carried the earlier workloads' 48 MB requests made later 720 KB
// requests measurably slower than on new ones (10K x 16 pull 0.54-0.65x raw against 0.71-0.97x),
// which compared Granary's old connections with the raw pair's new ones. Warmup pushes every
// key first, so a table-mode row times updates of rows that exist, not their creation.
// The raw pair and both modes are timed in interleaved slices (--slices), so that load from
// elsewhere on the machine hits all of them alike and the ratios between them stay meaningful.
// A slice times every op in turn (push, pull, push+pull; raw, then each cluster).
//
// ps-lite beside us (--peer): for ps-lite's own rows (1K, 160K, 1M and 4M keys x 1 float) each
// slice starts with a peer turn: --peer_script (../shared/peers/pslite_bench.sh, which builds
// ps-lite's test_kv_app_benchmark once and runs its scheduler, server with an empty handler and
// worker on 127.0.0.1) runs as a child process with --cases "KEYS:REPEATS" --json FILE, and
// times REPEATS pushes then REPEATS pulls; REPEATS is chosen so that each op takes about
// --min_seconds / --slices, as ours do (and at most as many ops as ours per slice). So the order
// is peer, ours, peer, ours, and vs_ps compares figures taken minutes, not days, apart. Only
// runs of ps-lite's shape (--servers=1 --workers=1, the defaults) run the peer. If the
// script is missing or a turn fails or overruns --peer_turn_seconds, one line says
// "ps-lite: not measured: ..." and why, the rest of the run goes on without the peer, and the
// run still succeeds. ps-lite's scheduler listens on the fixed port 8000: ps_bench runs one peer
// turn at a time, but two ps_bench runs with the peer (or anything else running
// pslite_bench.sh) must not overlap; run them under one lock, e.g. flock /tmp/pslite.lock.
//
// What CURVE costs (--auth): each mode runs as two clusters, one unauthenticated ("off": no
// CURVE on any socket, as the roles' --insecure_no_auth) and one authenticated exactly as
// production is ("curve": every TCP link CURVE-encrypted with one cluster keypair generated for
// the run, a ZapHandler admitting only its holders; common/curve_keys.h). They take turns in the
// same slices (off, curve, off, curve, ...), and each curve row also shows the off row's goodput
// and the ratio curve/off; a table of the ratios closes the run. The raw pair is never
// authenticated.
//
// Columns:
//   bytes/op   keys x (8 + 4 x dim): the keys and values one request carries (ps-lite's
//              "num x 12 bytes" for one float per key, as pslite_bench.sh counts them). A push+pull
//              round trip counts twice.
//   median_ms  median latency of one op, all workers' samples pooled.
//   ops/s      ops completed by all workers together per wall-clock second.
//   GB/s       goodput: ops/s x bytes/op / 1e9.
//   raw GB/s   the same exchange over a bare ZeroMQ DEALER->ROUTER pair (RawZmqPair below),
//              measured in this run (push+pull derived from push and pull, see
//              RawPushPullGbps); vs_raw = GB/s / raw GB/s. One ROUTER thread serves all
//              --workers clients, so the ratio is cleanest with one server and one worker.
//   tcp_raw    with --ipc (the default: workers reach their servers over ipc, as same-host
//              workers do in production), the raw pair over loopback TCP as well; vs_tcp = GB/s /
//              tcp_raw GB/s. raw GB/s is then the pair over ipc. --ipc=false times TCP only.
//   ps-lite    ps-lite's goodput for the same workload and op, measured in the peer turns of
//              the same slices (push and pull of ps-lite's rows only; "-" elsewhere or when the
//              peer was not measured); vs_ps = GB/s / ps-lite. ps-lite has no authentication,
//              so the fair ratio is an "off" row's; a curve row's is for information. The
//              closing table "Beside ps-lite (this run)" lists each row's ratio per slice (our
//              slice against the peer turn just before it) and their range.
//   auth       off or curve (see above); vs_off = a curve row's GB/s / the off row's of the same
//              workload, op and mode, timed in the same turns.
// The closing table "Median latency beside the raw pair" sets each row's median round trip
// beside the raw pair's (a push+pull's raw figure: raw push plus raw pull), the steadier
// measure of per-request cost on a machine that others load.
//
// Usage:
//   ps_bench                        the standard suite (ps-lite's rows, 10K x 16, 4 and 16 MB)
//   ps_bench --peer=off             without ps-lite
//   ps_bench --quick                a smoke test: 1K x 1 and 10K x 16, 0.2 s per op
//   ps_bench --keys=N --dim=D       one custom workload
//   [--servers=N --workers=M --mode=transport|table|both --auth=off|curve|both
//    --min_seconds=S --slices=N --json=PATH --peer=auto|off --peer_script=PATH --ipc=true|false]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/curve_keys.h"
#include "common/feature_key.h"
#include "common/ipc_endpoint.h"
#include "common/node_flags.h"
#include "common/socket_options.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "ps/server.h"
#include "tests/bench/bench_json.h"
#include "tests/bench/bench_main.h"
#include "tests/testing/child_process.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/temp_dir.h"
#include "worker/kv_worker.h"
#include "zmq.hpp"

DEFINE_int64(keys, 0, "Keys per request of one custom workload; 0 runs the standard suite.");
DEFINE_int32(dim, 1, "Floats per key of the custom workload (--keys).");
DEFINE_int32(servers, 1, "Parameter servers.");
DEFINE_int32(workers, 1, "Workers; each runs its loop on its own thread, concurrently.");
DEFINE_string(mode, "both", "Server mode: transport (no table work), table (SGD), or both.");
DEFINE_string(auth, "both",
              "Links: off (no CURVE on any socket), curve (every link CURVE-encrypted and "
              "ZAP-checked, as in production), or both, interleaved, with the ratio curve/off.");
DEFINE_double(min_seconds, 1.0, "Timed seconds per workload x op x mode (after warmup).");
DEFINE_int64(max_iters, 2000,
             "At most this many timed ops per worker per workload x op x mode: fast rows need "
             "no more for a stable median, and the default suite stays near a minute.");
DEFINE_int32(warmup_iters, 3,
             "Untimed ops per worker first (connects, creates table rows); fewer (at least one) "
             "if they take over a quarter of --min_seconds.");
DEFINE_bool(quick, false,
            "Smoke test: 1K x 1 and 10K x 16 for 0.2 s per op (unless --min_seconds is given).");
DEFINE_string(json, "", "If set, the result rows are also written here as a JSON array.");
DEFINE_int32(io_threads, 1,
             "ZeroMQ I/O threads of the context all nodes share (and of the raw pair's). On 2 "
             "cores 1 was as fast as 2 or faster, and faster than a context per node "
             "(docs/performance.md, \"Where the time goes\").");
// Defined with the roles' shared flags (common/node_flags.cc), default true: the raw pair and the
// clusters in this process keep freed message memory, as granary_server and granary_worker do.
DECLARE_bool(keep_freed_memory);
DEFINE_int32(server_threads, 2, "Request handler threads per server.");
DEFINE_bool(raw, true, "Also time a raw ZeroMQ transfer of the same bytes.");
// Each op is timed in this many slices, taking turns between the raw pair and the clusters: the
// machine's other load then weighs on all of them alike, and a burst of it cannot land on one
// figure only. More slices cost a slow row (~0.5 s per op) more time.
DEFINE_int32(slices, 4,
             "Turns each op takes between the raw pair and the clusters. More (e.g. 40 with "
             "--min_seconds=4) steady the ratios of fast rows on a busy machine.");
DEFINE_string(peer, "auto",
              "ps-lite beside us on its own rows: auto (run --peer_script if it exists and "
              "works; otherwise say why and go on without it) or off.");
DEFINE_string(peer_script, GRANARY_SOURCE_DIR "/../shared/peers/pslite_bench.sh",
              "ps-lite's benchmark script (see ../shared/peers/README.md). Its scheduler uses "
              "the fixed port 8000: never let two runs of it overlap.");
DEFINE_double(peer_turn_seconds, 120,
              "Deadline of one ps-lite turn; a turn that overruns it is stopped and the peer is "
              "left out of the rest of the run.");
DEFINE_double(peer_build_seconds, 900,
              "Extra deadline of the first ps-lite turn, in which the script builds ps-lite "
              "once if it has not been built yet.");

namespace granary {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kHost[] = "127.0.0.1";  // where InProcessCluster's nodes listen too
constexpr float kLearningRate = 0.01f;
// Positive, so every row a push reached is strictly negative afterwards (CheckPulledRows).
constexpr float kGradient = 1.0f;
constexpr size_t kKeyBytes = sizeof(uint64_t);
constexpr size_t kValueBytes = sizeof(float);
// Decimal units, as pslite_bench.sh uses them (12 KB = 12,000 bytes).
constexpr double kBytesPerMB = 1e6;
constexpr double kBytesPerGB = 1e9;
// Rows of the "~4 MB" and "~16 MB per request" workloads.
constexpr int kLargeRequestDim = 16;
constexpr double kQuickMinSeconds = 0.2;
// Warmup stops early (after at least one op) once it took this share of min_seconds, so slow
// rows (4M keys through a real table) do not spend longer warming up than being timed.
constexpr double kMaxWarmupShare = 0.25;
// How often the raw ROUTER wakes to check for shutdown while idle.
constexpr std::chrono::milliseconds kRawStopCheck(100);
// Longest a raw exchange may wait for its reply: every wait is bounded, even here.
constexpr std::chrono::milliseconds kRawReplyTimeout(60000);

// ---- Workloads ------------------------------------------------------------------------------

enum class Op { kPush, kPull, kPushPull };
constexpr Op kOps[] = {Op::kPush, Op::kPull, Op::kPushPull};

const char* OpName(Op op) {
  switch (op) {
    case Op::kPush:
      return "push";
    case Op::kPull:
      return "pull";
    case Op::kPushPull:
      return "push+pull";
  }
  return "?";
}

struct Workload {
  std::string name;
  size_t keys = 0;
  int dim = 1;
};

// The bytes one request of `keys` keys x `dim` floats carries: keys plus values.
size_t RequestBytes(size_t keys, int dim) { return keys * (kKeyBytes + kValueBytes * dim); }

size_t BytesPerOp(const Workload& workload, Op op) {
  size_t bytes = RequestBytes(workload.keys, workload.dim);
  return op == Op::kPushPull ? 2 * bytes : bytes;
}

// The keys per request of ps-lite's benchmark rows (one float per key): the workloads the peer
// runs beside us.
constexpr size_t kPsliteKeys[] = {1000, 160000, 1000000, 4000000};
constexpr int kPsliteDim = 1;

bool IsPsliteWorkload(const Workload& workload) {
  return workload.dim == kPsliteDim && std::find(std::begin(kPsliteKeys), std::end(kPsliteKeys),
                                                 workload.keys) != std::end(kPsliteKeys);
}

size_t KeysForRequestBytes(double bytes, int dim) {
  return static_cast<size_t>(bytes / RequestBytes(1, dim));
}

std::string HumanCount(size_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return absl::StrCat(n / 1000000, "M");
  if (n >= 1000 && n % 1000 == 0) return absl::StrCat(n / 1000, "K");
  return absl::StrCat(n);
}

Workload MakeWorkload(size_t keys, int dim) {
  return Workload{absl::StrCat(HumanCount(keys), " x ", dim), keys, dim};
}

std::vector<Workload> StandardSuite() {
  std::vector<Workload> suite;
  for (size_t keys : kPsliteKeys) suite.push_back(MakeWorkload(keys, kPsliteDim));
  suite.push_back(MakeWorkload(10000, kLargeRequestDim));
  for (double megabytes : {4.0, 16.0}) {
    Workload workload = MakeWorkload(KeysForRequestBytes(megabytes * kBytesPerMB, kLargeRequestDim),
                                     kLargeRequestDim);
    workload.name = absl::StrCat(megabytes, "MB: ", workload.name);
    suite.push_back(workload);
  }
  return suite;
}

std::vector<Workload> QuickSuite() { return {MakeWorkload(1000, 1), MakeWorkload(10000, 16)}; }

// Hashed like real feature keys, so they spread evenly over every server's range; sorted and
// unique, the shape KVWorker sends without a dedup pass.
std::vector<uint64_t> BenchKeys(size_t count) {
  const uint64_t seed = FieldSeed("ps_bench");
  std::vector<uint64_t> keys;
  keys.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    keys.push_back(FeatureKey(seed, std::string_view(reinterpret_cast<const char*>(&i), sizeof i)));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// ---- Timing ---------------------------------------------------------------------------------

// Holds every timing thread until all have finished their warmup, so the timed loops overlap.
class StartLine {
 public:
  explicit StartLine(int threads) : waiting_(threads) {}

  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (--waiting_ == 0) released_.notify_all();
    released_.wait(lock, [this] { return waiting_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  int waiting_;  // guarded by mutex_
};

struct LoopOptions {
  double seconds = 1.0;           // time ops until this long has passed,
  int64_t max_iters = 1;          // or this many ops per thread were timed
  int warmup_iters = 0;           // untimed ops per thread first; fewer (at least one)
  double max_warmup_seconds = 0;  // once they took this long
  int slices = 1;                 // turns between contenders (TimeInTurns)
};

// What timing one thing measured. The timings of its slices add up.
struct Timing {
  int64_t ops = 0;                   // timed ops of all threads
  double wall_seconds = 0;           // per slice: first thread's start to last thread's end
  std::vector<double> latencies_ms;  // one per op
  // By slice (TimeInTurns): that slice's ops per second; 0 where this sat the slice out.
  std::vector<double> slice_ops_per_second;

  void Add(const Timing& slice) {
    ops += slice.ops;
    wall_seconds += slice.wall_seconds;
    latencies_ms.insert(latencies_ms.end(), slice.latencies_ms.begin(), slice.latencies_ms.end());
  }
  double ops_per_second() const { return wall_seconds > 0 ? ops / wall_seconds : 0; }
  double MedianMs() const {
    if (latencies_ms.empty()) return 0;
    std::vector<double> samples = latencies_ms;
    auto middle = samples.begin() + samples.size() / 2;
    std::nth_element(samples.begin(), middle, samples.end());
    return *middle;
  }
};

// One op on behalf of thread `thread`; called only from that thread.
using TimedOp = std::function<absl::Status(int thread)>;

Clock::duration ToClockDuration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Runs `op` on `threads` threads at once: each first does its warmup ops (see LoopOptions),
// then all start together and repeat until options.seconds passed or options.max_iters ops
// were timed. Returns the first error any op returned.
absl::StatusOr<Timing> TimeConcurrently(int threads, const LoopOptions& options,
                                        const TimedOp& op) {
  struct ThreadRun {
    std::vector<double> latencies_ms;
    Clock::time_point start;
    Clock::time_point end;
    absl::Status status;
  };
  std::vector<ThreadRun> runs(threads);
  StartLine start_line(threads);
  const Clock::duration max_warmup = ToClockDuration(options.max_warmup_seconds);
  const Clock::duration duration = ToClockDuration(options.seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ThreadRun& run = runs[t];
      const Clock::time_point warmup_start = Clock::now();
      for (int i = 0; i < options.warmup_iters && run.status.ok(); ++i) {
        if (i > 0 && Clock::now() - warmup_start > max_warmup) break;
        run.status = op(t);
      }
      start_line.ArriveAndWait();  // even after a failure, or the others would wait forever
      run.start = Clock::now();
      const Clock::time_point stop_at = run.start + duration;
      Clock::time_point now = run.start;
      while (run.status.ok() && static_cast<int64_t>(run.latencies_ms.size()) < options.max_iters &&
             (run.latencies_ms.empty() || now < stop_at)) {
        Clock::time_point before = now;
        run.status = op(t);
        now = Clock::now();
        run.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - before).count());
      }
      run.end = now;
    });
  }
  for (std::thread& thread : pool) thread.join();

  Timing timing;
  Clock::time_point first_start = runs[0].start, last_end = runs[0].end;
  for (const ThreadRun& run : runs) {
    if (!run.status.ok()) return run.status;
    timing.ops += static_cast<int64_t>(run.latencies_ms.size());
    timing.latencies_ms.insert(timing.latencies_ms.end(), run.latencies_ms.begin(),
                               run.latencies_ms.end());
    first_start = std::min(first_start, run.start);
    last_end = std::max(last_end, run.end);
  }
  timing.wall_seconds = std::chrono::duration<double>(last_end - first_start).count();
  return timing;
}

// ---- The Granary cluster --------------------------------------------------------------------

// The clusters have one SGD table (ZEROS initializer) per row width the workloads use.
std::string TableOfDim(int dim) { return absl::StrCat("bench_dim", dim); }

// One round trip of `op` on `worker`, with KVWorker's zero-copy calls, as ps-lite's benchmark
// uses its own: the push sends the shared arrays themselves, the pull keeps the reply as `rows`.
absl::Status RunGranaryOp(KVWorker& worker, Op op, const std::string& table,
                          const SharedArray<uint64_t>& keys, const SharedArray<float>& grads,
                          PulledRows* rows) {
  if (op != Op::kPull) {
    absl::Status status = worker.Wait(worker.Push(table, keys, grads));
    if (!status.ok()) return status;
  }
  if (op != Op::kPush) return worker.Wait(worker.Pull(table, keys, rows));
  return absl::OkStatus();
}

// A cheap check that what was timed did what it claims: with updates applied every row was
// pushed a positive gradient at least once, so it must be finite and negative; without them
// the server must have answered zeros.
absl::Status CheckPulledRows(KVWorker& worker, absl::Span<const uint64_t> keys, int dim,
                             bool apply_updates) {
  std::vector<float> rows;
  absl::Status status = worker.Wait(worker.Pull(TableOfDim(dim), keys, &rows));
  if (!status.ok()) return status;
  for (size_t i = 0; i < rows.size(); ++i) {
    float value = rows[i];
    bool expected = apply_updates ? std::isfinite(value) && value < 0 : value == 0;
    if (!expected) {
      return absl::DataLossError(absl::StrFormat(
          "after the run, key %#018x element %d is %g; expected %s", keys[i / dim], i % dim, value,
          apply_updates ? "a finite negative value" : "0 (transport mode)"));
    }
  }
  return absl::OkStatus();
}

// ---- Raw ZeroMQ baseline --------------------------------------------------------------------

// What moving the same bytes over loopback costs with no Granary code in the way: each client
// is a DEALER that sends [reply size: uint64][payload frames] with copying sends and waits for the
// reply; one ROUTER thread answers each request with a copying send of the asked number of bytes. A
// raw push sends a key frame and a value frame and gets a 1-byte ack; a raw pull sends the key
// frame and gets the values back. Keys and values travel as separate frames, as in Granary and
// ps-lite: one 48 MB frame would be slower for a reason of its own (glibc serves allocations over
// 32 MB with a fresh mmap, so every such frame page-faults in anew: 4M keys x 1 float measured 0.55
// GB/s as one frame). Sockets get ConfigureSocket's options, so the kernel buffers equal Granary's
// and only Granary's own software path differs. The pair runs over the transport the clusters
// use (ipc:// with --ipc, the default, as a worker reaches a server of its own host) and, for
// reference, over loopback TCP as well: each ratio is stated against the floor of its own
// transport.
//
// Thread-compatible: Exchange(client, ...) must be called from one thread per client.
class RawZmqPair {
 public:
  // `max_request_bytes` and `max_reply_bytes` bound what Exchange may move.
  // `ipc_dir` non-empty: the pair talks over a socket file in that folder; empty: over TCP.
  RawZmqPair(int clients, size_t max_request_bytes, size_t max_reply_bytes, int io_threads,
             std::string ipc_dir);
  ~RawZmqPair();
  RawZmqPair(const RawZmqPair&) = delete;
  RawZmqPair& operator=(const RawZmqPair&) = delete;

  // Binds the ROUTER (a free TCP port, or the socket file), connects the clients and starts
  // the ROUTER thread.
  absl::Status Start();

  // Sends frames of `frame_bytes` (in total at most max_request_bytes) from client `client`
  // and waits for `reply_bytes` back.
  absl::Status Exchange(int client, std::initializer_list<size_t> frame_bytes, size_t reply_bytes);

 private:
  void Serve();

  const std::string ipc_dir_;
  zmq::context_t context_;
  zmq::socket_t router_;
  std::vector<zmq::socket_t> dealers_;
  std::vector<std::vector<char>> payloads_;  // one per client
  std::vector<char> reply_payload_;          // the ROUTER thread's
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

RawZmqPair::RawZmqPair(int clients, size_t max_request_bytes, size_t max_reply_bytes,
                       int io_threads, std::string ipc_dir)
    : ipc_dir_(std::move(ipc_dir)),
      context_(io_threads),
      router_(context_, zmq::socket_type::router),
      payloads_(clients, std::vector<char>(max_request_bytes, 1)),
      reply_payload_(max_reply_bytes, 1) {
  ConfigureSocket(router_);
  for (int c = 0; c < clients; ++c) {
    dealers_.emplace_back(context_, zmq::socket_type::dealer);
    ConfigureSocket(dealers_.back());
    dealers_.back().set(zmq::sockopt::rcvtimeo, static_cast<int>(kRawReplyTimeout.count()));
  }
}

RawZmqPair::~RawZmqPair() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

absl::Status RawZmqPair::Start() {
  std::string endpoint;
  if (ipc_dir_.empty()) {
    absl::StatusOr<int> port = BindTcp(router_, kHost, 0);
    if (!port.ok()) return port.status();
    endpoint = TcpEndpoint(kHost, *port);
  } else {
    absl::StatusOr<std::string> ipc = BindIpc(router_, ipc_dir_, "raw.sock");
    if (!ipc.ok()) return ipc.status();
    endpoint = *ipc;
  }
  for (zmq::socket_t& dealer : dealers_) dealer.connect(endpoint);
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

void RawZmqPair::Serve() {
  constexpr size_t kMinFrames = 3;  // routing id, reply size, payload frames
  while (!stop_) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, kRawStopCheck) <= 0) continue;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(router_, std::back_inserter(frames))) continue;
    uint64_t reply_bytes = 0;
    if (frames.size() < kMinFrames || frames[1].size() != sizeof reply_bytes) {
      LOG(ERROR) << "raw router: malformed request of " << frames.size() << " frames";
      continue;
    }
    std::memcpy(&reply_bytes, frames[1].data(), sizeof reply_bytes);
    reply_bytes = std::min<uint64_t>(reply_bytes, reply_payload_.size());
    router_.send(frames[0], zmq::send_flags::sndmore);
    router_.send(zmq::buffer(reply_payload_.data(), reply_bytes), zmq::send_flags::none);
  }
}

absl::Status RawZmqPair::Exchange(int client, std::initializer_list<size_t> frame_bytes,
                                  size_t reply_bytes) {
  zmq::socket_t& dealer = dealers_[client];
  const uint64_t reply_size = reply_bytes;
  try {
    dealer.send(zmq::buffer(&reply_size, sizeof reply_size), zmq::send_flags::sndmore);
    const char* frame = payloads_[client].data();
    size_t frames_left = frame_bytes.size();
    for (size_t bytes : frame_bytes) {
      dealer.send(zmq::buffer(frame, bytes),
                  --frames_left > 0 ? zmq::send_flags::sndmore : zmq::send_flags::none);
      frame += bytes;
    }
    zmq::message_t reply;
    if (!dealer.recv(reply)) {
      return absl::DeadlineExceededError(
          absl::StrCat("raw exchange: no reply within ", kRawReplyTimeout.count(), " ms"));
    }
    if (reply.size() != reply_bytes) {
      return absl::DataLossError(
          absl::StrCat("raw exchange: ", reply.size(), " reply bytes, expected ", reply_bytes));
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("raw exchange: ", e.what()));
  }
  return absl::OkStatus();
}

// The raw counterpart of a Granary push (keys and values out, an ack back) or pull (keys out,
// values back). REQUIRES: op is kPush or kPull.
absl::Status RunRawOp(RawZmqPair& pair, int client, Op op, const Workload& workload) {
  constexpr size_t kAckBytes = 1;
  const size_t key_bytes = workload.keys * kKeyBytes;
  const size_t value_bytes = workload.keys * workload.dim * kValueBytes;
  if (op == Op::kPush) return pair.Exchange(client, {key_bytes, value_bytes}, kAckBytes);
  return pair.Exchange(client, {key_bytes}, value_bytes);
}

// ---- ps-lite beside us ----------------------------------------------------------------------

// What one peer turn measured: ps-lite's ms per request and goodput for push and pull.
struct PeerTurn {
  int64_t repeats = 0;  // requests of each op
  double push_ms = 0;
  double pull_ms = 0;
  double push_gbps = 0;
  double pull_gbps = 0;
};

// Before the first turn, the time of one ps-lite request is guessed as a fixed latency plus the
// bytes at this goodput; later turns use the previous turn's figures. Only the number of
// requests of the first turn depends on the guess.
constexpr double kPeerGuessLatencyMs = 0.1;
constexpr double kPeerGuessGbps = 1.0;
// How long a stopped turn's script gets to stop its own processes (its TERM trap) before it is
// killed.
constexpr absl::Duration kPeerStopGrace = absl::Seconds(5);
constexpr char kShell[] = "/bin/bash";
constexpr char kEnv[] = "/usr/bin/env";
// ps-lite's own same-host switch (src/zmq_van.h): its nodes bind and connect over
// ipc:///tmp/<port> instead of TCP, as Granary's same-host workers do with --ipc.
constexpr char kPsliteIpc[] = "DMLC_LOCAL=1";

// The value of the first "name": number field in `json`, or nullopt. Enough for the flat
// objects pslite_bench.sh writes ({"keys": 1000, "push_ms": 0.0888, ...}).
std::optional<double> JsonNumberField(const std::string& json, const std::string& name) {
  const std::string quoted = absl::StrCat("\"", name, "\"");
  size_t at = json.find(quoted);
  if (at == std::string::npos) return std::nullopt;
  at = json.find(':', at + quoted.size());
  if (at == std::string::npos) return std::nullopt;
  const char* begin = json.c_str() + at + 1;
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value)) return std::nullopt;
  return value;
}

// The last non-empty line of `text` (a failed script's reason), or "no output".
std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n \t");
  if (end == std::string::npos) return "no output";
  const size_t newline = text.rfind('\n', end);
  const size_t begin = newline == std::string::npos ? 0 : newline + 1;
  return text.substr(begin, end + 1 - begin);
}

// Runs ps-lite's benchmark (pslite_bench.sh) one turn at a time, never two at once (its
// scheduler's port is fixed). Once a turn fails it says why, once, and measures no more.
//
// Thread-compatible.
class PsliteTurns {
 public:
  // `script` is --peer_script. Measures nothing if `why_not` is non-empty (--peer=off, or a
  // cluster shape ps-lite's benchmark does not have), and says so. `ipc`: ps-lite runs over its
  // own ipc transport too (DMLC_LOCAL=1), so that both sides use the same kind of link.
  PsliteTurns(std::string script, const std::string& why_not, bool ipc);
  ~PsliteTurns();
  PsliteTurns(const PsliteTurns&) = delete;
  PsliteTurns& operator=(const PsliteTurns&) = delete;

  bool measuring() const { return measuring_; }

  // One turn of `keys` keys x 1 float, `repeats` pushes then as many pulls. Returns nullopt
  // (after printing the one "ps-lite: not measured" line) if the peer is not, or no longer,
  // measured.
  std::optional<PeerTurn> Run(size_t keys, int64_t repeats);

 private:
  absl::StatusOr<PeerTurn> RunOnce(size_t keys, int64_t repeats);
  void Disable(const std::string& why);

  const std::string script_;
  const bool ipc_;
  bool measuring_ = true;
  bool built_ = false;  // a turn succeeded, so the script will not build again
  std::string dir_;     // logs and JSON of the turns; kept if a turn failed
  bool keep_dir_ = false;
  int turns_ = 0;
};

PsliteTurns::PsliteTurns(std::string script, const std::string& why_not, bool ipc)
    : script_(std::move(script)), ipc_(ipc) {
  if (!why_not.empty()) {
    Disable(why_not);
  } else if (access(script_.c_str(), R_OK) != 0) {
    Disable(absl::StrCat(script_, " not found: ", std::strerror(errno)));
  } else if (dir_ = MakeTempDir("ps_bench-pslite"); dir_.empty()) {
    Disable("cannot create a temporary folder for its logs");
  }
}

PsliteTurns::~PsliteTurns() {
  if (dir_.empty() || keep_dir_) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void PsliteTurns::Disable(const std::string& why) {
  if (!measuring_) return;
  measuring_ = false;
  absl::PrintF("ps-lite: not measured: %s; rows without ps-lite figures from here on\n", why);
  std::fflush(stdout);
}

std::optional<PeerTurn> PsliteTurns::Run(size_t keys, int64_t repeats) {
  if (!measuring_) return std::nullopt;
  absl::StatusOr<PeerTurn> turn = RunOnce(keys, repeats);
  // ps-lite's benchmark sometimes dies at start-up on a loaded machine (a CHECK in kv_app.h as
  // its nodes connect); one more try tells that from a peer that cannot run at all.
  if (!turn.ok() && built_ && absl::IsUnavailable(turn.status())) {
    absl::PrintF("ps-lite: a turn failed, trying it once more: %s\n", turn.status().message());
    turn = RunOnce(keys, repeats);
  }
  if (!turn.ok()) {
    keep_dir_ = true;  // the message names a log in it
    Disable(std::string(turn.status().message()));
    return std::nullopt;
  }
  built_ = true;
  return *turn;
}

absl::StatusOr<PeerTurn> PsliteTurns::RunOnce(size_t keys, int64_t repeats) {
  const int turn = turns_++;
  const std::string json = absl::StrCat(dir_, "/turn", turn, ".json");
  const std::string log = absl::StrCat(dir_, "/turn", turn, ".log");
  std::vector<std::string> argv = {kShell,   script_, "--cases", absl::StrCat(keys, ":", repeats),
                                   "--json", json};
  if (ipc_) argv.insert(argv.begin(), {kEnv, kPsliteIpc});
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, log);
  if (!child.ok()) return absl::UnavailableError(std::string(child.status().message()));
  const absl::Duration deadline =
      absl::Seconds(FLAGS_peer_turn_seconds + (built_ ? 0.0 : FLAGS_peer_build_seconds));
  std::optional<int> exit_code = child->WaitForExit(deadline);
  if (!exit_code.has_value()) {
    child->Signal(SIGTERM);  // its trap stops the processes it started
    child->WaitForExit(kPeerStopGrace);
    return absl::DeadlineExceededError(
        absl::StrCat(script_, " gave no result within ", absl::FormatDuration(deadline), " (", keys,
                     " keys x ", repeats, " repeats; log ", log, ")"));
  }
  if (*exit_code != 0) {
    return absl::UnavailableError(
        absl::StrCat(script_, " failed (exit ", *exit_code, "): ", LastLine(ReadFile(log))));
  }
  const std::string text = ReadFile(json);
  PeerTurn result;
  result.repeats = repeats;
  std::optional<double> got_keys = JsonNumberField(text, "keys");
  std::optional<double> push_ms = JsonNumberField(text, "push_ms");
  std::optional<double> pull_ms = JsonNumberField(text, "pull_ms");
  std::optional<double> push_gbps = JsonNumberField(text, "push_gbps");
  std::optional<double> pull_gbps = JsonNumberField(text, "pull_gbps");
  if (!got_keys || *got_keys != static_cast<double>(keys) || !push_ms || !pull_ms || !push_gbps ||
      !pull_gbps || *push_ms <= 0 || *pull_ms <= 0 || *push_gbps <= 0 || *pull_gbps <= 0) {
    return absl::DataLossError(absl::StrCat(script_, " wrote no figures for ", keys, " keys to ",
                                            json, ": '", LastLine(text), "'"));
  }
  result.push_ms = *push_ms;
  result.pull_ms = *pull_ms;
  result.push_gbps = *push_gbps;
  result.pull_gbps = *pull_gbps;
  return result;
}

// ---- Results --------------------------------------------------------------------------------

struct Row {
  std::string workload;
  std::string op;
  std::string mode;
  std::string auth;
  size_t keys = 0;
  int dim = 0;
  size_t bytes_per_op = 0;
  Timing timing;
  double gbps = 0;
  double raw_gbps = 0;      // the raw pair over the clusters' transport; 0: not measured
  double tcp_raw_gbps = 0;  // with --ipc, the raw pair over loopback TCP; 0: not measured
  double pslite_gbps = 0;   // ps-lite's, over this run's peer turns; 0: not measured
  // By slice: GB/s in that slice / ps-lite's in the peer turn just before it; 0 where either
  // was not measured.
  std::vector<double> vs_ps_by_slice;
  double off_gbps = 0;  // a curve row's unauthenticated twin; 0: none (or an off row)
  double off_ops_per_second = 0;
  // The raw pair's median latency of the same exchange over the clusters' transport (a
  // push+pull's: the raw push's plus the raw pull's); 0: not measured.
  double raw_median_ms = 0;
};

double Goodput(const Timing& timing, size_t bytes_per_op) {
  return timing.ops_per_second() * static_cast<double>(bytes_per_op) / kBytesPerGB;
}

std::string FormatRatio(double numerator, double denominator) {
  return denominator > 0 ? absl::StrFormat("%.2fx", numerator / denominator) : "-";
}

std::string FormatOptional(double value) {
  return value > 0 ? absl::StrFormat("%.3f", value) : "-";
}

constexpr char kRowFormat[] =
    "%-22s %-9s %-9s %-5s %10s %6s %9s %9s %7s %8s %7s %7s %6s %6s %8s %7s\n";

void PrintHeader() {
  absl::PrintF(kRowFormat, "workload", "op", "mode", "auth", "bytes/op", "iters", "median_ms",
               "ops/s", "GB/s", "raw_GB/s", "vs_raw", "ps-lite", "vs_ps", "vs_off", "tcp_raw",
               "vs_tcp");
}

void PrintRow(const Row& row) {
  absl::PrintF(kRowFormat, row.workload, row.op, row.mode, row.auth, absl::StrCat(row.bytes_per_op),
               absl::StrCat(row.timing.ops), absl::StrFormat("%.3f", row.timing.MedianMs()),
               absl::StrFormat("%.1f", row.timing.ops_per_second()),
               absl::StrFormat("%.3f", row.gbps), FormatOptional(row.raw_gbps),
               FormatRatio(row.gbps, row.raw_gbps), FormatOptional(row.pslite_gbps),
               FormatRatio(row.gbps, row.pslite_gbps), FormatRatio(row.gbps, row.off_gbps),
               FormatOptional(row.tcp_raw_gbps), FormatRatio(row.gbps, row.tcp_raw_gbps));
  std::fflush(stdout);
}

constexpr char kCostFormat[] = "%-22s %-9s %-9s %9s %9s %10s %10s %9s\n";

constexpr char kPeerFormat[] = "%-22s %-9s %-9s %-5s %9s %9s %7s  %-13s %s\n";

// The closing table when the peer was measured: per row that has ps-lite figures, the ratio
// ours / ps-lite in each slice and their range.
void PrintBesidePslite(const std::vector<Row>& rows) {
  bool any = false;
  for (const Row& row : rows) any = any || row.pslite_gbps > 0;
  if (!any) return;
  absl::PrintF(
      "\nBeside ps-lite (this run; a peer turn, then ours, in every slice; GB/s ours / "
      "ps-lite). ps-lite has no authentication: the \"off\" rows are the comparison, curve rows "
      "are for information:\n");
  absl::PrintF(kPeerFormat, "workload", "op", "mode", "auth", "GB/s", "ps-lite", "vs_ps", "range",
               "per slice");
  for (const Row& row : rows) {
    if (row.pslite_gbps <= 0) continue;
    std::vector<std::string> slices;
    double low = 0, high = 0;
    for (double ratio : row.vs_ps_by_slice) {
      if (ratio <= 0) continue;
      low = slices.empty() ? ratio : std::min(low, ratio);
      high = slices.empty() ? ratio : std::max(high, ratio);
      slices.push_back(absl::StrFormat("%.2f", ratio));
    }
    absl::PrintF(kPeerFormat, row.workload, row.op, row.mode, row.auth,
                 absl::StrFormat("%.3f", row.gbps), absl::StrFormat("%.3f", row.pslite_gbps),
                 FormatRatio(row.gbps, row.pslite_gbps),
                 slices.empty() ? "-" : absl::StrFormat("%.2f-%.2fx", low, high),
                 absl::StrJoin(slices, " "));
  }
}

// The closing table of --auth=both: per workload, op and mode, the unauthenticated and the
// authenticated goodput and round trips per second side by side, and curve/off.
void PrintCurveCost(const std::vector<Row>& rows) {
  absl::PrintF("\nWhat CURVE costs (off and curve timed in alternating turns of the same run):\n");
  absl::PrintF(kCostFormat, "workload", "op", "mode", "off_GB/s", "curve_GB/s", "off_ops/s",
               "curve_ops/s", "curve/off");
  for (const Row& row : rows) {
    if (row.off_gbps <= 0) continue;
    absl::PrintF(kCostFormat, row.workload, row.op, row.mode, absl::StrFormat("%.3f", row.off_gbps),
                 absl::StrFormat("%.3f", row.gbps), absl::StrFormat("%.1f", row.off_ops_per_second),
                 absl::StrFormat("%.1f", row.timing.ops_per_second()),
                 FormatRatio(row.gbps, row.off_gbps));
  }
}

constexpr char kLatencyFormat[] = "%-22s %-9s %-9s %-5s %10s %10s %10s\n";

// The closing table when the raw pair ran: each row's median round trip beside the raw pair's.
// On a machine loaded by others a slow op here and there moves ops/s (and so vs_raw) far more
// than it moves a median, so this ratio is the steadier figure of the per-request cost.
void PrintLatencyBesideRaw(const std::vector<Row>& rows) {
  bool any = false;
  for (const Row& row : rows) {
    if (row.raw_median_ms <= 0 || row.timing.MedianMs() <= 0) continue;
    if (!any) {
      absl::PrintF(
          "\nMedian latency beside the raw pair (this run; raw/ours, above 1 is faster):\n");
      absl::PrintF(kLatencyFormat, "workload", "op", "mode", "auth", "median_ms", "raw_ms",
                   "raw/ours");
      any = true;
    }
    absl::PrintF(kLatencyFormat, row.workload, row.op, row.mode, row.auth,
                 absl::StrFormat("%.4f", row.timing.MedianMs()),
                 absl::StrFormat("%.4f", row.raw_median_ms),
                 FormatRatio(row.raw_median_ms, row.timing.MedianMs()));
  }
}

std::string RowJson(const Row& row, const InProcessClusterOptions& cluster) {
  return absl::StrFormat(
      "  {\"workload\": \"%s\", \"op\": \"%s\", \"mode\": \"%s\", \"auth\": \"%s\", "
      "\"keys\": %d, \"dim\": %d, "
      "\"servers\": %d, \"workers\": %d, \"bytes_per_op\": %d, \"iters\": %d, "
      "\"wall_seconds\": %.6g, \"median_ms\": %.6g, \"ops_per_s\": %.6g, \"goodput_gbps\": %.6g, "
      "\"raw_gbps\": %s, \"vs_raw\": %s, \"pslite_gbps\": %s, \"vs_pslite\": %s, "
      "\"off_gbps\": %s, \"off_ops_per_s\": %s, \"curve_vs_off\": %s, "
      "\"transport\": \"%s\", \"tcp_raw_gbps\": %s, \"vs_tcp_raw\": %s}",
      row.workload, row.op, row.mode, row.auth, row.keys, row.dim, cluster.num_servers,
      cluster.num_workers, row.bytes_per_op, row.timing.ops, row.timing.wall_seconds,
      row.timing.MedianMs(), row.timing.ops_per_second(), row.gbps, JsonNumberOrNull(row.raw_gbps),
      row.raw_gbps > 0 ? JsonNumberOrNull(row.gbps / row.raw_gbps) : "null",
      JsonNumberOrNull(row.pslite_gbps),
      row.pslite_gbps > 0 ? JsonNumberOrNull(row.gbps / row.pslite_gbps) : "null",
      JsonNumberOrNull(row.off_gbps), JsonNumberOrNull(row.off_ops_per_second),
      row.off_gbps > 0 ? JsonNumberOrNull(row.gbps / row.off_gbps) : "null",
      cluster.ipc ? "ipc" : "tcp", JsonNumberOrNull(row.tcp_raw_gbps),
      row.tcp_raw_gbps > 0 ? JsonNumberOrNull(row.gbps / row.tcp_raw_gbps) : "null");
}

std::vector<std::string> RowsJson(const std::vector<Row>& rows,
                                  const InProcessClusterOptions& cluster) {
  std::vector<std::string> objects;
  for (const Row& row : rows) objects.push_back(RowJson(row, cluster));
  return objects;
}

// ---- The benchmark --------------------------------------------------------------------------

struct Mode {
  const char* name;
  bool apply_updates;
};

// A Granary cluster in one server mode, authenticated or not, for one workload.
struct ModeCluster {
  Mode mode;
  bool curve = false;  // every link CURVE-authenticated (--auth)
  std::unique_ptr<InProcessCluster> cluster;
  std::vector<PulledRows> pulled;  // the rows each worker pulls into
};

const char* AuthName(bool curve) { return curve ? "curve" : "off"; }

std::vector<bool> SelectedAuths() {
  std::vector<bool> curve;
  if (FLAGS_auth != "curve") curve.push_back(false);
  if (FLAGS_auth != "off") curve.push_back(true);
  return curve;
}

std::vector<Mode> SelectedModes() {
  std::vector<Mode> modes;
  if (FLAGS_mode != "table") modes.push_back(Mode{"transport", false});
  if (FLAGS_mode != "transport") modes.push_back(Mode{"table", true});
  return modes;
}

// Something the benchmark times: the raw pair, or a Granary cluster in one server mode.
struct Contender {
  std::string name;
  bool raw = false;
  std::function<absl::Status(Op op, int thread)> run;
  const ModeCluster* granary = nullptr;  // nullptr for the raw pair
};

// A raw push+pull would be a raw push and a raw pull back to back, so its goodput is derived
// from theirs instead of timed again (which keeps the default suite near a minute): it moves
// twice the bytes of one request in the sum of their times.
double RawPushPullGbps(double push_gbps, double pull_gbps) {
  return push_gbps > 0 && pull_gbps > 0 ? 2 / (1 / push_gbps + 1 / pull_gbps) : 0;
}

// Slice `slice` of `loop`: its share of the time and ops; warmup in the first slice only.
LoopOptions SliceOf(const LoopOptions& loop, int slice) {
  LoopOptions part = loop;
  part.seconds = loop.seconds / loop.slices;
  part.max_iters = std::max<int64_t>(1, (loop.max_iters + loop.slices - 1) / loop.slices);
  if (slice > 0) part.warmup_iters = 0;
  return part;
}

// Called before each slice of TimeInTurns with the slice's index: the peer's turn.
using BeforeSlice = std::function<void(int slice)>;

// Times every op for every contender, in loop.slices turns: each slice calls `before_slice`,
// then times each op on each contender. Returns the timings by op (as kOps) and contender. A
// contender already timed for loop.seconds on an op sits out its remaining turns: an op slower
// than a slice (4M keys through a table) would otherwise run loop.slices times.
absl::StatusOr<std::vector<std::vector<Timing>>> TimeInTurns(
    const std::vector<Contender>& contenders, int threads, const LoopOptions& loop,
    const BeforeSlice& before_slice) {
  std::vector<std::vector<Timing>> timings(std::size(kOps), std::vector<Timing>(contenders.size()));
  for (std::vector<Timing>& by_contender : timings) {
    for (Timing& timing : by_contender) timing.slice_ops_per_second.assign(loop.slices, 0);
  }
  for (int slice = 0; slice < loop.slices; ++slice) {
    before_slice(slice);
    for (size_t o = 0; o < std::size(kOps); ++o) {
      const Op op = kOps[o];
      for (size_t c = 0; c < contenders.size(); ++c) {
        if (contenders[c].raw && op == Op::kPushPull) continue;  // see RawPushPullGbps
        if (timings[o][c].wall_seconds >= loop.seconds) continue;
        absl::StatusOr<Timing> timing = TimeConcurrently(
            threads, SliceOf(loop, slice), [&](int t) { return contenders[c].run(op, t); });
        if (!timing.ok()) {
          return absl::Status(
              timing.status().code(),
              absl::StrCat(OpName(op), " (", contenders[c].name, "): ", timing.status().message()));
        }
        timings[o][c].Add(*timing);
        timings[o][c].slice_ops_per_second[slice] = timing->ops_per_second();
      }
    }
  }
  return timings;
}

// The number of requests per op of a peer turn: about as long as one of our slices of an op
// (at the previous turn's speed, or a guess before the first), and no more than ours do.
int64_t PeerRepeats(const Workload& workload, const LoopOptions& loop,
                    const std::optional<PeerTurn>& previous) {
  const double ms = previous.has_value()
                        ? (previous->push_ms + previous->pull_ms) / 2
                        : kPeerGuessLatencyMs + RequestBytes(workload.keys, workload.dim) /
                                                    (kPeerGuessGbps * kBytesPerGB) * 1e3;
  const double slice_ms = loop.seconds / loop.slices * 1e3;
  const int64_t repeats = static_cast<int64_t>(std::ceil(slice_ms / ms));
  return std::clamp<int64_t>(repeats, 1, SliceOf(loop, 0).max_iters);
}

// ps-lite's goodput for `op` over all `turns` (total bytes / total time); 0 if none measured or
// `op` is not one ps-lite times.
double PeerGbps(const std::vector<std::optional<PeerTurn>>& turns, Op op, size_t bytes_per_op) {
  if (op == Op::kPushPull) return 0;
  double requests = 0, seconds = 0;
  for (const std::optional<PeerTurn>& turn : turns) {
    if (!turn.has_value()) continue;
    requests += turn->repeats;
    seconds += turn->repeats * (op == Op::kPush ? turn->push_ms : turn->pull_ms) / 1e3;
  }
  return seconds > 0 ? requests * bytes_per_op / seconds / kBytesPerGB : 0;
}

// Times every op of `workload` on a raw pair and on every cluster, and appends (and prints)
// one row per op and mode.
absl::Status MeasureWorkload(const Workload& workload, std::vector<ModeCluster>& clusters,
                             const InProcessClusterOptions& cluster, const LoopOptions& loop,
                             PsliteTurns& peer, std::vector<Row>* rows) {
  const std::vector<uint64_t> keys = BenchKeys(workload.keys);
  const std::vector<float> grads(keys.size() * workload.dim, kGradient);
  const auto shared_keys = std::make_shared<const std::vector<uint64_t>>(keys);
  const auto shared_grads = std::make_shared<const std::vector<float>>(grads);
  const std::string table = TableOfDim(workload.dim);
  const int threads = cluster.num_workers;
  std::vector<Contender> contenders;

  // The raw pair over the clusters' transport (contender 0) and, with ipc, over TCP (1).
  std::vector<std::unique_ptr<RawZmqPair>> raws;
  if (FLAGS_raw) {
    // In the first cluster's data folder, which the cluster removes when it stops.
    std::vector<std::string> ipc_dirs = {
        cluster.ipc ? clusters.front().cluster->data_dir() + "/raw-ipc" : ""};
    if (cluster.ipc) ipc_dirs.push_back("");
    for (const std::string& ipc_dir : ipc_dirs) {
      raws.push_back(std::make_unique<RawZmqPair>(threads, RequestBytes(keys.size(), workload.dim),
                                                  keys.size() * workload.dim * kValueBytes,
                                                  cluster.io_threads, ipc_dir));
      absl::Status status = raws.back()->Start();
      if (!status.ok()) return status;
      RawZmqPair* raw = raws.back().get();
      contenders.push_back(
          Contender{ipc_dir.empty() ? "raw tcp" : "raw", true,
                    [raw, &workload](Op op, int t) { return RunRawOp(*raw, t, op, workload); }});
    }
  }
  for (ModeCluster& granary : clusters) {
    contenders.push_back(
        Contender{absl::StrCat(granary.mode.name, " ", AuthName(granary.curve)), false,
                  [&](Op op, int t) {
                    return RunGranaryOp(granary.cluster->worker(t), op, table, shared_keys,
                                        shared_grads, &granary.pulled[t]);
                  },
                  &granary});
  }

  // The peer's turn opens each slice of ps-lite's workloads; by slice, nullopt where it did
  // not run.
  std::vector<std::optional<PeerTurn>> peer_turns(loop.slices);
  const bool with_peer = IsPsliteWorkload(workload) && peer.measuring();
  std::optional<PeerTurn> last_turn;
  absl::StatusOr<std::vector<std::vector<Timing>>> all_timings =
      TimeInTurns(contenders, threads, loop, [&](int slice) {
        if (!with_peer) return;
        peer_turns[slice] = peer.Run(workload.keys, PeerRepeats(workload, loop, last_turn));
        if (peer_turns[slice].has_value()) last_turn = peer_turns[slice];
      });
  if (!all_timings.ok()) {
    return absl::Status(all_timings.status().code(),
                        absl::StrCat(workload.name, ": ", all_timings.status().message()));
  }

  std::vector<double> raw_gbps, tcp_raw_gbps;  // by op, as kOps
  std::vector<double> raw_median_ms;           // by op, as kOps
  for (size_t o = 0; o < std::size(kOps); ++o) {
    const Op op = kOps[o];
    std::vector<Timing>* timings = &(*all_timings)[o];
    const size_t bytes_per_op = BytesPerOp(workload, op);
    if (!raws.empty()) {
      raw_gbps.push_back(op == Op::kPushPull ? RawPushPullGbps(raw_gbps[0], raw_gbps[1])
                                             : Goodput((*timings)[0], bytes_per_op));
    }
    if (!raws.empty()) {
      raw_median_ms.push_back(op == Op::kPushPull ? raw_median_ms[0] + raw_median_ms[1]
                                                  : (*timings)[0].MedianMs());
    }
    if (raws.size() > 1) {
      tcp_raw_gbps.push_back(op == Op::kPushPull ? RawPushPullGbps(tcp_raw_gbps[0], tcp_raw_gbps[1])
                                                 : Goodput((*timings)[1], bytes_per_op));
    }
    const Row* off_row = nullptr;  // the current mode's unauthenticated row, timed just before
    for (size_t c = 0; c < contenders.size(); ++c) {
      if (contenders[c].raw) continue;
      Row row;
      row.workload = workload.name;
      row.op = OpName(op);
      row.mode = contenders[c].granary->mode.name;
      row.auth = AuthName(contenders[c].granary->curve);
      row.keys = keys.size();
      row.dim = workload.dim;
      row.bytes_per_op = bytes_per_op;
      row.timing = std::move((*timings)[c]);
      row.gbps = Goodput(row.timing, bytes_per_op);
      row.raw_gbps = raw_gbps.empty() ? 0 : raw_gbps.back();
      row.tcp_raw_gbps = tcp_raw_gbps.empty() ? 0 : tcp_raw_gbps.back();
      row.raw_median_ms = raw_median_ms.empty() ? 0 : raw_median_ms.back();
      row.pslite_gbps = PeerGbps(peer_turns, op, bytes_per_op);
      if (row.pslite_gbps > 0) {
        row.vs_ps_by_slice.assign(loop.slices, 0);
        for (int slice = 0; slice < loop.slices; ++slice) {
          const std::optional<PeerTurn>& turn = peer_turns[slice];
          const double ours = row.timing.slice_ops_per_second[slice] * bytes_per_op / kBytesPerGB;
          if (!turn.has_value() || ours <= 0) continue;
          row.vs_ps_by_slice[slice] = ours / (op == Op::kPush ? turn->push_gbps : turn->pull_gbps);
        }
      }
      if (contenders[c].granary->curve && off_row != nullptr && off_row->mode == row.mode) {
        row.off_gbps = off_row->gbps;
        row.off_ops_per_second = off_row->timing.ops_per_second();
      }
      PrintRow(row);
      rows->push_back(std::move(row));
      off_row = contenders[c].granary->curve ? nullptr : &rows->back();
    }
  }
  for (ModeCluster& granary : clusters) {
    absl::Status status =
        CheckPulledRows(granary.cluster->worker(0), keys, workload.dim, granary.mode.apply_updates);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat(workload.name, " (", granary.mode.name, " ",
                                       AuthName(granary.curve), "): ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFlags() {
  if (FLAGS_servers < 1 || FLAGS_workers < 1 || FLAGS_io_threads < 1 || FLAGS_server_threads < 1) {
    return absl::InvalidArgumentError(
        "--servers, --workers, --io_threads and --server_threads must be >= 1");
  }
  if (FLAGS_keys < 0 || FLAGS_dim < 1) {
    return absl::InvalidArgumentError("--keys must be >= 0 and --dim >= 1");
  }
  if (FLAGS_min_seconds <= 0 || FLAGS_max_iters < 1 || FLAGS_warmup_iters < 0 || FLAGS_slices < 1) {
    return absl::InvalidArgumentError(
        "--min_seconds must be > 0, --max_iters and --slices >= 1 and --warmup_iters >= 0");
  }
  if (FLAGS_mode != "transport" && FLAGS_mode != "table" && FLAGS_mode != "both") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --mode=", FLAGS_mode, " (use transport, table or both)"));
  }
  if (FLAGS_peer != "auto" && FLAGS_peer != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --peer=", FLAGS_peer, " (use auto or off)"));
  }
  if (FLAGS_peer_turn_seconds <= 0 || FLAGS_peer_build_seconds < 0) {
    return absl::InvalidArgumentError(
        "--peer_turn_seconds must be > 0 and --peer_build_seconds >= 0");
  }
  if (FLAGS_auth != "off" && FLAGS_auth != "curve" && FLAGS_auth != "both") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --auth=", FLAGS_auth, " (use off, curve or both)"));
  }
  return absl::OkStatus();
}

std::vector<Workload> SelectedWorkloads() {
  if (FLAGS_keys > 0) return {MakeWorkload(static_cast<size_t>(FLAGS_keys), FLAGS_dim)};
  return FLAGS_quick ? QuickSuite() : StandardSuite();
}

absl::Status RunBenchmark(const InProcessClusterOptions& cluster,
                          const std::optional<CurveKeys>& curve, PsliteTurns& peer,
                          std::vector<Row>* rows) {
  LoopOptions loop;
  loop.seconds = FLAGS_min_seconds;
  if (FLAGS_quick && gflags::GetCommandLineFlagInfoOrDie("min_seconds").is_default) {
    loop.seconds = kQuickMinSeconds;
  }
  loop.max_iters = FLAGS_max_iters;
  loop.warmup_iters = FLAGS_warmup_iters;
  loop.slices = FLAGS_slices;
  loop.max_warmup_seconds = loop.seconds * kMaxWarmupShare;
  absl::PrintF(
      "ps_bench: %d server(s) x %d handler threads, %d worker(s), one ZeroMQ context with %d "
      "I/O thread(s), >= %.2f s or %d ops per row in %d slices, %s, links %s\n\n",
      cluster.num_servers, cluster.server_threads, cluster.num_workers, cluster.io_threads,
      loop.seconds, loop.max_iters, loop.slices,
      cluster.ipc ? "workers reach servers over ipc (raw: ipc, tcp_raw: TCP on 127.0.0.1; "
                    "ps-lite: its ipc, DMLC_LOCAL=1)"
                  : absl::StrCat("TCP on ", kHost),
      FLAGS_auth == "both"  ? "unauthenticated and CURVE-authenticated in turns"
      : FLAGS_auth == "off" ? "unauthenticated"
                            : "CURVE-authenticated");
  const std::vector<Workload> workloads = SelectedWorkloads();
  std::vector<std::pair<std::string, int>> tables;
  for (const Workload& workload : workloads) {
    std::pair<std::string, int> table(TableOfDim(workload.dim), workload.dim);
    if (std::find(tables.begin(), tables.end(), table) == tables.end()) tables.push_back(table);
  }
  PrintHeader();
  for (const Workload& workload : workloads) {
    std::vector<ModeCluster> clusters;
    for (const Mode& mode : SelectedModes()) {
      for (bool authenticated : SelectedAuths()) {  // off then curve: they alternate in turns
        InProcessClusterOptions options = cluster;
        options.config = SgdTablesConfig(tables, kLearningRate);
        options.apply_updates = mode.apply_updates;
        if (authenticated) options.curve = curve;
        clusters.push_back(ModeCluster{mode, authenticated,
                                       std::make_unique<InProcessCluster>(options),
                                       std::vector<PulledRows>(cluster.num_workers)});
        absl::Status status = clusters.back().cluster->Start();
        if (!status.ok()) return status;
      }
    }
    absl::Status status = MeasureWorkload(workload, clusters, cluster, loop, peer, rows);
    if (!status.ok()) return status;
  }
  PrintBesidePslite(*rows);
  PrintLatencyBesideRaw(*rows);
  if (FLAGS_auth == "both") PrintCurveCost(*rows);
  return absl::OkStatus();
}

absl::Status Run() {
  absl::Status status = CheckFlags();
  if (!status.ok()) return status;
  // As granary_server and granary_worker do: the raw pair and the clusters receive alike.
  if (FLAGS_keep_freed_memory && !KeepFreedMessageMemory()) {
    return absl::InternalError("mallopt refused KeepFreedMessageMemory's settings");
  }
  InProcessClusterOptions cluster;
  cluster.num_servers = FLAGS_servers;
  cluster.num_workers = FLAGS_workers;
  cluster.server_threads = FLAGS_server_threads;
  cluster.io_threads = FLAGS_io_threads;
  // As granary_server and granary_worker on one host do (--ipc, common/node_flags.h).
  cluster.ipc = FLAGS_ipc;
  // The servers' default budget, so that table mode measures rows served from memory as a
  // production server would, not the test default of a small cache over RocksDB.
  cluster.cache_bytes = ServerOptions().cache_bytes;

  std::optional<CurveKeys> curve;
  if (FLAGS_auth != "off") {
    absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();  // the run's cluster keypair
    if (!keys.ok()) return keys.status();
    curve = *std::move(keys);
  }

  const absl::Time start = absl::Now();
  std::vector<Row> rows;
  // ps-lite's benchmark runs one server and one worker: other shapes have nothing to compare.
  std::string peer_why_not;
  if (FLAGS_peer == "off") {
    peer_why_not = "--peer=off";
  } else if (cluster.num_servers != 1 || cluster.num_workers != 1) {
    peer_why_not = absl::StrCat("its benchmark runs 1 server and 1 worker, this run ",
                                cluster.num_servers, " and ", cluster.num_workers);
  }
  PsliteTurns peer(FLAGS_peer_script, peer_why_not, cluster.ipc);
  status = RunBenchmark(cluster, curve, peer, &rows);
  if (!status.ok()) return status;
  return FinishTable(rows.size(), absl::ToDoubleSeconds(absl::Now() - start), FLAGS_json,
                     RowsJson(rows, cluster));
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain(
      "ps_bench",
      "ps_bench [--quick] [--keys=N --dim=D] [--servers=N] [--workers=M] "
      "[--mode=transport|table|both] [--auth=off|curve|both] [--min_seconds=S] "
      "[--json=PATH] [--peer=auto|off] [--peer_script=PATH]",
      argc, argv, granary::Run);
}
