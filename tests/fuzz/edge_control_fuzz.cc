// The edge's side of the wire (dataplane/edge/edge_engine.h): a real EdgeEngine serves a
// two-flow session to a "vehicle" that the input plays. The vehicle answers with CONTROL
// frames (HelloAck, Progress, anything the ControlMessage bytes parse to) or raw bytes on
// any stream, loses the association, lets time pass; the SMM exports, releases and serves
// the session again in between. Checks that a session this edge serves can always be
// exported (its sources are files), whatever the vehicle reported, and that the export
// can be served by a second edge (the migration's import).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "tests/fuzz/fuzz_helpers.h"

namespace {
using namespace smig::dataplane;
using smig::transport::testing::FakeEndpoint;
using smig::transport::testing::FakeNetwork;
using smig::fuzz::Check;
namespace tv1 = smig::transport::v1;

enum Op : uint8_t { kControl, kRaw, kWait, kLose, kExport, kRelease, kServe, kOpCount };

// What arrived at the vehicle: remembers the newest association and the newest HELLO
// (a HelloAck the input sends is signed for it, as a vehicle holding the key would), drops
// the rest.
void Collect(FakeEndpoint& vehicle, std::optional<smig::transport::AssocId>& assoc,
             std::optional<v1::Hello>& hello) {
  for (int i = 0; i < 256; ++i) {
    auto in = vehicle.Receive(absl::ZeroDuration());
    if (!in.ok() || !in->has_value()) return;
    if (const auto* e = std::get_if<tv1::Event>(&**in)) {
      if (e->type() == tv1::EVENT_TYPE_ASSOC_UP) assoc = e->assoc_id();
      continue;
    }
    const auto& m = std::get<smig::transport::Message>(**in);
    assoc = m.assoc;
    absl::StatusOr<FrameView> f = DecodeFrame(m.data);
    v1::ControlMessage c;
    if (f.ok() && c.ParseFromString(std::string(f->payload)) && c.has_hello()) hello = c.hello();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  FakeNetwork net;
  std::unique_ptr<FakeEndpoint> vehicle = net.CreateEndpoint(
      {.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = smig::fuzz::kVehiclePort});
  std::unique_ptr<FakeEndpoint> edge_ep =
      net.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
  std::unique_ptr<FakeEndpoint> next_ep =
      net.CreateEndpoint({.local_addresses = {"10.2.0.1"}, .listen = false});
  EdgeEngine edge(*edge_ep,
                  {.server_id = "edge-a", .make_source = smig::fuzz::SourceFactory()});
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  Check(edge.Serve(smig::fuzz::FreshSession(), now).ok(), "the seed session is served");
  std::optional<smig::transport::AssocId> assoc;
  std::optional<v1::Hello> hello;
  for (int steps = 0; steps < 64 && in.remaining_bytes() > 0; ++steps) {
    Collect(*vehicle, assoc, hello);
    std::string wire;
    const uint16_t stream = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint16_t>(1, 17);
    switch (in.ConsumeIntegralInRange<uint8_t>(0, kOpCount - 1)) {
      case kControl: {
        v1::ControlMessage m;
        (void)m.ParseFromString(in.ConsumeRandomLengthString(512));
        if (m.has_hello_ack() && hello && in.ConsumeBool()) {
          smig::fuzz::Auth(hello->generation()).SignAck(*hello, *m.mutable_hello_ack());
        }
        const uint64_t session = in.ConsumeBool() ? smig::fuzz::kSession : in.ConsumeIntegral<uint64_t>();
        wire = smig::fuzz::ControlFrame(session, m);
        break;
      }
      case kRaw:
        wire = in.ConsumeRandomLengthString(1024);
        break;
      case kWait:
        now += absl::Milliseconds(in.ConsumeIntegralInRange<int>(0, 3000));
        break;
      case kLose:
        if (assoc) (void)net.LoseAssociation(*vehicle, *assoc);
        break;
      case kExport: {
        absl::StatusOr<v1::SessionState> state = edge.Export(smig::fuzz::kSession, now);
        const bool served = !edge.Sessions().empty();
        Check(state.ok() == served, "a served file session can always be exported");
        if (!state.ok()) break;
        absl::StatusOr<v1::Session> described = edge.Describe(smig::fuzz::kSession);
        Check(described.ok(), "a served session can be described");
        // The next edge imports the checkpoint, as the SMM's migration does.
        EdgeEngine next(*next_ep,
                        {.server_id = "edge-b", .make_source = smig::fuzz::SourceFactory()});
        absl::Status imported = next.Serve(*state, now);
        Check(imported.ok(), "an exported checkpoint can be served by another edge");
        (void)next.Release(smig::fuzz::kSession);
        break;
      }
      case kRelease:
        (void)edge.Release(smig::fuzz::kSession);
        break;
      case kServe:
        (void)edge.Serve(smig::fuzz::FreshSession(), now);
        break;
    }
    if (!wire.empty() && assoc) {
      (void)vehicle->Send(*assoc, {.stream = stream, .max_wait = absl::ZeroDuration()}, wire);
    }
    now += absl::Milliseconds(5);
    smig::fuzz::Drain(*edge_ep, edge, now);
    edge.Pump(now);
    smig::fuzz::Discard(*next_ep);
  }
  return 0;
}
