// What several fuzz targets share: the key, HELLO signing, control frames, and a loop that
// drains an endpoint into an engine. Inputs are consumed with libFuzzer's
// FuzzedDataProvider (clang's <fuzzer/FuzzedDataProvider.h>).
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "dataplane/edge/edge_engine.h"
#include "dataplane/protocol/frame.h"
#include "dataplane/protocol/hello.h"
#include "google/protobuf/stubs/logging.h"
#include "smig/dataplane/v1/wire.pb.h"
#include "tests/dataplane/edge/paced_source.h"
#include "tests/fakes/fake_endpoint.h"
#include "tests/fakes/session_keys.h"
#include "tests/fuzz/fuzz_check.h"

namespace smig::fuzz {

inline const std::string kKey = dataplane::testing::TestSessionKey("fuzz-session-key");
inline constexpr uint64_t kSession = 7;
inline constexpr uint16_t kVehiclePort = 6000;

// The engines log each refused frame and path change, protobuf each string field that is
// not UTF-8; millions of runs need none of it.
inline const bool kQuietLogs = [] {
  FLAGS_minloglevel = google::GLOG_ERROR;
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

// Signs as an edge of `generation` of kSession does (kKey is generation 1's).
inline dataplane::HelloAuthenticator Auth(uint64_t generation = 1) {
  return *dataplane::HelloAuthenticator::Create(dataplane::RatchetSessionKey(kKey, 1, generation));
}

// The generation whose key Resign signs `hello` with: its own from 1 to 64 (ratcheting is
// a loop), else 1 (the vehicle refuses that, as it should: a wrong key).
inline uint64_t SigningGeneration(const dataplane::v1::Hello& hello) {
  return hello.generation() >= 1 && hello.generation() <= 64 ? hello.generation() : 1;
}

// `hello` with a valid nonce and MAC under kKey ratcheted to SigningGeneration (its
// positions kept), so the input reaches the code behind the HMAC check.
inline dataplane::v1::Hello Resign(const dataplane::v1::Hello& hello) {
  dataplane::v1::Hello signed_hello = Auth(SigningGeneration(hello)).Sign(
      hello.session_id(), hello.server_id().empty() ? "edge-f" : hello.server_id(),
      hello.generation());
  *signed_hello.mutable_positions() = hello.positions();
  return signed_hello;
}

inline std::string ControlFrame(uint64_t session, const dataplane::v1::ControlMessage& m) {
  return dataplane::EncodeFrame(
      {.kind = dataplane::FrameKind::kControl, .session_id = session}, m.SerializeAsString());
}

// Hands everything queued at `ep` to `engine.Handle` (a bounded number of items).
template <typename Engine>
void Drain(transport::testing::FakeEndpoint& ep, Engine& engine, absl::Time now) {
  for (int i = 0; i < 256; ++i) {
    auto in = ep.Receive(absl::ZeroDuration());
    const bool more = in.ok() && in->has_value();
    engine.Handle(in, now);
    if (!more) return;
  }
}

// Discards what is queued at `ep` (the fuzzer plays that side).
inline void Discard(transport::testing::FakeEndpoint& ep) {
  for (int i = 0; i < 256; ++i) {
    auto in = ep.Receive(absl::ZeroDuration());
    if (!in.ok() || !in->has_value()) return;
  }
}

// The edge's media: files are the unit tests' paced synthetic stream; the live kinds
// would open sockets, so the factory refuses them as an edge without the port would.
inline dataplane::EdgeEngine::SourceFactory SourceFactory() {
  return [](const dataplane::v1::FlowState& f,
            absl::Time now) -> absl::StatusOr<std::unique_ptr<dataplane::media::Source>> {
    if (!f.source().has_file()) return absl::UnavailableError("no sockets in the fuzzer");
    absl::Time anchor = now;
    if (f.has_checkpoint_due_at()) anchor = FromProto(f.checkpoint_due_at());
    return std::make_unique<dataplane::testing::PacedSource>(f.source_offset(), anchor);
  };
}

// A session as the SMM opens it: two file flows to the vehicle at 10.9.0.1:6000.
inline dataplane::v1::SessionState FreshSession() {
  dataplane::v1::SessionState s;
  s.set_format_version(1);
  s.set_session_id(kSession);
  s.set_generation(1);
  s.set_session_key(kKey);
  s.add_vehicle_addresses("10.9.0.1");
  s.add_vehicle_addresses("10.9.1.1");
  s.set_vehicle_port(kVehiclePort);
  for (uint32_t flow : {0u, 1u}) {
    dataplane::v1::FlowState* f = s.add_flows();
    f->set_flow_id(flow);
    f->mutable_source()->set_file("synthetic");
  }
  return s;
}

}  // namespace smig::fuzz
