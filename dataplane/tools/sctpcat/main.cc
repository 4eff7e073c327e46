// smig-sctpcat: nc/sctp_darn for multi-homed SCTP on either stack. Prints events, per-path
// stats and a summary as JSON lines; see --help.
#include <csignal>
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "dataplane/tools/sctpcat/cat_runner.h"
#include "dataplane/transport/endpoint.h"

ABSL_FLAG(std::string, sctp_stack, "auto", "SCTP stack: auto, kernel or userland");
ABSL_FLAG(bool, listen, false, "Wait for associations (otherwise --peer is required)");
ABSL_FLAG(std::vector<std::string>, local, {}, "Local addresses to bind, comma-separated");
ABSL_FLAG(uint32_t, port, 0, "Local SCTP port (0: any)");
ABSL_FLAG(std::vector<std::string>, peer, {}, "Peer addresses to connect to, comma-separated");
ABSL_FLAG(uint32_t, peer_port, 0, "Peer SCTP port");
ABSL_FLAG(uint32_t, udp_port, 0,
          "Local UDP encapsulation port. userland: 0 means 9899; kernel: 0 means plain SCTP, "
          "non-zero turns on the kernel's UDP encapsulation (Linux >= 5.11)");
ABSL_FLAG(uint32_t, peer_udp_port, 0, "The peer's UDP encapsulation port (0: 9899)");
ABSL_FLAG(uint32_t, streams, 16, "Streams requested in each direction");
ABSL_FLAG(std::string, send, "",
          "What to send: stdin (a message per line), numbered (--rate/--count/--duration), or "
          "none. Default: stdin when connecting, none when listening");
ABSL_FLAG(double, rate, 0, "Numbered messages per second (0: as fast as possible)");
ABSL_FLAG(uint64_t, size, 1000, "Numbered message size in bytes; also the stdin chunk limit");
ABSL_FLAG(uint64_t, count, 0, "Numbered messages to send (0: until --duration or a signal)");
ABSL_FLAG(absl::Duration, duration, absl::InfiniteDuration(), "How long to send numbered messages");
ABSL_FLAG(std::vector<std::string>, send_streams, {"1"}, "Streams to send on, round-robin");
ABSL_FLAG(uint32_t, ppid, 0, "Payload protocol identifier of sent messages");
ABSL_FLAG(bool, unordered, false, "Send unordered messages");
ABSL_FLAG(std::string, primary, "", "Peer ip:port to make the primary path once up");
ABSL_FLAG(std::string, path, "",
          "Send every message to this peer path (ip:port or ip), overriding the primary");
ABSL_FLAG(std::string, profile, "fast", "Failover profile: fast or default (RFC 4960 timers)");
ABSL_FLAG(uint64_t, max_message_size, 1 << 20, "Largest message sent or reassembled");
ABSL_FLAG(absl::Duration, stats_interval, absl::ZeroDuration(),
          "Print per-path stats this often (0: never)");
ABSL_FLAG(bool, print_messages, false, "Print a record per received message");
ABSL_FLAG(std::string, data_out, "",
          "Write received payloads to this file ('-': stdout, and records go to stderr)");
