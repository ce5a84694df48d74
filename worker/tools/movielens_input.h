// The MovieLens-100K input files (u.genre, u.user, u.item, u.data), read into memory for
// granary_movielens_convert (worker/tools/movielens_convert.cc). Lines are read through
// worker/line_source.h; blank lines are skipped.
#ifndef GRANARY_WORKER_TOOLS_MOVIELENS_INPUT_H_
#define GRANARY_WORKER_TOOLS_MOVIELENS_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace granary {

// A user of u.user, as the output's tokens.
struct User {
  std::string gender, age, occupation, zip3;  // age: a bucket ("25-34"); zip3: 3 characters
};

// A movie of u.item.
struct Movie {
  std::string genres;          // joined by ','
  std::string first_genre;     // "none" if none
  std::string year;            // empty if unknown; years before 1990 as decades ("1970s")
  int release_year = 0;        // 0 if unknown
  std::vector<int> genre_ids;  // indices into u.genre, ascending
};

// A rating of u.data.
struct Rating {
  int user = 0;
  int movie = 0;
  int rating = 0;  // 1..5
  int64_t timestamp = 0;
};

struct MovielensInput {
  std::vector<std::string> genre_names;    // by index in u.genre
  absl::flat_hash_map<int, User> users;    // by user id
  absl::flat_hash_map<int, Movie> movies;  // by movie id
  std::vector<Rating> ratings;             // in u.data's order; each of a known user and movie
};

// Reads <input_dir>/u.genre, u.user, u.item and u.data. InvalidArgument naming "file:line" for
// a malformed line (a rating outside 1..5, an unknown user or movie among them), or naming
// u.data if it has no rating; LineSource's errors for a file that cannot be opened or read.
absl::StatusOr<MovielensInput> ReadMovielens(const std::string& input_dir);

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_MOVIELENS_INPUT_H_
