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
// Keys (proto::KeyEncoding, TableConfig.wire.keys) are lossless either way:
//
//   KEYS_RAW          n little-endian u64: today's wire, byte for byte.
//   KEYS_ELIAS_FANO   the n sorted unique keys of one request part. With H = ceil(log2 n) high
//                     bits and L = 64 - H low bits per key: first the n low parts, L bits each,
//                     packed from bit 0 of little-endian u64 words; then, from the next word, an
//                     upper bit array of n + 2^H bits where key i (high part h) sets bit h + i.
//                     Both arrays end in zero bits up to a whole word, so a frame's size is a
//                     function of n alone (EncodedKeyBytes). Keys are XXH3 hashes, uniform over
//                     2^64 (common/feature_key.h, no field id in the high bits), so the gaps are
//                     ~2^64 / n: a delta varint takes 7-9 bytes a key (8.2-8.6 on dupn's
//                     requests of 127-344 keys), Elias-Fano 2 + L bits (7.2-7.4 B there, 6.9 B
//                     at n = 2,000, 6.2 B at 100K; docs/performance.md "The light wire"). For a
//                     few keys the whole words make it no smaller than raw: KVWorker then sends
//                     the part raw, which a server takes for any table.
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

// The most keys one key frame may hold in an encoding other than KEYS_RAW; more is refused
// (EncodedKeyBytes 0), which keeps every size computed from a count far from overflow.
constexpr uint64_t kMaxEncodedKeys = uint64_t{1} << 40;

// Bytes of the key frame of `count` keys in `encoding`; 0 for an unknown encoding or a count
// over kMaxEncodedKeys (and for count 0).
size_t EncodedKeyBytes(proto::KeyEncoding encoding, uint64_t count);

// Encodes `keys` into a new array of EncodedKeyBytes(encoding, keys.size()) bytes, as u64 words.
// REQUIRES: keys ascending and unique, keys.size() <= kMaxEncodedKeys, encoding known.
std::vector<uint64_t> EncodeKeys(proto::KeyEncoding encoding, absl::Span<const uint64_t> keys);

// Decodes `frame` (bytes from a peer) as `count` keys into out[count]. InvalidArgument if the
// encoding is unknown, count is over kMaxEncodedKeys, the frame's size is not
// EncodedKeyBytes(encoding, count) (checked before anything is read), or it decodes to another
// number of keys, to keys not strictly ascending, or has bits set past its last key. Callers add
// who sent it and the table; out may be partly written on error.
absl::Status DecodeKeys(proto::KeyEncoding encoding, absl::Span<const uint8_t> frame,
                        uint64_t count, uint64_t* out);

}  // namespace granary

#endif  // GRANARY_COMMON_WIRE_CODEC_H_
