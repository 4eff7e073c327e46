// Writes the seed corpora of the binary targets into tests/fuzz/corpus/ (run it from the
// repository root after a `cmake --build --preset fuzz --target make_fuzz_seeds`): real
// frames, HELLOs and states made by the project's own encoders and engines, and op
// sequences for the FuzzedDataProvider targets (FdpWriter encodes what those read).
#include <cstdint>
#include <fstream>
#include <string>

#include "dataplane/vehicle/vehicle_engine.h"
#include "tests/fuzz/fuzz_helpers.h"

namespace {
using namespace smig::dataplane;
using smig::fuzz::ControlFrame;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  std::ofstream(std::string("tests/fuzz/corpus/") + target + "/" + name, std::ios::binary) << bytes;
}

// Builds an input for FuzzedDataProvider: strings from the front, integers from the back.
class FdpWriter {
 public:
  void Int(uint64_t min, uint64_t max, uint64_t v) {
    const uint64_t range = max - min, off = v - min;
    int bytes = 0;
    while (bytes < 8 && (range >> (8 * bytes)) > 0) ++bytes;
    for (int i = bytes - 1; i >= 0; --i) back_.push_back(static_cast<char>(off >> (8 * i)));
  }
  void Bool(bool b) { Int(0, 255, b ? 1 : 0); }
  void Str(const std::string& s) {
    for (char c : s) front_ += c == '\\' ? std::string("\\\\") : std::string(1, c);
    front_ += "\\n";  // ends the string
  }
  std::string Bytes() const { return front_ + std::string(back_.rbegin(), back_.rend()); }

 private:
  std::string front_, back_;
};

v1::ControlMessage HelloMessage(uint64_t generation, const std::string& server, uint64_t next) {
  v1::ControlMessage m;
  *m.mutable_hello() = smig::fuzz::Auth().Sign(smig::fuzz::kSession, server, generation);
  for (uint32_t flow : {0u, 1u}) {
    v1::FlowPosition* p = m.mutable_hello()->add_positions();
    p->set_flow_id(flow);
    p->set_next_sequence(next);
  }
  return m;
}

v1::ControlMessage Progress(uint64_t next, bool ack, uint64_t contiguous_generation) {
  v1::ControlMessage m;
  auto* flows = ack ? m.mutable_hello_ack()->mutable_flows() : m.mutable_progress()->mutable_flows();
  for (uint32_t flow : {0u, 1u}) {
    v1::FlowProgress* p = flows->Add();
    p->set_flow_id(flow);
    p->set_next_sequence(next);
    p->set_delivered_bytes(next * 1316);
  }
  if (ack) {
    m.mutable_hello_ack()->set_session_id(smig::fuzz::kSession);
    m.mutable_hello_ack()->set_accepts_edge_position(true);
  } else {
    m.mutable_progress()->set_session_id(smig::fuzz::kSession);
    m.mutable_progress()->set_contiguous(contiguous_generation != 0);
    m.mutable_progress()->set_contiguous_generation(contiguous_generation);
  }
  return m;
}

FrameHeader Data(uint16_t flow, uint64_t seq) {
  return {.kind = FrameKind::kData, .flow_id = flow, .session_id = smig::fuzz::kSession,
          .sequence = seq, .source_offset = seq * 1316};
}

// vehicle_control: one step of an edge (e) sending a signed HELLO or a DATA frame.
void VehicleHello(FdpWriter& w, int edge, uint64_t generation, uint64_t next) {
  w.Int(0, 2, edge);
  w.Int(0, 17, 0);
  w.Int(0, 5, 2);  // kSignedHello
  w.Str(HelloMessage(generation, "edge-" + std::to_string(edge), next).hello().SerializeAsString());
}
void VehicleData(FdpWriter& w, int edge, uint16_t flow, uint64_t seq, bool end) {
  w.Int(0, 2, edge);
  w.Int(0, 17, DataStream(flow));
  w.Int(0, 5, 3);  // kData
  w.Int(0, 3, flow);
  w.Int(0, 65535, end ? kFlagEndOfFlow : 0);
  w.Int(0, 9, smig::fuzz::kSession);
  w.Int(0, 64, seq);
  w.Int(0, UINT64_MAX, seq * 1316);
  w.Bool(false);
  w.Str("media-" + std::to_string(seq));
}

