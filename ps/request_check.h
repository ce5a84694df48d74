// CheckRequest: the one home of a server's validation of a decoded data-plane request (PULL or
// PUSH), everything it checks before a table is touched or anything is allocated for the
// request. ParameterServer::Handle runs it on every request that passed DecodeMessage
// (common/message.h) and the fencing check; fuzz/server_request_fuzzer.cc runs it on every
// input that decodes, without a server process.
//
// A request it accepts is safe to execute on its table: a PULL's reply of keys x dim floats and
// a PUSH's keys x dim gradients are both within RequestBounds' limits, the value frame holds
// exactly what the command needs, and every key lies in the server's ranges.
//
// Thread-safe: a pure function of its arguments.
#ifndef GRANARY_PS_REQUEST_CHECK_H_
#define GRANARY_PS_REQUEST_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/message.h"
#include "common/shard_map.h"

namespace granary {

// What a server accepts: its identity in the shard map and its per-request limits (the
// defaults and flags are ServerOptions', ps/server.h).
struct RequestBounds {
  int server_rank = 0;  // named in errors
  // A request stamped with another shard-map version was routed by a stale map.
  uint64_t shard_map_version = 0;
  // The key ranges this server owns; every key of a request must lie in one. Not owned: the
  // caller keeps them alive while CheckRequest runs.
  absl::Span<const KeyRange> ranges;
  // At most this many keys per request, and at most this many bytes of keys and values
  // (keys x (8 + 4 x dim): the request's for a PUSH, its keys and the reply's values for a PULL).
  size_t max_request_keys = 0;
  size_t max_request_bytes = 0;
};

// What a request is checked against of the server's table: its dimension (0: no such table)
// and its wire encodings (TableConfig.wire). Built implicitly from a dimension, for tables on
// today's fp32 wire.
struct TableShape {
  TableShape(int dim = 0, proto::ValueEncoding pull_values = proto::VALUES_FP32,  // NOLINT
             proto::ValueEncoding push_values = proto::VALUES_FP32,
             proto::KeyEncoding keys = proto::KEYS_RAW)
      : dim(dim), pull_values(pull_values), push_values(push_values), keys(keys) {}
  int dim;
  proto::ValueEncoding pull_values;
  proto::ValueEncoding push_values;
  proto::KeyEncoding keys;
};

// The shape of the server's table `name`. Called once per request, before anything else is read
// of the table.
using TableDimension = absl::FunctionRef<TableShape(const std::string& name)>;

// OK if `*request` (from `sender`, as DescribeSender names it) is a PULL or PUSH the server
// accepts under `bounds`: the command is PULL or PUSH, its shard-map version is the server's,
// its table is known (`dim_of` > 0), its header's key_encoding is KEYS_RAW or the table's
// (wire.keys; a worker sends a part raw where the encoding would not be smaller), it
// carries at most max_request_keys keys (key_bytes / 8 raw, else the header's key_count, bounded
// before anything is decoded or allocated) and max_request_bytes bytes (counted as fp32 keys x
// (8 + 4 x dim), what the server holds once decoded), its header's value_encoding is the table's
// (push_values on a PUSH, pull_values on a PULL), read_only is set only on a PULL, its value
// frame holds keys x dim values in that encoding for a PUSH (common/wire_codec.h) and nothing for
// a PULL, an encoded key frame decodes to exactly key_count strictly ascending keys, and every
// key is in bounds.ranges. An accepted request with encoded keys has its key frame replaced by
// the decoded raw u64 keys, so the caller reads request->keys as on the raw wire. Otherwise, in
// that order of checks:
//   InvalidArgument    another command, another key or value encoding than the table's,
//                      read_only on a PUSH, a value frame of the wrong size, or a key frame that
//                      does not decode (wrong size, another count, unsorted or repeated keys);
//   FailedPrecondition another shard-map version;
//   NotFound           an unknown table;
//   ResourceExhausted  over a limit, naming its flag (--max_request_keys, --max_request_bytes);
//   OutOfRange         a key outside the ranges, naming the key and the server.
// Every error names the sender and, once known, the table.
// REQUIRES: `request` passed DecodeMessage (its key and value frames hold whole elements).
absl::Status CheckRequest(Message* request, const std::string& sender, const RequestBounds& bounds,
                          TableDimension dim_of);

// The index of the first non-finite value (±Inf or NaN) in `values`, or values.size() if all
// are finite. The server refuses a PUSH whole if its gradients hold one, before applying any.
// One branch-free pass for the usual all-finite request; only a poisoned one pays for a search.
size_t FirstNonFinite(absl::Span<const float> values);

}  // namespace granary

#endif  // GRANARY_PS_REQUEST_CHECK_H_
