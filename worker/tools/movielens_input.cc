#include "worker/tools/movielens_input.h"

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "worker/line_source.h"

namespace granary {
namespace {

constexpr int kFirstBucketedYear = 1990;  // earlier release years become decades
constexpr size_t kZipPrefixChars = 3;
constexpr const char* kNoGenre = "none";

// Calls `line_fn(line, where)` for each non-empty line of `path` (u.genre ends with a blank
// line), where = "path:line". Stops at the first error line_fn returns.
template <typename LineFn>
absl::Status ForEachNonEmptyLine(const std::string& path, LineFn line_fn) {
  return ForEachLine(path, [&](std::string_view line, uint64_t line_number) {
    if (line.empty()) return absl::OkStatus();
    return line_fn(absl::string_view(line.data(), line.size()),
                   absl::StrCat(path, ":", line_number));
  });
}

absl::Status BadLine(const std::string& where, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", reason));
}

// A token of the output must not contain the format's separators.
bool IsCleanToken(const std::string& token) {
  return !token.empty() && token.find_first_of("\t,;") == std::string::npos;
}

std::string AgeBucket(int age) {
  if (age < 18) return "under18";
  if (age < 25) return "18-24";
  if (age < 35) return "25-34";
  if (age < 45) return "35-44";
  if (age < 50) return "45-49";
  if (age < 56) return "50-55";
  return "56plus";
}

absl::Status ReadGenres(const std::string& path, std::vector<std::string>* genres) {
  return ForEachNonEmptyLine(path, [genres](absl::string_view line, const std::string& where) {
    std::vector<std::string> parts = absl::StrSplit(line, '|');
    int index = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &index) || index < 0 ||
        !IsCleanToken(parts[0])) {
      return BadLine(where, "expected 'name|index' with a name free of tabs, ',' and ';'");
    }
    if (static_cast<size_t>(index) >= genres->size()) genres->resize(index + 1);
    (*genres)[index] = parts[0];
    return absl::OkStatus();
  });
}

absl::Status ReadUsers(const std::string& path, absl::flat_hash_map<int, User>* users) {
  return ForEachNonEmptyLine(path, [users](absl::string_view line, const std::string& where) {
    std::vector<std::string> parts = absl::StrSplit(line, '|');
    int id = 0;
    int age = 0;
    if (parts.size() != 5 || !absl::SimpleAtoi(parts[0], &id) ||
        !absl::SimpleAtoi(parts[1], &age) || !IsCleanToken(parts[2]) || !IsCleanToken(parts[3]) ||
        !IsCleanToken(parts[4])) {
      return BadLine(where, "expected 'user id|age|gender|occupation|zip code'");
    }
    User& user = (*users)[id];
    user.gender = parts[2];
    user.age = AgeBucket(age);
    user.occupation = parts[3];
    user.zip3 = parts[4].substr(0, kZipPrefixChars);
    return absl::OkStatus();
  });
}

absl::Status ReadMovies(const std::string& path, const std::vector<std::string>& genre_names,
                        absl::flat_hash_map<int, Movie>* movies) {
  return ForEachNonEmptyLine(path, [&](absl::string_view line, const std::string& where) {
    std::vector<std::string> parts = absl::StrSplit(line, '|');
    int id = 0;
    if (parts.size() != 5 + genre_names.size() || !absl::SimpleAtoi(parts[0], &id)) {
      return BadLine(where, absl::StrCat("expected 'movie id|title|release date|video release "
                                         "date|IMDb URL' and ",
                                         genre_names.size(), " genre flags"));
    }
    Movie& movie = (*movies)[id];
    std::vector<std::string> genres;
    for (size_t g = 0; g < genre_names.size(); ++g) {
      const std::string& flag = parts[5 + g];
      if (flag != "0" && flag != "1") return BadLine(where, "genre flags must be 0 or 1");
      if (flag == "1") {
        genres.push_back(genre_names[g]);
        movie.genre_ids.push_back(static_cast<int>(g));
      }
    }
    movie.genres = absl::StrJoin(genres, ",");
    movie.first_genre = genres.empty() ? kNoGenre : genres.front();
    // Release dates look like "01-Jan-1995".
    const std::string& date = parts[2];
    int year = 0;
    if (date.size() >= 4 && absl::SimpleAtoi(date.substr(date.size() - 4), &year)) {
      movie.release_year = year;
      movie.year =
          year >= kFirstBucketedYear ? absl::StrCat(year) : absl::StrCat(year / 10 * 10, "s");
    }
    return absl::OkStatus();
  });
}

absl::Status ReadRatings(const std::string& path, const absl::flat_hash_map<int, User>& users,
                         const absl::flat_hash_map<int, Movie>& movies,
                         std::vector<Rating>* ratings) {
  return ForEachNonEmptyLine(path, [&](absl::string_view line, const std::string& where) {
    std::vector<std::string> parts = absl::StrSplit(line, '\t');
    Rating r;
    if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &r.user) ||
        !absl::SimpleAtoi(parts[1], &r.movie) || !absl::SimpleAtoi(parts[2], &r.rating) ||
        !absl::SimpleAtoi(parts[3], &r.timestamp)) {
      return BadLine(where, "expected 'user id<TAB>item id<TAB>rating<TAB>timestamp'");
    }
    if (r.rating < 1 || r.rating > 5) return BadLine(where, "rating must be in 1..5");
    if (!users.contains(r.user)) return BadLine(where, absl::StrCat("unknown user ", r.user));
    if (!movies.contains(r.movie)) return BadLine(where, absl::StrCat("unknown movie ", r.movie));
    ratings->push_back(r);
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<MovielensInput> ReadMovielens(const std::string& input_dir) {
  const std::string in = input_dir + "/";
  MovielensInput input;
  absl::Status status = ReadGenres(in + "u.genre", &input.genre_names);
  if (status.ok()) status = ReadUsers(in + "u.user", &input.users);
  if (status.ok()) status = ReadMovies(in + "u.item", input.genre_names, &input.movies);
  if (status.ok()) status = ReadRatings(in + "u.data", input.users, input.movies, &input.ratings);
  if (!status.ok()) return status;
  if (input.ratings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(in, "u.data: no ratings"));
  }
  return input;
}

}  // namespace granary
