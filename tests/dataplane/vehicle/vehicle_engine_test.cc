#include "dataplane/vehicle/vehicle_engine.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_endpoint.h"
#include "tests/fakes/session_keys.h"

namespace smig::dataplane {
namespace {

using transport::AssocId;
using transport::testing::FakeEndpoint;
using transport::testing::FakeNetwork;
using testing::SignHello;
using testing::TestSessionKey;
namespace tv1 = transport::v1;

constexpr uint64_t kSession = 77;

// One edge: an endpoint with an association to the vehicle, speaking the wire protocol.
struct Edge {
  std::unique_ptr<FakeEndpoint> ep;
  AssocId assoc = 0;

  // `positions`: flow -> where the edge says it goes on from (Hello.positions).
  // `key`: the session's key of generation 1.
  void SendHello(const std::string& key, uint64_t generation, const std::string& server,
                 uint64_t session = kSession, const std::map<uint32_t, uint64_t>& positions = {}) {
    v1::ControlMessage m;
    *m.mutable_hello() = SignHello(key, session, server, generation);
    for (const auto& [flow, next] : positions) {
      v1::FlowPosition* p = m.mutable_hello()->add_positions();
      p->set_flow_id(flow);
      p->set_next_sequence(next);
    }
    Control(m, session);
  }
  void SendPosition(const std::map<uint32_t, uint64_t>& positions, uint64_t session = kSession) {
    v1::ControlMessage m;
    m.mutable_edge_position()->set_session_id(session);
    for (const auto& [flow, next] : positions) {
      v1::FlowPosition* p = m.mutable_edge_position()->add_flows();
      p->set_flow_id(flow);
      p->set_next_sequence(next);
    }
    Control(m, session);
  }
  void Control(const v1::ControlMessage& m, uint64_t session = kSession) {
    FrameHeader h{.kind = FrameKind::kControl, .session_id = session};
    ASSERT_TRUE(ep->Send(assoc, {.stream = 0}, EncodeFrame(h, m.SerializeAsString())).ok());
  }
  void Data(uint64_t seq, uint32_t flow = 0, uint64_t session = kSession) {
    DataOn(static_cast<uint16_t>(flow + 1), seq, flow, session);
  }
  void DataOn(uint16_t stream, uint64_t seq, uint32_t flow = 0, uint64_t session = kSession) {
    FrameHeader h{.kind = FrameKind::kData, .flow_id = static_cast<uint16_t>(flow),
                  .session_id = session, .sequence = seq, .source_offset = seq * 10};
    // May fail once the vehicle aborted the association; what matters is what it delivers.
    (void)ep->Send(assoc, {.stream = stream}, EncodeFrame(h, absl::StrCat("f", flow, "-", seq)));
  }
  // Control messages the vehicle sent this edge so far.
  std::vector<v1::ControlMessage> Received() {
    std::vector<v1::ControlMessage> out;
    while (true) {
      absl::StatusOr<std::optional<transport::Incoming>> in = ep->Receive(absl::ZeroDuration());
      if (!in.ok() || !in->has_value()) return out;
      if (const auto* m = std::get_if<transport::Message>(&**in)) {
        absl::StatusOr<FrameView> f = DecodeFrame(m->data);
        v1::ControlMessage c;
        if (f.ok() && c.ParseFromString(std::string(f->payload))) out.push_back(c);
      }
    }
  }
  bool Lost() {
    while (true) {
      absl::StatusOr<std::optional<transport::Incoming>> in = ep->Receive(absl::ZeroDuration());
      if (!in.ok() || !in->has_value()) return false;
      if (const auto* e = std::get_if<tv1::Event>(&**in);
          e != nullptr && e->type() == tv1::EVENT_TYPE_ASSOC_LOST) {
        return true;
      }
    }
  }
};

class VehicleEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vehicle_ = net_.CreateEndpoint({.local_addresses = {"10.9.0.1"}, .port = 6000});
    VehicleEngine::Options o;
    o.deliver = [this](uint64_t s, uint32_t f, absl::string_view d) {
      delivered_.push_back(absl::StrCat(s, "/", d));
      (void)f;
    };
    o.on_contiguous = [this](uint64_t, uint64_t g, absl::Duration) { contiguous_.push_back(g); };
    engine_ = std::make_unique<VehicleEngine>(*vehicle_, o);
    ASSERT_TRUE(engine_->AdmitSession(kSession, key_).ok());
  }

