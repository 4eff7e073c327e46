// SessionState import: the agent's ImportState (and OpenSession) hand the SMM's state to
// EdgeRole::ImportState, which is EdgeEngine::Serve and Describe; this target feeds them
// an arbitrary SessionState (protobuf binary, as gRPC delivers it). An accepted state is
// then served for a while to a real VehicleEngine over the fake transport, exported as the
// next migration would, and the export served by a second edge. Checks that an accepted
// session can be described and exported (file sources can always move) and that its export
// is accepted in turn; a refusal must be an error status, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/vehicle/vehicle_engine.h"
#include "tests/fuzz/fuzz_helpers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smig::dataplane;
  using smig::fuzz::Check;
  using smig::transport::testing::FakeEndpoint;
  using smig::transport::testing::FakeNetwork;
  v1::SessionState state;
  if (!state.ParseFromArray(data, static_cast<int>(size))) return 0;
  // The seeds carry no key: give them the one the vehicle holds, so that the input reaches
  // the serving behind the key check (a key of another size is refused, as it should be).
  if (state.session_key().empty()) state.set_session_key(smig::fuzz::kKey);
  FakeNetwork net;
  std::unique_ptr<FakeEndpoint> vehicle_ep = net.CreateEndpoint(
      {.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = smig::fuzz::kVehiclePort});
  std::unique_ptr<FakeEndpoint> a_ep =
      net.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
  std::unique_ptr<FakeEndpoint> b_ep =
      net.CreateEndpoint({.local_addresses = {"10.2.0.1"}, .listen = false});
  VehicleEngine vehicle(*vehicle_ep, {.deliver = [](auto...) {}});
  (void)vehicle.AdmitSession(state.session_id(), state.session_key());
  EdgeEngine a(*a_ep,
               {.server_id = "edge-a", .make_source = smig::fuzz::SourceFactory()});
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  absl::Status served = a.Serve(state, now);
  if (!served.ok()) return 0;
  Check(a.Describe(state.session_id()).ok(), "an imported session can be described");
  for (int i = 0; i < 20; ++i) {
    now += absl::Milliseconds(7);
    smig::fuzz::Drain(*a_ep, a, now);
    a.Pump(now);
    smig::fuzz::Drain(*vehicle_ep, vehicle, now);
  }
  absl::StatusOr<v1::SessionState> out = a.Export(state.session_id(), now);
  Check(out.ok(), "an imported file session can be exported");
  Check(out->session_id() == state.session_id(), "the export keeps the session id");
  Check(out->flows_size() == state.flows_size(), "the export keeps every flow");
  EdgeEngine b(*b_ep,
               {.server_id = "edge-b", .make_source = smig::fuzz::SourceFactory()});
  Check(b.Serve(*out, now).ok(), "an export is accepted by the next edge");
  for (int i = 0; i < 5; ++i) {
    now += absl::Milliseconds(7);
    smig::fuzz::Drain(*b_ep, b, now);
    b.Pump(now);
    smig::fuzz::Drain(*vehicle_ep, vehicle, now);
  }
  (void)a.Release(state.session_id());
  (void)b.Release(state.session_id());
  return 0;
}
