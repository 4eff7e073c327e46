// smig-hello-flood: a hostile SCTP peer for tests. It poses as an edge towards a vehicle
// and floods it with HELLOs signed with the session key it is given (generation 1's, in
// --key-file; ratcheted to --generation): another session's key, a car's own, or the
// real one of the session it claims. It prints one JSON line of what came back.
//   --mode=each    a new association per HELLO, for session ids base, base+step, ...:
//                  connect, HELLO, then (--inject) a DATA frame for that session, wait up
//                  to 1 s for a HELLO_ACK or the abort, abort ourselves
//   --mode=same    one association, one HELLO for `base`, then count-1 more on it at once,
//                  then a graceful shutdown, so that the vehicle receives every one of them
//   --mode=replay  one signed HELLO for `base`, sent on a first association (then a
//                  graceful shutdown), and the very same bytes on count-1 new ones
#include <algorithm>
#include <csignal>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "dataplane/protocol/frame.h"
#include "dataplane/protocol/hello.h"
#include "dataplane/transport/endpoint.h"
#include "smig/dataplane/v1/session.pb.h"

ABSL_FLAG(std::string, sctp_stack, "userland", "SCTP stack: kernel or userland");
ABSL_FLAG(std::vector<std::string>, local, {}, "Local addresses to bind");
ABSL_FLAG(std::vector<std::string>, peer, {}, "The vehicle's addresses");
ABSL_FLAG(uint32_t, peer_port, 6000, "The vehicle's SCTP port");
ABSL_FLAG(uint32_t, udp_port, 0, "Userland: our UDP encapsulation port");
ABSL_FLAG(std::string, key_file, "", "The session key (32 bytes, generation 1's) to sign with");
ABSL_FLAG(std::string, mode, "each", "each, same or replay");
ABSL_FLAG(uint64_t, count, 100, "HELLOs to send");
ABSL_FLAG(uint64_t, session_base, 1000, "The first session id claimed");
ABSL_FLAG(uint64_t, session_step, 1, "each: the next HELLO's session id is this much higher");
ABSL_FLAG(uint64_t, generation, 1, "The generation claimed");
ABSL_FLAG(bool, inject, false, "each: a DATA frame after every HELLO");

namespace {

namespace tv1 = smig::transport::v1;
using smig::transport::AssocId;
using smig::transport::Endpoint;

struct Tally {
  uint64_t sent = 0, acked = 0, aborted = 0, failed = 0;
};

// Waits up to `timeout` for the first event of `assoc` whose type is in `types`; that type,
// or EVENT_TYPE_UNSPECIFIED when none came.
tv1::EventType AwaitEvent(Endpoint& ep, AssocId assoc, absl::Duration timeout,
                          std::initializer_list<tv1::EventType> types) {
  for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
    absl::StatusOr<std::optional<smig::transport::Incoming>> in =
        ep.Receive(absl::Milliseconds(50));
    if (!in.ok() || !in->has_value()) continue;
    const auto* e = std::get_if<tv1::Event>(&**in);
    if (e == nullptr || e->assoc_id() != assoc) continue;
    if (std::find(types.begin(), types.end(), e->type()) != types.end()) return e->type();
  }
  return tv1::EVENT_TYPE_UNSPECIFIED;
}

// Counts, for `timeout`, the control answers on `assoc` and whether the peer ended it.
void Collect(Endpoint& ep, AssocId assoc, absl::Duration timeout, uint64_t expected_acks,
             Tally& t) {
  uint64_t acks = 0;
  for (absl::Time end = absl::Now() + timeout; absl::Now() < end && acks < expected_acks;) {
    absl::StatusOr<std::optional<smig::transport::Incoming>> in =
        ep.Receive(absl::Milliseconds(50));
    if (!in.ok() || !in->has_value()) continue;
    if (const auto* e = std::get_if<tv1::Event>(&**in)) {
      if (e->assoc_id() == assoc && (e->type() == tv1::EVENT_TYPE_ASSOC_LOST ||
                                     e->type() == tv1::EVENT_TYPE_SHUTDOWN_COMPLETE)) {
        ++t.aborted;
        return;
      }
      continue;
    }
    const auto& m = std::get<smig::transport::Message>(**in);
    absl::StatusOr<smig::dataplane::FrameView> f = smig::dataplane::DecodeFrame(m.data);
    smig::dataplane::v1::ControlMessage c;
    if (f.ok() && c.ParseFromString(std::string(f->payload)) && c.has_hello_ack()) ++acks;
  }
  t.acked += acks;
}