  Edge Connect(const std::string& addr) {
    Edge e;
    e.ep = net_.CreateEndpoint({.local_addresses = {addr}, .listen = false});
    e.assoc = *e.ep->Connect({"10.9.0.1"}, 6000);
    Pump();
    return e;
  }
  // Lets the engine handle everything queued at the vehicle.
  void Pump() {
    for (int i = 0; i < 10000; ++i) {
      absl::StatusOr<std::optional<transport::Incoming>> in = vehicle_->Receive(absl::ZeroDuration());
      bool more = in.ok() && in->has_value();
      engine_->Handle(in, now_);
      if (!more) return;
    }
  }
  std::vector<std::string> Expect(uint64_t from, uint64_t to) {
    std::vector<std::string> v;
    for (uint64_t i = from; i < to; ++i) v.push_back(absl::StrCat(kSession, "/f0-", i));
    return v;
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> vehicle_;
  std::unique_ptr<VehicleEngine> engine_;
  absl::Time now_ = absl::UnixEpoch();
  std::vector<std::string> delivered_;
  std::vector<uint64_t> contiguous_;
  const std::string key_ = TestSessionKey("vehicle-engine-test");
};

TEST_F(VehicleEngineTest, HelloThenDataIsDeliveredInOrderAndAcked) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  Pump();
  std::vector<v1::ControlMessage> got = a.Received();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got.front().has_hello_ack());
  for (uint64_t s : {0, 2, 1, 3}) a.Data(s);
  Pump();
  EXPECT_EQ(delivered_, Expect(0, 4));
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
}

TEST_F(VehicleEngineTest, WrongHmacIsAbortedAndNothingReachesThePlayer) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(TestSessionKey("another session's key"), 1, "edge-a");
  Pump();
  a.Data(0);  // may already be refused by the fake once aborted; either way nothing arrives
  Pump();
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(engine_->counters().hello_rejected, 1u);
  EXPECT_EQ(engine_->counters().dropped.at("bad_hello"), 1u);
  EXPECT_TRUE(a.Lost());
}

TEST_F(VehicleEngineTest, DataBeforeHelloIsAbortedAndNotDelivered) {
  Edge a = Connect("10.1.0.1");
  a.Data(0);
  Pump();
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(engine_->counters().dropped.at("no_hello"), 1u);
  EXPECT_TRUE(a.Lost());
}

TEST_F(VehicleEngineTest, GarbageAfterHelloIsDroppedAndCountedButTheStreamGoesOn) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  a.Data(0);
  ASSERT_TRUE(a.ep->Send(a.assoc, {.stream = 1}, "definitely not a frame, longer than 36 bytes").ok());
  ASSERT_TRUE(a.ep->Send(a.assoc, {.stream = 1}, "short").ok());
  a.Data(1);
  a.Data(2, 0, kSession + 1);  // another session's frame on this association
  Pump();
  EXPECT_EQ(delivered_, Expect(0, 2));
  EXPECT_EQ(engine_->counters().dropped.at("bad_magic"), 1u);
  EXPECT_EQ(engine_->counters().dropped.at("too_short"), 1u);
  EXPECT_EQ(engine_->counters().dropped.at("wrong_session"), 1u);
  EXPECT_FALSE(a.Lost());
}

// Each flow has its own stream and its own reassembler: a hole in flow 1 holds back only
// flow 1, never flow 0.
TEST_F(VehicleEngineTest, FlowsAreIndependentAHoleInOneDoesNotBlockAnother) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) {
    a.Data(s, 0);
    if (s != 3) a.Data(s, 1);  // flow 1's frame 3 is late
  }
  Pump();
  std::vector<std::string> f0, f1;
  for (const std::string& d : delivered_) (d.find("/f0-") != std::string::npos ? f0 : f1).push_back(d);
  EXPECT_EQ(f0.size(), 10u);  // all of flow 0
  EXPECT_EQ(f1.size(), 3u);   // flow 1 up to its hole
  a.Data(3, 1);
  Pump();
  f1.clear();
  for (const std::string& d : delivered_) {
    if (d.find("/f1-") != std::string::npos) f1.push_back(d);
  }
  ASSERT_EQ(f1.size(), 10u);
  for (uint64_t s = 0; s < 10; ++s) EXPECT_EQ(f1[s], absl::StrCat(kSession, "/f1-", s));
  EXPECT_EQ(engine_->Flows(kSession).size(), 2u);
}

