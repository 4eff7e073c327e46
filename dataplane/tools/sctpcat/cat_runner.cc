#include "dataplane/tools/sctpcat/cat_runner.h"

#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"

namespace smig::sctpcat {

namespace v1 = transport::v1;

// Reads lines on its own thread so a blocking stdin never stalls the transport loop. The
// state is shared with the thread, which may outlive the reader while blocked in a read
// that only the process's exit ends.
class CatRunner::StdinReader {
 public:
  StdinReader(std::istream& in, size_t max_chunk) : state_(std::make_shared<State>()) {
    if (max_chunk == 0) max_chunk = std::string::npos;  // no limit; a step of 0 never ends
    thread_ = std::thread([state = state_, &in, max_chunk] {
      std::string line;
      while (std::getline(in, line)) {
        if (!in.eof()) line.push_back('\n');
        absl::MutexLock lock(&state->mu);
        for (size_t i = 0; i < line.size(); i += max_chunk) {
          state->chunks.push_back(line.substr(i, max_chunk));
        }
      }
      absl::MutexLock lock(&state->mu);
      state->eof = true;
    });
  }
  ~StdinReader() {
    bool eof;
    {
      absl::MutexLock lock(&state_->mu);
      eof = state_->eof;
    }
    if (eof) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }
  // Takes what was read so far; false once the input ended and everything was taken.
  bool Take(std::deque<std::string>& out) {
    absl::MutexLock lock(&state_->mu);
    for (std::string& c : state_->chunks) out.push_back(std::move(c));
    state_->chunks.clear();
    return !state_->eof;
  }

