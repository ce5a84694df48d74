#include "worker/serve/http_handlers.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto/serve.pb.h"
#include "glog/logging.h"
#include "google/protobuf/util/json_util.h"
#include "httplib.h"

namespace granary {

namespace {

constexpr char kJsonType[] = "application/json";
constexpr int kBadRequest = 400;
constexpr int kPayloadTooLarge = 413;
constexpr int kServerError = 500;
// Written by the trainer beside item_vectors.vec (worker/train/trainer.h).
constexpr char kUserVectorFile[] = "user_vectors.vec";

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  // Fields at their default ("" for no delta yet, 0 scores) are printed too.
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    json = R"({"error": "cannot print the response"})";
  }
  return json;
}

void SetError(int status, const std::string& message, httplib::Response* res) {
  proto::ErrorResponse error;
  error.set_error(message);
  res->status = status;
  res->set_content(ToJson(error), kJsonType);
}

proto::ModelVersion VersionOf(const ServedModel& model) {
  proto::ModelVersion version;
  version.set_base_day(model.version().base_day);
  version.set_delta_day(model.version().delta_day);
  return version;
}

}  // namespace

void ServeHandlers::Register(httplib::Server* server) const {
  server->set_payload_max_length(max_body_bytes_);
  server->Post("/score", [this](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<std::vector<std::string>> lines = parser_->Parse(req.body);
    if (!lines.ok()) return SetError(kBadRequest, std::string(lines.status().message()), &res);
    // The request keeps the version it took, whatever the poller publishes meanwhile.
    std::shared_ptr<const ServedModel> model = bundle_->Current();
    absl::StatusOr<proto::ScoreResponse> scores = scorer_->Score(parser_->header(), *lines, *model);
    if (!scores.ok()) {
      const bool bad_request = absl::IsInvalidArgument(scores.status());
      if (!bad_request) LOG(ERROR) << "POST /score failed: " << scores.status();
      return SetError(bad_request ? kBadRequest : kServerError,
                      std::string(scores.status().message()), &res);
    }
    *scores->mutable_version() = VersionOf(*model);
    res.set_content(ToJson(*scores), kJsonType);
  });
  server->Post("/topk", [this](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<ScoreRequestParser::UserQuery> query = parser_->ParseTopK(req.body);
    if (!query.ok()) return SetError(kBadRequest, std::string(query.status().message()), &res);
    std::shared_ptr<const ServedModel> model = bundle_->Current();
    absl::StatusOr<UserVectors> user =
        scorer_->UserVectorsOf(parser_->header(), query->line, *model);
    if (!user.ok()) {
      // A bad user line, or a model without vectors: the request's to fix or not to make.
      const bool bad_request =
          absl::IsInvalidArgument(user.status()) || absl::IsUnimplemented(user.status());
      if (!bad_request) LOG(ERROR) << "POST /topk failed: " << user.status();
      return SetError(bad_request ? kBadRequest : kServerError,
                      std::string(user.status().message()), &res);
    }
    absl::StatusOr<std::shared_ptr<const ItemVectorStore::DayVectors>> items =
        item_vectors_->ForDay(model->version().day());
    absl::StatusOr<std::vector<proto::TopKItem>> top =
        items.ok() ? TopKItems((*items)->vectors, *user, query->k) : items.status();
    if (!top.ok()) {
      LOG(ERROR) << "POST /topk failed: " << top.status();
      return SetError(kServerError, std::string(top.status().message()), &res);
    }
    proto::TopKResponse response;
    *response.mutable_version() = VersionOf(*model);
    response.set_vectors((*items)->path);
    for (proto::TopKItem& item : *top) *response.add_items() = std::move(item);
    res.set_content(ToJson(response), kJsonType);
  });
  server->Post("/popularity", [this](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<std::vector<std::string>> lines = parser_->Parse(req.body);
    if (!lines.ok()) return SetError(kBadRequest, std::string(lines.status().message()), &res);
    std::shared_ptr<const ServedModel> model = bundle_->Current();
    absl::StatusOr<UserVectors> items =
        scorer_->NewItemVectorsOf(parser_->header(), *lines, *model);
    if (!items.ok()) {
      // A bad item line, or a model that predicts no popularity: the request's to fix.
      const bool bad_request =
          absl::IsInvalidArgument(items.status()) || absl::IsUnimplemented(items.status());
      if (!bad_request) LOG(ERROR) << "POST /popularity failed: " << items.status();
      return SetError(bad_request ? kBadRequest : kServerError,
                      std::string(items.status().message()), &res);
    }
    // The user vectors exported with the item vectors POST /topk searches (same attempt).
    absl::StatusOr<std::shared_ptr<const ItemVectorStore::DayVectors>> day =
        item_vectors_->ForDay(model->version().day());
    const std::string user_path =
        day.ok() ? (std::filesystem::path((*day)->path).parent_path() / kUserVectorFile).string()
                 : std::string();
    absl::StatusOr<std::vector<float>> popularity =
        day.ok() ? popularity_.Of(user_path, *items) : day.status();
    if (!popularity.ok()) {
      LOG(ERROR) << "POST /popularity failed: " << popularity.status();
      return SetError(kServerError, std::string(popularity.status().message()), &res);
    }
    proto::PopularityResponse response;
    *response.mutable_version() = VersionOf(*model);
    response.set_user_vectors(user_path);
    for (float value : *popularity) response.add_popularity(value);
    res.set_content(ToJson(response), kJsonType);
  });
  server->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    proto::HealthResponse health;
    health.set_status("ok");
    *health.mutable_version() = VersionOf(*bundle_->Current());
    if (poller_ != nullptr) health.set_last_delta_error(poller_->last_error());
    res.set_content(ToJson(health), kJsonType);
  });
  server->Get("/version", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ToJson(VersionOf(*bundle_->Current())), kJsonType);
  });
  // Errors httplib answers itself (an over-limit body, an unknown path) get a JSON body too.
  const httplib::Server::HandlerWithResponse error_body = [this](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == kPayloadTooLarge) {
      SetError(res.status,
               absl::StrCat("the request body is over --max_body_bytes=", max_body_bytes_), &res);
    } else {
      SetError(res.status, absl::StrCat("HTTP ", res.status, " for ", req.method, " ", req.path),
               &res);
    }
    return httplib::Server::HandlerResponse::Handled;
  };
  server->set_error_handler(error_body);
}

}  // namespace granary