// A redundant edge sends each frame twice: on the flow's stream and on its copy stream
// (flow + 1 + 8). The copies count as the flow's frames, each delivered once; DATA on
// any other stream is refused.
TEST_F(VehicleEngineTest, CopiesOnTheCopyStreamAreDeliveredOnceAndOtherStreamsRefused) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) {
    if (s != 4) a.Data(s);  // frame 4 is late on the data stream...
    a.DataOn(9, s);         // ...and its copy fills the hole
  }
  a.Data(4);
  a.DataOn(10, 0, 1);  // flow 1's copy stream
  a.DataOn(9, 10, 1);  // flow 1 on flow 0's copy stream
  a.DataOn(8, 10);     // stream 8: the copy stream of no flow
  Pump();
  EXPECT_EQ(std::count_if(delivered_.begin(), delivered_.end(),
                          [](const std::string& d) { return d.find("/f0-") != std::string::npos; }),
            10);
  EXPECT_EQ(delivered_.back(), absl::StrCat(kSession, "/f1-0"));
  EXPECT_EQ(engine_->Flows(kSession).at(0).stats.duplicates, 10u);
  EXPECT_EQ(engine_->counters().dropped.at("wrong_stream"), 2u);
  EXPECT_FALSE(a.Lost());
}

TEST(CopyStreamTest, FlowsBelowTheOffsetHaveOneWithinTheAssociationsStreams) {
  EXPECT_EQ(CopyStream(0, 16), 9);
  EXPECT_EQ(CopyStream(6, 16), 15);
  EXPECT_EQ(CopyStream(7, 16), 0);  // its data stream is 8: no room below the copies
  EXPECT_EQ(CopyStream(0, 9), 0);   // stream 9 does not exist
  EXPECT_EQ(CopyStream(0, 10), 9);
  EXPECT_TRUE(CarriesFlow(1, 0));
  EXPECT_TRUE(CarriesFlow(9, 0));
  EXPECT_FALSE(CarriesFlow(0, 0));
  EXPECT_FALSE(CarriesFlow(2, 0));
  EXPECT_TRUE(CarriesFlow(9, 8));    // flow 8's data stream (shared with flow 0's copies)
  EXPECT_FALSE(CarriesFlow(17, 8));  // flow 8 has no copy stream
}

TEST_F(VehicleEngineTest, TwoEdgesClaimingTheSameGenerationTheSecondIsRefused) {
  Edge a = Connect("10.1.0.1");
  Edge b = Connect("10.2.0.1");
  a.SendHello(key_, 1, "edge-a");
  Pump();
  b.SendHello(key_, 1, "edge-b");
  Pump();
  b.Data(0);
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("conflicting_claim"), 1u);
  EXPECT_TRUE(b.Lost());
  EXPECT_TRUE(delivered_.empty());
  EXPECT_THAT(engine_->Generations(kSession), ::testing::ElementsAre(1u));
}

TEST_F(VehicleEngineTest, MakeBeforeBreakDeliversEachFrameOnceAndReportsContiguity) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 100; ++s) a.Data(s);
  Pump();
  ASSERT_EQ(delivered_.size(), 100u);
  // The new edge starts from an older checkpoint (60), the old one keeps going to 120.
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b");
  Pump();
  std::vector<v1::ControlMessage> ack = b.Received();
  ASSERT_FALSE(ack.empty());
  ASSERT_TRUE(ack.front().has_hello_ack());
  EXPECT_EQ(ack.front().hello_ack().flows(0).next_sequence(), 100u);
  for (uint64_t s = 60, t = 100; s < 200 || t < 120;) {
    if (s < 200) b.Data(s++);
    if (t < 120) a.Data(t++);
    Pump();
  }
  EXPECT_EQ(delivered_, Expect(0, 200));
  auto flows = engine_->Flows(kSession);
  EXPECT_EQ(flows.at(0).stats.duplicates, 60u);  // 60..119 came twice
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  // The old edge is told that generation 2 is contiguous: it may release.
  bool told = false;
  for (const v1::ControlMessage& m : a.Received()) {
    told |= m.has_progress() && m.progress().contiguous() && m.progress().contiguous_generation() == 2;
  }
  EXPECT_TRUE(told);
  // And an edge of the old generation that comes back later is stale.
  Edge c = Connect("10.3.0.1");
  c.SendHello(key_, 1, "edge-c");
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("stale_generation"), 1u);
}

