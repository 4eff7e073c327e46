// CatRunner: the loop of smig-sctpcat over any transport::Endpoint (a real stack or the
// fake). It connects or waits, sends stdin or numbered messages at a rate, prints events,
// per-path stats and a final summary as JSON lines (CatRecord), and ends gracefully.
//
//   CatOptions o; o.connect = true; o.peers = {"10.0.1.1", "10.0.2.1"}; o.peer_port = 5000;
//   o.input = CatOptions::Input::kNumbered; o.rate = 1000; o.count = 5000;
//   CatRunner runner(*endpoint, o, std::cout);
//   absl::Status s = runner.Run(stop_flag);
#pragma once

#include <atomic>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "dataplane/tools/sctpcat/sequence_checker.h"
#include "dataplane/transport/endpoint.h"

namespace smig::sctpcat {

struct CatOptions {
  enum class Input { kNone, kStdin, kNumbered };

  bool connect = false;
  std::vector<std::string> peers;
  uint16_t peer_port = 0;

  Input input = Input::kNone;
  std::istream* stdin_stream = nullptr;  // for kStdin; read on a helper thread
  double rate = 0;                       // numbered messages per second; 0 = as fast as possible
  size_t size = 1000;                    // numbered message size, or stdin chunk limit (0: none)
  uint64_t count = 0;                    // numbered messages to send; 0 = until duration/stop
  absl::Duration duration = absl::InfiniteDuration();
  std::vector<uint16_t> streams = {1};   // used round-robin
  uint32_t ppid = 0;
  bool unordered = false;

  std::string primary;  // "ip:port" to make primary once the association is up
  std::string path;     // "ip:port" or "ip": send every message to this path (SCTP_ADDR_OVER)
  absl::Duration stats_interval = absl::ZeroDuration();
  bool print_messages = false;  // a record per received message (debugging; slow)
  std::ostream* data_out = nullptr;  // received payloads, raw
  bool once = false;  // exit after the first association ends
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration shutdown_timeout = absl::Seconds(10);
};

class CatRunner {
 public:
  // `endpoint` and `out` must outlive the runner.
  CatRunner(transport::Endpoint& endpoint, CatOptions options, std::ostream& out);
  ~CatRunner();

  // Runs until the input is done and the association shut down (sender), until the first
  // association ends (with `once`), or until `stop` is set. Prints the summary last.
  // UNAVAILABLE when the association could not start or was lost rather than shut down.
  absl::Status Run(const std::atomic<bool>& stop);

  const transport::v1::CatSummary& summary() const { return summary_; }

 private:
  class StdinReader;
  void Emit(transport::v1::CatRecord record);
  void EmitError(const absl::Status& status);
  void Handle(const transport::v1::Event& event);
  void Handle(const transport::Message& message);
  // Sends what is due now; true while there is more to send.
  bool SendDue();
  void SendOne(std::string payload);
  void EmitStats();
  void Finish();

  transport::Endpoint& endpoint_;
  CatOptions options_;
  std::ostream& out_;
  absl::Time start_;
  transport::v1::CatSummary summary_;
  SequenceChecker checker_;
  std::optional<transport::AssocId> assoc_;  // the association this runner sends on
  bool assoc_up_ = false;
  bool assoc_ended_ = false;
  transport::v1::EventType end_ = transport::v1::EVENT_TYPE_UNSPECIFIED;  // how it ended
  bool input_done_ = false;
  uint64_t next_sequence_ = 0;
  absl::Time next_send_;
  std::unique_ptr<StdinReader> stdin_reader_;
};

}  // namespace smig::sctpcat
