// The vehicle's side of the wire (dataplane/vehicle/vehicle_engine.h): three edges'
// associations to a real VehicleEngine over the fake transport, and the input says what
// each edge sends: raw bytes, CONTROL frames (HELLO, EdgePosition, anything the
// ControlMessage bytes parse to) or DATA frames, on any stream, with time passing and
// associations lost in between. A HELLO may be signed with the engine's key, so the
// input also reaches the code behind the HMAC check: claims, generations, positions,
// reassembly and contiguity. Checks the engine's promise whatever the edges send: the
// player gets each flow's frames in order, none twice.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "dataplane/vehicle/vehicle_engine.h"
#include "tests/fuzz/fuzz_helpers.h"

namespace {
using namespace smig::dataplane;
using smig::transport::testing::FakeEndpoint;
using smig::transport::testing::FakeNetwork;

enum Op : uint8_t { kRaw, kControl, kSignedHello, kData, kLose, kWait, kOpCount };

// A DATA frame whose payload starts with its own sequence number (8 bytes, big-endian), so
// that what the player gets says which frame it came from.
std::string TaggedData(const FrameHeader& h, absl::string_view payload) {
  std::string tagged(8, '\0');
  for (int i = 0; i < 8; ++i) tagged[i] = static_cast<char>(h.sequence >> (56 - 8 * i));
  tagged.append(payload.data(), payload.size());
  return EncodeFrame(h, tagged);
}

uint64_t TagOf(absl::string_view d) {
  smig::fuzz::Check(d.size() >= 8, "a delivered payload is a whole frame's");
  uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) seq = (seq << 8) | static_cast<uint8_t>(d[i]);
  return seq;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  FakeNetwork net;
  std::unique_ptr<FakeEndpoint> vehicle_ep =
      net.CreateEndpoint({.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = smig::fuzz::kVehiclePort});
  std::array<std::unique_ptr<FakeEndpoint>, 3> edges;
  std::array<smig::transport::AssocId, 3> assocs{};
  for (size_t i = 0; i < edges.size(); ++i) {
    edges[i] = net.CreateEndpoint(
        {.local_addresses = {"10.1.0." + std::to_string(i + 1)}, .listen = false});
    assocs[i] = *edges[i]->Connect({"10.9.0.1", "10.9.1.1"}, smig::fuzz::kVehiclePort);
  }
  // (session, flow) -> the sequence of the last payload the player got
  std::map<std::pair<uint64_t, uint32_t>, uint64_t> delivered;
  VehicleEngine vehicle(*vehicle_ep,
                        {.deliver = [&](uint64_t session, uint32_t flow, absl::string_view d) {
                           const uint64_t seq = TagOf(d);
                           auto [last, first] = delivered.try_emplace({session, flow}, seq);
                           smig::fuzz::Check(first || seq > last->second,
                                             "each flow is delivered in order, once");
                           last->second = seq;
                         }});
  smig::fuzz::Check(vehicle.AdmitSession(smig::fuzz::kSession, smig::fuzz::kKey).ok(),
                    "the session is given");
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  smig::fuzz::Drain(*vehicle_ep, vehicle, now);  // the associations come up
  for (int steps = 0; steps < 64 && in.remaining_bytes() > 0; ++steps) {
    const size_t e = in.ConsumeIntegralInRange<size_t>(0, edges.size() - 1);
    const uint16_t stream = in.ConsumeIntegralInRange<uint16_t>(0, 17);
    std::string wire;
    switch (in.ConsumeIntegralInRange<uint8_t>(0, kOpCount - 1)) {
      case kRaw: {
        wire = in.ConsumeRandomLengthString(2048);
        absl::StatusOr<FrameView> f = DecodeFrame(wire);
        if (f.ok() && f->header.kind == FrameKind::kData) wire = TaggedData(f->header, f->payload);
        break;
      }
      case kControl: {
        const uint64_t session = in.ConsumeIntegralInRange<uint64_t>(0, 9);
        v1::ControlMessage m;
        (void)m.ParseFromString(in.ConsumeRandomLengthString(512));
        wire = smig::fuzz::ControlFrame(session, m);
        break;
      }
      case kSignedHello: {
        v1::ControlMessage m;
        (void)m.mutable_hello()->ParseFromString(in.ConsumeRandomLengthString(512));
        *m.mutable_hello() = smig::fuzz::Resign(m.hello());
        wire = smig::fuzz::ControlFrame(m.hello().session_id(), m);
        break;
      }
      case kData: {
        FrameHeader h{.kind = FrameKind::kData,
                      .flow_id = in.ConsumeIntegralInRange<uint16_t>(0, 3),
                      .flags = in.ConsumeIntegral<uint16_t>(),
                      .session_id = in.ConsumeIntegralInRange<uint64_t>(0, 9),
                      .sequence = in.ConsumeIntegralInRange<uint64_t>(0, 64),
                      .source_offset = in.ConsumeIntegral<uint64_t>()};
        if (in.ConsumeBool()) h.sequence = in.ConsumeIntegral<uint64_t>();
        wire = TaggedData(h, in.ConsumeRandomLengthString(64));
        break;
      }
      case kLose:
        (void)net.LoseAssociation(*edges[e], assocs[e]);
        break;
      case kWait:
        now += absl::Milliseconds(in.ConsumeIntegralInRange<int>(0, 2000));
        break;
    }
    if (!wire.empty()) {
      (void)edges[e]->Send(assocs[e], {.stream = stream, .max_wait = absl::ZeroDuration()}, wire);
    }
    now += absl::Milliseconds(1);
    smig::fuzz::Drain(*vehicle_ep, vehicle, now);
    for (auto& ep : edges) smig::fuzz::Discard(*ep);  // the engine's answers
  }
  for (uint64_t session : vehicle.Sessions()) {
    (void)vehicle.Flows(session);
    (void)vehicle.Generations(session);
  }
  (void)vehicle.ServingServer();
  (void)vehicle.Servers();
  return 0;
}