TEST_F(VehicleEngineTest, NewEdgeAheadOfThePlayerIsContiguousOnlyOnceTheOldEdgeFillsTheHole) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) a.Data(s);
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b");
  for (uint64_t s = 15; s < 20; ++s) b.Data(s);  // 10..14 still with the old edge
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  for (uint64_t s = 10; s < 15; ++s) a.Data(s);
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  EXPECT_EQ(delivered_, Expect(0, 20));
}

// A new edge further away than the old one: each of its frames arrives a little after the
// old edge's copy, so it never gets ahead of the player. Trailing by a few frames it still
// counts as contiguous (the old edge may go); trailing by more than the allowance it does not.
TEST_F(VehicleEngineTest, ASlightlyFartherNewEdgeIsContiguousAFarBehindOneIsNot) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 100; ++s) a.Data(s);
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b");
  for (uint64_t s = 50; s < 80; ++s) b.Data(s);  // 20 behind: more than 16
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  for (uint64_t s = 80, t = 100; t < 110; ++s, ++t) {  // keeps trailing by 20
    a.Data(t);
    b.Data(s);
  }
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  for (uint64_t s = 90; s < 100; ++s) b.Data(s);  // now 10 behind the player (110)
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));  // it may still be catching up
  now_ += absl::Milliseconds(99);
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  now_ += absl::Milliseconds(1);  // its lag has stood at 10 for contiguity_settle
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  for (uint64_t s = 100; s < 120; ++s) b.Data(s);  // the old edge is gone; b alone feeds
  Pump();
  EXPECT_EQ(delivered_, Expect(0, 120));
}

// A new edge whose association is still opening its window sends in bursts and gains on
// the player each round trip: confirming it 10 frames behind would release the old edge
// and leave the player waiting. It is confirmed once level, or once it stops gaining.
TEST_F(VehicleEngineTest, ANewEdgeStillCatchingUpIsConfirmedOnlyOnceItStopsGaining) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  uint64_t t = 0;
  for (; t < 100; ++t) a.Data(t);
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b");
  uint64_t s = 88;
  for (; s < 90; ++s) b.Data(s);  // 10 behind
  Pump();
  // Each 60 ms the old edge sends 10 more, the new one a growing burst: 14, 18, 22 frames.
  for (uint64_t burst : {14u, 18u, 22u}) {
    now_ += absl::Milliseconds(60);
    for (uint64_t i = 0; i < 10; ++i) a.Data(t++);
    for (uint64_t i = 0; i < burst && s < t; ++i) b.Data(s++);
    Pump();
    if (s < t) {
      EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u)) << "lag " << t - s;
    }
  }
  // Level with the player: confirmed at once.
  EXPECT_EQ(s, t);
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
}

// An idle session (a finished file, a paused live feed): the new edge has no frame to
// send, only its word on where it goes on from. At the player's position that is enough;
// the old edge is told at once.
TEST_F(VehicleEngineTest, AnIdleNewEdgeAtThePlayersPositionIsContiguousWithoutFrames) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) {
    a.Data(s);
    a.Data(s, 1);
  }
  Pump();
  (void)a.Received();
  now_ += absl::Seconds(1);  // the stream pauses: the session is idle
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b", kSession, {{0, 10}, {1, 10}});
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  std::vector<v1::ControlMessage> got = b.Received();
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(got.front().has_hello_ack());
  EXPECT_TRUE(got.front().hello_ack().accepts_edge_position());
  bool told = false;
  for (const v1::ControlMessage& m : a.Received()) {
    told |= m.has_progress() && m.progress().contiguous() && m.progress().contiguous_generation() == 2;
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(engine_->ServingServer(), "edge-b");
  // When the stream goes on, it comes from the new edge alone.
  for (uint64_t s = 10; s < 15; ++s) b.Data(s);
  Pump();
  EXPECT_EQ(delivered_.size(), 25u);
}

