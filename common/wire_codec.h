// Wire codec: the one home of how a table's row values are laid out in a value frame
// (proto::ValueEncoding, chosen per table by TableConfig.wire).
//
//   VALUES_FP32  row = dim little-endian floats (4 dim bytes): today's wire, byte for byte.
//   VALUES_FP16  row = dim IEEE half floats (2 dim bytes), rounded to nearest even; a value
//                beyond +-65504 becomes +-Inf, NaN stays NaN.
//   VALUES_INT8  row = one float scale s = max|x| / 127, then dim signed bytes q = round(x / s)
//                in [-127, 127] (4 + dim bytes); decoded as q * s. A row of zeros (or of values
//                below 127 x FLT_MIN, 1.5e-36) has s = 0. A row holding a NaN or +-Inf gets
//                s = NaN, so it
//                decodes to NaN and the server's non-finite check refuses the push, as for fp32.
//
// Rows are encoded one after another, each in EncodedRowBytes(encoding, dim) bytes, so rows
// [b, e) of an encoded array are bytes [b, e) x EncodedRowBytes of it: a request sliced by
// server takes contiguous byte ranges of one encoding.
//
// Keys are not encoded: they are XXH3 hashes, uniform over 2^64 (common/feature_key.h), so the
// gaps between a request's sorted keys are ~2^64 / keys and a delta varint would take 7-8 of
// their 8 bytes (measured in docs/performance.md "Training throughput"); it does not pay.
//
// Thread-safe: pure functions.
#ifndef GRANARY_COMMON_WIRE_CODEC_H_
#define GRANARY_COMMON_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/proto/config.pb.h"

namespace granary {

// Bytes of one row of `dim` floats in `encoding`; 0 for an encoding this build does not know.
size_t EncodedRowBytes(proto::ValueEncoding encoding, size_t dim);

// Encodes values.size() / dim rows into `out`, which holds that many EncodedRowBytes.
// REQUIRES: dim >= 1, values.size() % dim == 0, EncodedRowBytes(encoding, dim) > 0.
void EncodeValues(proto::ValueEncoding encoding, absl::Span<const float> values, size_t dim,
                  uint8_t* out);

// The same, into a new array.
std::vector<uint8_t> EncodeValues(proto::ValueEncoding encoding, absl::Span<const float> values,
                                  size_t dim);

// Decodes `frame` (bytes from a peer) as `rows` rows of `dim` floats into out[rows x dim].
// InvalidArgument, before anything is written, if dim is 0, the encoding is unknown, or the
// frame's size is not rows x EncodedRowBytes(encoding, dim); callers add who sent it and the
// table. Non-finite values decode as non-finite (see above): the caller's checks see them.
absl::Status DecodeValues(proto::ValueEncoding encoding, absl::Span<const uint8_t> frame,
                          size_t rows, size_t dim, float* out);

}  // namespace granary

#endif  // GRANARY_COMMON_WIRE_CODEC_H_