// edge_control: the vehicle's answer on stream 0, or an SMM call.
void EdgeControl(FdpWriter& w, const v1::ControlMessage& m) {
  w.Bool(true);  // stream 0
  w.Int(0, 6, 0);  // kControl
  w.Str(m.SerializeAsString());
  w.Bool(true);  // the session's id
}
void EdgeOp(FdpWriter& w, int op) {
  w.Bool(true);
  w.Int(0, 6, op);
}
void EdgeWait(FdpWriter& w, int ms) {
  EdgeOp(w, 2);
  w.Int(0, 3000, ms);
}
}  // namespace

int main() {
  // frame: DATA, end of flow, CONTROL carrying a HELLO.
  Write("frame", "data", EncodeFrame(Data(0, 42), std::string(1316, 'G')));
  FrameHeader end = Data(1, 7);
  end.flags = kFlagEndOfFlow;
  Write("frame", "end_of_flow", EncodeFrame(end, ""));
  Write("frame", "control_hello", ControlFrame(smig::fuzz::kSession, HelloMessage(2, "edge-b", 17)));

  // hello: the ControlMessages of the wire.
  Write("hello", "hello", HelloMessage(1, "edge-a", 0).SerializeAsString());
  Write("hello", "hello_positions", HelloMessage(3, "edge-c", 1234).SerializeAsString());
  Write("hello", "hello_ack", Progress(5, true, 0).SerializeAsString());
  Write("hello", "progress", Progress(9, false, 2).SerializeAsString());

  // vehicle_control: a session from one edge; a migration from edge 0 to edge 1.
  FdpWriter one;
  VehicleHello(one, 0, 1, 0);
  for (uint64_t s = 0; s < 4; ++s) VehicleData(one, 0, 0, s, s == 3);
  Write("vehicle_control", "one_edge", one.Bytes());
  FdpWriter move;
  VehicleHello(move, 0, 1, 0);
  for (uint64_t s = 0; s < 3; ++s) VehicleData(move, 0, 0, s, false);
  VehicleHello(move, 1, 2, 2);
  for (uint64_t s = 2; s < 5; ++s) VehicleData(move, 1, 0, s, false);
  VehicleData(move, 0, 0, 3, false);
  Write("vehicle_control", "migration", move.Bytes());

  // edge_control: the vehicle acks, reports progress, says a newer generation is
  // contiguous; the SMM exports and releases.
  FdpWriter edge;
  EdgeControl(edge, Progress(0, true, 0));
  EdgeWait(edge, 100);
  EdgeControl(edge, Progress(8, false, 0));
  EdgeOp(edge, 4);  // kExport
  EdgeControl(edge, Progress(12, false, 2));
  EdgeOp(edge, 5);  // kRelease
  Write("edge_control", "ack_progress_release", edge.Bytes());
  FdpWriter lost;
  EdgeControl(lost, Progress(0, true, 0));
  EdgeWait(lost, 200);
  EdgeOp(lost, 3);  // kLose
  EdgeWait(lost, 1500);
  EdgeControl(lost, Progress(3, true, 0));
  EdgeOp(lost, 4);
  Write("edge_control", "reconnect", lost.Bytes());

  // session_state: what OpenSession gets, and a checkpoint a real edge exported.
  v1::SessionState fresh = smig::fuzz::FreshSession();
  Write("session_state", "open", fresh.SerializeAsString());
  smig::transport::testing::FakeNetwork net;
  auto vehicle_ep = net.CreateEndpoint(
      {.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = smig::fuzz::kVehiclePort});
  auto edge_ep = net.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
  VehicleEngine vehicle(*vehicle_ep, {.deliver = [](auto...) {}});
  if (!vehicle.AdmitSession(smig::fuzz::kSession, smig::fuzz::kKey).ok()) return 1;
  EdgeEngine a(*edge_ep,
               {.server_id = "edge-a", .make_source = smig::fuzz::SourceFactory()});
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  fresh.set_redundancy(v1::REDUNDANCY_POLICY_ALWAYS);
  if (!a.Serve(fresh, now).ok()) return 1;
  for (int i = 0; i < 30; ++i) {
    now += absl::Milliseconds(7);
    smig::fuzz::Drain(*edge_ep, a, now);
    a.Pump(now);
    smig::fuzz::Drain(*vehicle_ep, vehicle, now);
  }
  absl::StatusOr<v1::SessionState> exported = a.Export(smig::fuzz::kSession, now);
  if (!exported.ok()) return 1;
  Write("session_state", "exported", exported->SerializeAsString());
  return 0;
}