// A migration rolled back after the vehicle had confirmed the new edge: the new edge's
// association ends, and the old edge, which never stopped, is the serving one again (what
// the vehicle reports to the PMM).
TEST_F(VehicleEngineTest, AfterTheConfirmedNewEdgeLeavesTheOldEdgeServesAgain) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) a.Data(s);
  Pump();
  now_ += absl::Seconds(1);
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b", kSession, {{0, 10}});
  Pump();
  ASSERT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  ASSERT_EQ(engine_->ServingServer(), "edge-b");
  ASSERT_TRUE(b.ep->Abort(b.assoc).ok());  // the rollback releases edge-b
  Pump();
  EXPECT_EQ(engine_->ServingServer(), "edge-a");
  for (uint64_t s = 10; s < 15; ++s) a.Data(s);
  Pump();
  EXPECT_EQ(delivered_.size(), 15u);
}

// The HELLO's word came from an older checkpoint; after skipping what the HelloAck said
// the vehicle has, the edge says where it is now (EdgePosition).
TEST_F(VehicleEngineTest, AnEdgePositionAfterTheHelloAckConfirmsAnIdleEdge) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 40; ++s) a.Data(s);
  Pump();
  now_ += absl::Seconds(1);  // the stream pauses: the session is idle
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b", kSession, {{0, 20}});  // 20 behind: more than 16
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  b.SendPosition({{0, 40}});
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
}

// Safety: an edge that would go on from beyond the player's position would leave a hole.
// Its word never confirms it; only the old edge filling the hole does.
TEST_F(VehicleEngineTest, AnIdleNewEdgeBeyondThePlayersPositionIsNotContiguous) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) {
    a.Data(s);
    a.Data(s, 1);
  }
  Pump();
  now_ += absl::Seconds(1);  // the stream pauses: the session is idle
  Edge b = Connect("10.2.0.1");
  // Flow 0 is fine, flow 1 would skip 10..11.
  b.SendHello(key_, 2, "edge-b", kSession, {{0, 10}, {1, 12}});
  Pump();
  b.SendPosition({{0, 10}, {1, 12}});
  now_ += absl::Seconds(1);
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  EXPECT_EQ(engine_->ServingServer(), "edge-a");
  // A flow the vehicle never saw starts at 0: a new edge beyond it is not contiguous either.
  Edge c = Connect("10.3.0.1");
  c.SendHello(key_, 3, "edge-c", kSession, {{0, 10}, {1, 10}, {2, 5}});
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  // The old edge fills flow 1's hole: now the newest generation's word holds.
  for (uint64_t s = 10; s < 12; ++s) a.Data(s, 1);
  for (uint64_t s = 0; s < 5; ++s) a.Data(s, 2);
  Pump();
  // Media flowed again, so the new edge's word alone waits until the stream is idle again.
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  now_ += absl::Seconds(1);
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 3u));
}

// While media flows, a new edge's word is not enough: its own frames must arrive first, so
// that both edges send for a while (make-before-break).
TEST_F(VehicleEngineTest, WhileMediaFlowsANewEdgeNeedsItsOwnFrames) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) a.Data(s);
  Pump();
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b", kSession, {{0, 10}});
  now_ += absl::Milliseconds(50);  // less than idle_after: the stream is still flowing
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  a.Data(10);
  b.Data(10);
  Pump();
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
}

TEST_F(VehicleEngineTest, AnEdgePositionBeforeAHelloIsAborted) {
  Edge a = Connect("10.1.0.1");
  a.SendPosition({{0, 0}});
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("unexpected_control"), 1u);
  EXPECT_TRUE(a.Lost());
  EXPECT_TRUE(contiguous_.empty());
}

// ---- Session keys (docs/protocol.md, "Session keys") ----

TEST_F(VehicleEngineTest, AHelloForASessionItWasNotGivenIsRefusedWhateverItsKey) {
  // Another car's session, signed with that session's real key: this vehicle holds no key
  // for it, so whoever sends it is no edge of its own.
  Edge a = Connect("10.1.0.1");
  a.SendHello(TestSessionKey("car-b's session"), 1, "edge-a", kSession + 1);
  Pump();
  a.Data(0, 0, kSession + 1);
  Pump();
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(engine_->counters().dropped.at("unknown_session"), 1u);
  EXPECT_TRUE(a.Lost());
  EXPECT_THAT(engine_->Sessions(), ::testing::ElementsAre(kSession));  // none made for it
}