ABSL_FLAG(bool, once, false, "Exit when the first association ends");
ABSL_FLAG(bool, check_stack, false,
          "Open the endpoint, print which stack and port it got, and exit (0 if it works)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10), "Give up connecting after this");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

absl::StatusOr<smig::sctpcat::CatOptions::Input> ParseInput(const std::string& s, bool listen) {
  using Input = smig::sctpcat::CatOptions::Input;
  if (s.empty()) return listen ? Input::kNone : Input::kStdin;
  if (s == "stdin") return Input::kStdin;
  if (s == "numbered") return Input::kNumbered;
  if (s == "none") return Input::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--send=", s, ": use stdin, numbered or none"));
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
      "multi-homed SCTP, like nc or sctp_darn, on the kernel or the userland stack.\n"
      "  listen:  smig-sctpcat --listen --local=10.1.0.1,10.2.0.1 --port=5000\n"
      "  connect: smig-sctpcat --local=10.1.0.2,10.2.0.2 --peer=10.1.0.1,10.2.0.1 "
      "--peer-port=5000 --send=numbered --rate=1000 --count=5000 --stats-interval=1s\n"
      "Prints JSON lines (smig.transport.v1.CatRecord): events, per-path stats, a summary.\n"
      "Flag names take dashes or underscores.");

  absl::StatusOr<smig::transport::StackChoice> stack =
      smig::transport::ParseStackChoice(absl::GetFlag(FLAGS_sctp_stack));
  if (!stack.ok()) return smig::Fail(stack.status());
  bool listen = absl::GetFlag(FLAGS_listen);
  if (!listen && absl::GetFlag(FLAGS_peer).empty() && !absl::GetFlag(FLAGS_check_stack)) {
    return smig::Fail(absl::InvalidArgumentError("give --listen, or --peer and --peer-port"));
  }
  auto port_flag = [](uint32_t v, const char* name) -> absl::StatusOr<uint16_t> {
    if (v > 65535) return absl::InvalidArgumentError(absl::StrCat("--", name, "=", v, " > 65535"));
    return static_cast<uint16_t>(v);
  };

  smig::transport::EndpointOptions eo;
  eo.local_addresses = absl::GetFlag(FLAGS_local);
  absl::StatusOr<uint16_t> port = port_flag(absl::GetFlag(FLAGS_port), "port");
  absl::StatusOr<uint16_t> udp = port_flag(absl::GetFlag(FLAGS_udp_port), "udp_port");
  absl::StatusOr<uint16_t> peer_udp = port_flag(absl::GetFlag(FLAGS_peer_udp_port), "peer_udp_port");
  absl::StatusOr<uint16_t> peer_port = port_flag(absl::GetFlag(FLAGS_peer_port), "peer_port");
  absl::StatusOr<uint16_t> streams = port_flag(absl::GetFlag(FLAGS_streams), "streams");
  for (const auto* s : {&port, &udp, &peer_udp, &peer_port, &streams}) {
    if (!s->ok()) return smig::Fail(s->status());
  }
  eo.port = *port;
  eo.udp_encaps_port = *udp;
  eo.remote_udp_encaps_port = *peer_udp;
  eo.streams = *streams;
  eo.listen = listen;
  eo.max_message_size = absl::GetFlag(FLAGS_max_message_size);
  const std::string profile = absl::GetFlag(FLAGS_profile);
  if (profile == "fast") {
    eo.profile = smig::transport::FastFailoverProfile();
  } else if (profile == "default") {
    eo.profile = smig::transport::DefaultFailoverProfile();
  } else {
    return smig::Fail(absl::InvalidArgumentError(absl::StrCat("--profile=", profile, ": use fast or default")));
  }

  smig::sctpcat::CatOptions co;
  co.connect = !listen;
  co.peers = absl::GetFlag(FLAGS_peer);
  co.peer_port = *peer_port;
  absl::StatusOr<smig::sctpcat::CatOptions::Input> input =
      ParseInput(absl::GetFlag(FLAGS_send), listen);
  if (!input.ok()) return smig::Fail(input.status());
  co.input = *input;
  co.stdin_stream = &std::cin;
  co.rate = absl::GetFlag(FLAGS_rate);
  co.size = absl::GetFlag(FLAGS_size);
  co.count = absl::GetFlag(FLAGS_count);
  co.duration = absl::GetFlag(FLAGS_duration);
  co.streams.clear();
  for (const std::string& s : absl::GetFlag(FLAGS_send_streams)) {
    uint32_t v = 0;
    if (!absl::SimpleAtoi(s, &v) || v >= eo.streams) {
      return smig::Fail(absl::InvalidArgumentError(absl::StrCat(
          "--send_streams: \"", s, "\" is not a stream below --streams=", eo.streams)));
    }
    co.streams.push_back(static_cast<uint16_t>(v));
  }
  co.ppid = absl::GetFlag(FLAGS_ppid);
  co.unordered = absl::GetFlag(FLAGS_unordered);
  co.primary = absl::GetFlag(FLAGS_primary);
  co.path = absl::GetFlag(FLAGS_path);
  co.stats_interval = absl::GetFlag(FLAGS_stats_interval);
  co.print_messages = absl::GetFlag(FLAGS_print_messages);
  co.once = absl::GetFlag(FLAGS_once);
  co.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);

  std::ofstream data_file;
  std::ostream* records = &std::cout;
  const std::string data_out = absl::GetFlag(FLAGS_data_out);
  if (data_out == "-") {
    co.data_out = &std::cout;
    records = &std::cerr;
  } else if (!data_out.empty()) {
    data_file.open(data_out, std::ios::binary | std::ios::trunc);
    if (!data_file) {
      return smig::Fail(absl::InvalidArgumentError(absl::StrCat("cannot write --data_out=", data_out)));
    }
    co.data_out = &data_file;
  }

  absl::StatusOr<std::unique_ptr<smig::transport::Endpoint>> ep =
      smig::transport::CreateEndpoint(*stack, eo);
  if (!ep.ok()) return smig::Fail(ep.status());
  if (absl::GetFlag(FLAGS_check_stack)) {
    std::cout << "{\"stack\":\"" << smig::transport::StackName((*ep)->stack())
              << "\",\"port\":" << (*ep)->local_port() << "}\n";
    return 0;
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);  // a vanished peer is an error code, not a dead process
  smig::sctpcat::CatRunner runner(**ep, co, *records);
  absl::Status s = runner.Run(g_stop);
  return s.ok() ? 0 : 1;
}