 private:
  struct State {
    absl::Mutex mu;
    std::deque<std::string> chunks ABSL_GUARDED_BY(mu);
    bool eof ABSL_GUARDED_BY(mu) = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

CatRunner::CatRunner(transport::Endpoint& endpoint, CatOptions options, std::ostream& out)
    : endpoint_(endpoint), options_(std::move(options)), out_(out) {
  if (options_.streams.empty()) options_.streams = {1};
}

CatRunner::~CatRunner() = default;

void CatRunner::Emit(v1::CatRecord record) {
  absl::Time now = absl::Now();
  record.set_t_s(absl::ToDoubleSeconds(now - start_));
  record.set_unix_s(absl::ToDoubleSeconds(now - absl::UnixEpoch()));
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(record, &json, o);
  out_ << json << '\n';
  out_.flush();
}

void CatRunner::EmitError(const absl::Status& status) {
  v1::CatRecord r;
  r.set_error(status.ToString());
  Emit(std::move(r));
}

void CatRunner::Handle(const v1::Event& event) {
  v1::CatRecord r;
  *r.mutable_event() = event;
  Emit(std::move(r));
  switch (event.type()) {
    case v1::EVENT_TYPE_ASSOC_UP:
      if (!assoc_ || *assoc_ == event.assoc_id()) {
        assoc_ = event.assoc_id();
        assoc_up_ = true;
        next_send_ = absl::Now();
        if (!options_.primary.empty()) {
          if (absl::Status s = endpoint_.SetPrimary(*assoc_, options_.primary); !s.ok()) {
            EmitError(s);
          }
        }
      }
      break;
    case v1::EVENT_TYPE_ASSOC_LOST:
    case v1::EVENT_TYPE_ASSOC_CANT_START:
    case v1::EVENT_TYPE_SHUTDOWN_COMPLETE:
      if (!assoc_ || *assoc_ == event.assoc_id()) {
        assoc_ended_ = true;
        end_ = event.type();
      }
      break;
    default:
      break;
  }
}

void CatRunner::Handle(const transport::Message& m) {
  summary_.set_messages_received(summary_.messages_received() + 1);
  summary_.set_bytes_received(summary_.bytes_received() + m.data.size());
  checker_.Observe(m.data, absl::Now());  // ignores messages that are not numbered
  if (options_.data_out != nullptr) options_.data_out->write(m.data.data(), m.data.size());
  if (options_.print_messages) {
    v1::CatRecord r;
    r.set_info(absl::StrCat("message assoc=", m.assoc, " stream=", m.stream, " ppid=", m.ppid,
                            " unordered=", m.unordered, " bytes=", m.data.size()));
    Emit(std::move(r));
  }
}

void CatRunner::SendOne(std::string payload) {
  uint16_t stream = options_.streams[summary_.messages_sent() % options_.streams.size()];
  absl::Status s = endpoint_.Send(
      *assoc_,
      {.stream = stream, .ppid = options_.ppid, .unordered = options_.unordered, .path = options_.path},
      payload);
  if (!s.ok()) {
    summary_.set_send_errors(summary_.send_errors() + 1);
    if (summary_.send_errors() <= 10) EmitError(s);
    return;
  }
  summary_.set_messages_sent(summary_.messages_sent() + 1);
  summary_.set_bytes_sent(summary_.bytes_sent() + payload.size());
}

bool CatRunner::SendDue() {
  if (options_.input == CatOptions::Input::kStdin) {
    std::deque<std::string> chunks;
    bool more = stdin_reader_->Take(chunks);
    for (std::string& c : chunks) SendOne(std::move(c));
    return more;
  }
  if (options_.input != CatOptions::Input::kNumbered) return false;
  absl::Time now = absl::Now();
  int burst = 0;
  while (burst++ < 256) {
    if (options_.count != 0 && next_sequence_ >= options_.count) return false;
    if (now - start_ >= options_.duration) return false;
    if (options_.rate > 0 && now < next_send_) return true;
    SendOne(MakeNumberedMessage(next_sequence_++, absl::Now(), options_.size));
    if (options_.rate > 0) next_send_ += absl::Seconds(1.0 / options_.rate);
  }
  return true;
}

void CatRunner::EmitStats() {
  for (transport::AssocId id : endpoint_.Associations()) {
    absl::StatusOr<v1::AssociationInfo> info = endpoint_.GetAssociation(id);
    if (!info.ok()) continue;  // ended meanwhile
    v1::CatRecord r;
    *r.mutable_stats() = *info;
    Emit(std::move(r));
  }
}

void CatRunner::Finish() {
  summary_.set_role(options_.input != CatOptions::Input::kNone ? "sender" : "receiver");
  checker_.Fill(summary_);
  summary_.set_duration_s(absl::ToDoubleSeconds(absl::Now() - start_));
  v1::CatRecord r;
  *r.mutable_summary() = summary_;
  Emit(std::move(r));
}

absl::Status CatRunner::Run(const std::atomic<bool>& stop) {
  start_ = absl::Now();
  {
    v1::CatRecord r;
    r.set_info(absl::StrCat("stack=", transport::StackName(endpoint_.stack()),
                            " port=", endpoint_.local_port()));
    Emit(std::move(r));
  }
  if (options_.connect) {
    absl::StatusOr<transport::AssocId> id = endpoint_.Connect(options_.peers, options_.peer_port);
    if (!id.ok()) {
      EmitError(id.status());
      return id.status();
    }
    assoc_ = *id;
  }
  if (options_.input == CatOptions::Input::kStdin) {
    stdin_reader_ = std::make_unique<StdinReader>(*options_.stdin_stream, options_.size);
  }
  absl::Status result;
  absl::Time next_stats = start_ + options_.stats_interval;
  std::optional<absl::Time> shutdown_deadline;
  while (!stop.load()) {
    absl::Time now = absl::Now();
    if (options_.connect && !assoc_up_ && !assoc_ended_ &&
        now - start_ > options_.connect_timeout) {
      result = absl::DeadlineExceededError(
          absl::StrCat("association to ", absl::StrJoin(options_.peers, ","), " port ",
                       options_.peer_port, " did not come up within ",
                       absl::FormatDuration(options_.connect_timeout)));
      break;
    }
    if (assoc_ended_ && (options_.once || options_.connect)) break;
    if (assoc_up_ && !assoc_ended_ && !input_done_ && options_.input != CatOptions::Input::kNone) {
      input_done_ = !SendDue();
      if (input_done_ && options_.connect) {
        if (absl::Status s = endpoint_.Shutdown(*assoc_); !s.ok()) EmitError(s);
        shutdown_deadline = absl::Now() + options_.shutdown_timeout;
      }
    }
    if (shutdown_deadline && absl::Now() > *shutdown_deadline) {
      result = absl::DeadlineExceededError("graceful shutdown did not complete; aborting");
      (void)endpoint_.Abort(*assoc_);
      break;
    }
    absl::Duration wait = absl::Milliseconds(10);
    if (options_.input == CatOptions::Input::kNumbered && assoc_up_ && !input_done_) {
      wait = std::clamp(next_send_ - absl::Now(), absl::ZeroDuration(), wait);
    }
    for (int i = 0; i < 4096; ++i) {
      absl::StatusOr<std::optional<transport::Incoming>> in =
          endpoint_.Receive(i == 0 ? wait : absl::ZeroDuration());
      if (!in.ok()) {
        EmitError(in.status());
        break;
      }
      if (!in->has_value()) break;
      std::visit([this](const auto& x) { Handle(x); }, **in);
    }
    if (options_.stats_interval > absl::ZeroDuration() && absl::Now() >= next_stats) {
      EmitStats();
      next_stats += options_.stats_interval;
    }
  }
  if (result.ok() && (end_ == v1::EVENT_TYPE_ASSOC_LOST || end_ == v1::EVENT_TYPE_ASSOC_CANT_START)) {
    result = absl::UnavailableError(absl::StrCat(
        "association ", assoc_.value_or(0),
        end_ == v1::EVENT_TYPE_ASSOC_LOST ? " was lost (peer dead or aborted)" : " could not start"));
  }
  if (!result.ok()) EmitError(result);
  Finish();
  return result;
}

}  // namespace smig::sctpcat