TEST_F(VehicleEngineTest, AHelloAckProvesTheVehicleHoldsTheKeyOfTheHellosGeneration) {
  Edge a = Connect("10.1.0.1");
  v1::ControlMessage m;
  *m.mutable_hello() = SignHello(key_, kSession, "edge-a", 1);
  a.Control(m);
  Pump();
  std::vector<v1::ControlMessage> got = a.Received();
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(got.front().has_hello_ack());
  auto gen1 = *HelloAuthenticator::Create(key_);
  EXPECT_TRUE(gen1.VerifyAck(m.hello(), got.front().hello_ack()).ok());
  auto gen2 = *HelloAuthenticator::Create(RatchetSessionKey(key_, 1, 2));
  EXPECT_FALSE(gen2.VerifyAck(m.hello(), got.front().hello_ack()).ok());
}

TEST_F(VehicleEngineTest, AReplayedHelloIsRefusedEvenAfterItsAssociationEnded) {
  Edge a = Connect("10.1.0.1");
  v1::ControlMessage m;
  *m.mutable_hello() = SignHello(key_, kSession, "edge-a", 1);
  a.Control(m);
  a.Data(0);
  Pump();
  ASSERT_EQ(delivered_.size(), 1u);
  // The edge's association ends; someone who recorded its HELLO plays it again.
  ASSERT_TRUE(a.ep->Abort(a.assoc).ok());
  Pump();
  Edge replay = Connect("10.9.9.9");
  replay.Control(m);
  Pump();
  replay.Data(1);
  Pump();
  EXPECT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(engine_->counters().dropped.at("replayed_hello"), 1u);
  EXPECT_TRUE(replay.Lost());
  // The edge itself reconnects with a fresh HELLO: accepted.
  Edge again = Connect("10.1.0.1");
  again.SendHello(key_, 1, "edge-a");
  again.Data(1);
  Pump();
  EXPECT_EQ(delivered_.size(), 2u);
}

TEST_F(VehicleEngineTest, AGenerationsKeyIsItsOwnAndTheOldOneIsAcceptedOnlyDuringTheOverlap) {
  Edge a = Connect("10.1.0.1");
  a.SendHello(key_, 1, "edge-a");
  for (uint64_t s = 0; s < 10; ++s) a.Data(s);
  Pump();
  // Generation 2 signed with generation 1's key (an edge that did not get the rotated
  // key, or a holder of the old one posing as the new edge): refused.
  Edge forged = Connect("10.4.0.1");
  v1::ControlMessage m;
  *m.mutable_hello() = HelloAuthenticator::Create(key_)->Sign(kSession, "edge-x", 2);
  forged.Control(m);
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("bad_hello"), 1u);
  EXPECT_TRUE(forged.Lost());
  // The real generation 2 overlaps with generation 1; both are accepted until it is
  // confirmed: the old edge may even reconnect meanwhile.
  Edge b = Connect("10.2.0.1");
  b.SendHello(key_, 2, "edge-b");
  Pump();
  ASSERT_TRUE(a.ep->Abort(a.assoc).ok());
  Pump();
  Edge a2 = Connect("10.1.0.1");
  a2.SendHello(key_, 1, "edge-a");
  Pump();
  EXPECT_THAT(engine_->Generations(kSession), ::testing::ElementsAre(1u, 2u));
  for (uint64_t s = 10; s < 20; ++s) b.Data(s);
  Pump();
  ASSERT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  // After the overlap, generation 1's key opens nothing.
  Edge late = Connect("10.3.0.1");
  late.SendHello(key_, 1, "edge-a");
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("stale_generation"), 1u);
  EXPECT_TRUE(late.Lost());
  // A claim far beyond the confirmed generation is refused without ratcheting that far.
  Edge far = Connect("10.5.0.1");
  far.SendHello(key_, 2 + VehicleEngine::kMaxGenerationsAhead + 1, "edge-z");
  Pump();
  EXPECT_EQ(engine_->counters().dropped.at("bad_hello"), 2u);
  EXPECT_EQ(delivered_, Expect(0, 20));
}

TEST_F(VehicleEngineTest, ASessionIsAdmittedOnceWithItsKey) {
  EXPECT_TRUE(engine_->AdmitSession(kSession, key_).ok());  // again, the same key: fine
  EXPECT_TRUE(absl::IsAlreadyExists(engine_->AdmitSession(kSession, TestSessionKey("other"))));
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->AdmitSession(kSession + 1, "short")));
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->AdmitSession(0, key_)));
}

}  // namespace
}  // namespace smig::dataplane