// A CONTROL frame with a HELLO for `session`.
std::string HelloFrame(const smig::dataplane::HelloAuthenticator& auth, uint64_t session) {
  smig::dataplane::v1::ControlMessage hello;
  *hello.mutable_hello() = auth.Sign(session, "flood", absl::GetFlag(FLAGS_generation));
  smig::dataplane::FrameHeader h{.kind = smig::dataplane::FrameKind::kControl,
                                 .session_id = session};
  return smig::dataplane::EncodeFrame(h, hello.SerializeAsString());
}

// What an injector would like the player to play: frame 0 of flow 0.
absl::Status Inject(Endpoint& ep, AssocId assoc, uint64_t session) {
  smig::dataplane::FrameHeader h{.kind = smig::dataplane::FrameKind::kData, .flow_id = 0,
                                 .session_id = session, .sequence = 0};
  return ep.Send(assoc, {.stream = 1}, smig::dataplane::EncodeFrame(h, "INJECTED"));
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv, "floods a vehicle with HELLOs (a test tool)");
  // --inject sends right after a HELLO the vehicle may already have aborted: on kernel SCTP
  // that send's EPIPE would otherwise kill us (as smig-dataplane, we take it as an error).
  std::signal(SIGPIPE, SIG_IGN);
  std::ifstream key_in(absl::GetFlag(FLAGS_key_file));
  std::stringstream key;
  key << key_in.rdbuf();
  absl::StatusOr<smig::dataplane::HelloAuthenticator> auth =
      smig::dataplane::HelloAuthenticator::Create(
          smig::dataplane::RatchetSessionKey(key.str(), 1, absl::GetFlag(FLAGS_generation)));
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "each" && mode != "same" && mode != "replay") {
    std::cerr << "--mode=" << mode << ": use each, same or replay\n";
    return 2;
  }
  absl::StatusOr<smig::transport::StackChoice> stack =
      smig::transport::ParseStackChoice(absl::GetFlag(FLAGS_sctp_stack));
  if (!auth.ok() || !stack.ok()) {
    std::cerr << (auth.ok() ? stack.status() : auth.status()) << "\n";
    return 2;
  }
  smig::transport::EndpointOptions eo;
  eo.local_addresses = absl::GetFlag(FLAGS_local);
  eo.udp_encaps_port = static_cast<uint16_t>(absl::GetFlag(FLAGS_udp_port));
  eo.listen = false;
  eo.profile = smig::transport::FastFailoverProfile();
  absl::StatusOr<std::unique_ptr<Endpoint>> ep = smig::transport::CreateEndpoint(*stack, eo);
  if (!ep.ok()) {
    std::cerr << ep.status() << "\n";
    return 2;
  }
  const std::vector<std::string> peer = absl::GetFlag(FLAGS_peer);
  const uint16_t port = static_cast<uint16_t>(absl::GetFlag(FLAGS_peer_port));
  const uint64_t count = absl::GetFlag(FLAGS_count), base = absl::GetFlag(FLAGS_session_base);
  const uint64_t step = absl::GetFlag(FLAGS_session_step);
  const bool same = mode == "same";
  const std::string replayed = HelloFrame(*auth, base);  // replay: every association's
  Tally t;
  for (uint64_t i = 0; i < (same ? 1 : count); ++i) {
    absl::StatusOr<AssocId> assoc = (*ep)->Connect(peer, port);
    if (!assoc.ok() ||
        AwaitEvent(**ep, *assoc, absl::Seconds(2),
                   {tv1::EVENT_TYPE_ASSOC_UP, tv1::EVENT_TYPE_ASSOC_LOST,
                    tv1::EVENT_TYPE_ASSOC_CANT_START}) != tv1::EVENT_TYPE_ASSOC_UP) {
      ++t.failed;
      continue;
    }
    const uint64_t session = mode == "each" ? base + i * step : base;
    for (uint64_t k = 0; k < (same ? count : 1); ++k) {
      const std::string frame = mode == "replay" ? replayed : HelloFrame(*auth, session);
      if ((*ep)->Send(*assoc, {.stream = 0}, frame).ok()) ++t.sent;
    }
    if (mode == "each" && absl::GetFlag(FLAGS_inject)) (void)Inject(**ep, *assoc, session);
    Collect(**ep, *assoc, absl::Seconds(1), 1, t);
    if (mode == "each") {
      (void)(*ep)->Abort(*assoc);
    } else if ((*ep)->Shutdown(*assoc).ok()) {  // an abort would drop what is still queued
      AwaitEvent(**ep, *assoc, absl::Seconds(10),
                 {tv1::EVENT_TYPE_SHUTDOWN_COMPLETE, tv1::EVENT_TYPE_ASSOC_LOST});
    }
  }
  std::cout << absl::StrCat(R"({"sent":)", t.sent, R"(,"acked":)", t.acked, R"(,"aborted":)",
                            t.aborted, R"(,"failed":)", t.failed, "}")
            << std::endl;
  return 0;
}
