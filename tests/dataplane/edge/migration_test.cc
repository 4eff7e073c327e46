// Make-before-break at the engine level: edge A serves a session to the vehicle, edge B
// imports A's checkpoint and catches up, the vehicle reports B contiguous, A releases.
// Everything runs over the fake transport with a paced test source and explicit time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "dataplane/edge/edge_engine.h"
#include "dataplane/media/fingerprint.h"
#include "dataplane/vehicle/vehicle_engine.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/edge/engine_loop.h"
#include "tests/dataplane/edge/paced_source.h"
#include "tests/fakes/fake_endpoint.h"
#include "tests/fakes/session_keys.h"

namespace smig::dataplane {
namespace {

using transport::testing::FakeEndpoint;
using transport::testing::FakeNetwork;
using testing::Factory;
using testing::kChunk;
using testing::kChunks;
using testing::kPeriod;
using testing::PacedSource;

constexpr uint64_t kSession = 5;
const std::string kKey = testing::TestSessionKey("migration-test");
class MigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vehicle_ep_ = net_.CreateEndpoint({.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = 6000});
    a_ep_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
    b_ep_ = net_.CreateEndpoint({.local_addresses = {"10.2.0.1"}, .listen = false});
    vehicle_ = std::make_unique<VehicleEngine>(
        *vehicle_ep_,
        VehicleEngine::Options{
            .deliver = [this](uint64_t, uint32_t, absl::string_view d) {
              delivered_.emplace_back(d);
              if (last_delivery_ != absl::InfinitePast()) {
                max_gap_ = std::max(max_gap_, now_ - last_delivery_);
              }
              last_delivery_ = now_;
            },
            .on_contiguous = [this](uint64_t, uint64_t g, absl::Duration) { contiguous_.push_back(g); }});
    ASSERT_TRUE(vehicle_->AdmitSession(kSession, kKey).ok());
    a_ = std::make_unique<EdgeEngine>(
        *a_ep_,
        EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory(),
                            .on_superseded = [this](uint64_t, uint64_t) { a_superseded_ = true; }});
    b_ = std::make_unique<EdgeEngine>(
        *b_ep_,
        EdgeEngine::Options{.server_id = "edge-b", .make_source = Factory(),
                            .on_superseded = [this](uint64_t, uint64_t) { superseded_ = true; }});
  }

  v1::SessionState Fresh() {
    v1::SessionState s;
    s.set_format_version(1);
    s.set_session_id(kSession);
    s.set_generation(1);
    s.set_session_key(kKey);
    s.add_vehicle_addresses("10.9.0.1");
    s.add_vehicle_addresses("10.9.1.1");
    s.set_vehicle_port(6000);
    v1::FlowState* f = s.add_flows();
    f->set_flow_id(0);
    f->mutable_source()->set_file("synthetic");
    return s;
  }

  // Edge A with a 2 s handshake timeout, its error reports kept in a_errors_; both edges
  // run in Run().
  void UseEdgeAWithAShortHandshake() {
    a_ = std::make_unique<EdgeEngine>(
        *a_ep_,
        EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory(),
                            .on_error = [this](uint64_t session, const std::string& e) {
                              a_errors_.push_back({session, e});
                            },
                            .handshake_timeout = absl::Seconds(2)});
    a_pair_ = {a_.get(), a_ep_.get()};
    b_pair_ = {b_.get(), b_ep_.get()};
  }

  // Runs every engine for `d` of simulated time, in 1 ms steps.
  void Run(absl::Duration d) {
    for (absl::Time end = now_ + d; now_ < end; now_ += absl::Milliseconds(1)) {
      for (auto* pair : {&a_pair_, &b_pair_}) {
        EdgeEngine& e = *pair->first;
        FakeEndpoint& ep = *pair->second;
        testing::Deliver(e, ep, now_, 100);
        e.Pump(now_);
      }
      testing::Deliver(*vehicle_, *vehicle_ep_, now_, 1000);
    }
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> vehicle_ep_, a_ep_, b_ep_;
  std::unique_ptr<VehicleEngine> vehicle_;
  std::unique_ptr<EdgeEngine> a_, b_;
  std::pair<EdgeEngine*, FakeEndpoint*> a_pair_, b_pair_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  absl::Time last_delivery_ = absl::InfinitePast();
  absl::Duration max_gap_ = absl::ZeroDuration();
  std::vector<std::string> delivered_;
  std::vector<uint64_t> contiguous_;
  bool superseded_ = false;
  bool a_superseded_ = false;
  std::vector<std::pair<uint64_t, std::string>> a_errors_;

  // Runs in 1 ms steps until A is told that generation 2 is contiguous (at most `limit`);
  // returns how long that took.
  absl::Duration RunUntilASuperseded(absl::Duration limit) {
    absl::Time start = now_;
    while (!a_superseded_ && now_ - start < limit) Run(absl::Milliseconds(1));
    return now_ - start;
  }
};

TEST_F(MigrationTest, MigrationMidStreamDeliversEveryChunkOnceInOrderWithoutAStall) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(1));  // ~100 chunks through A
  ASSERT_GT(delivered_.size(), 90u);

  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->generation(), 2u);
  Run(absl::Milliseconds(50));  // the SMM takes a while; A keeps serving meanwhile
  ASSERT_TRUE(b_->Serve(*state, now_).ok());
  Run(absl::Milliseconds(200));
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  EXPECT_TRUE(superseded_ == false);  // B is the newest: nothing supersedes it
  ASSERT_TRUE(a_->Release(kSession).ok());
  Run(absl::Seconds(4));  // the rest of the stream through B alone

  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  auto flows = vehicle_->Flows(kSession);
  EXPECT_GT(flows.at(0).stats.duplicates, 0u);  // A and B overlapped
  // B started at the vehicle's position (its HelloAck), not 50 ms back at the checkpoint.
  EXPECT_GE(b_->frames_skipped(), 4u);
  EXPECT_EQ(a_->frames_skipped(), 0u);
  // The player never waited longer than the source's own pace (plus a step).
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));
  EXPECT_TRUE(a_->Sessions().empty());
}

// An idle session migrates: the stream has ended, so the new edge has no frame to send.
// Its HELLO says where it goes on from (the player's position), which is enough.
TEST_F(MigrationTest, AFinishedVodMigratesWithoutAFrame) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(4) + absl::Milliseconds(300));  // the whole file, and Progress after it
  ASSERT_EQ(delivered_.size(), kChunks);
  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->flows(0).next_sequence(), kChunks);
  const uint64_t sent_before = b_->frames_sent();
  ASSERT_TRUE(b_->Serve(*state, now_).ok());
  absl::Duration took = RunUntilASuperseded(absl::Seconds(2));
  EXPECT_TRUE(a_superseded_);
  // The fake network delivers within a step: a handful of steps, nowhere near a timeout.
  EXPECT_LE(took, absl::Milliseconds(5));
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  EXPECT_EQ(vehicle_->ServingServer(), "edge-b");
  EXPECT_EQ(b_->frames_sent(), sent_before);
  ASSERT_TRUE(a_->Release(kSession).ok());
  Run(absl::Milliseconds(100));
  EXPECT_TRUE(a_->Sessions().empty());
  EXPECT_EQ(delivered_.size(), kChunks);
}

// Safety: a new edge that would go on from beyond the player's position leaves a hole.
// With nothing left to fill it (the old edge has finished), it is never confirmed.
TEST_F(MigrationTest, ANewEdgeBeyondThePlayersPositionIsNotConfirmed) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(4) + absl::Milliseconds(300));
  ASSERT_EQ(delivered_.size(), kChunks);
  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  // A checkpoint 5 frames beyond where the player is.
  state->mutable_flows(0)->set_next_sequence(kChunks + 5);
  state->mutable_flows(0)->set_source_offset((kChunks + 5) * kChunk);
  ASSERT_TRUE(b_->Serve(*state, now_).ok());
  RunUntilASuperseded(absl::Seconds(1));
  EXPECT_FALSE(a_superseded_);
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u));
  EXPECT_EQ(vehicle_->ServingServer(), "edge-a");
  EXPECT_EQ(b_->Describe(kSession)->phase(), v1::SESSION_PHASE_SERVING);  // acked, not confirmed
}

// A full send buffer never blocks the edge's loop: frames wait in the edge's queue and go
// out in order once SCTP has room again; nothing is counted as an error or lost.
TEST_F(MigrationTest, AFullSendBufferDefersFramesWithoutLosingThem) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Milliseconds(500));
  size_t before = delivered_.size();
  net_.SetSendBufferFull(*a_ep_, true);
  Run(absl::Milliseconds(300));
  EXPECT_LE(delivered_.size(), before + 1);
  EXPECT_GT(a_->send_deferrals(), 0u);
  // Retries are spaced, not a busy loop: at most one per millisecond step.
  EXPECT_LE(a_->send_deferrals(), 301u);
  net_.SetSendBufferFull(*a_ep_, false);
  Run(absl::Seconds(4));
  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  EXPECT_EQ(a_->send_errors(), 0u);
}

// Both radios go dark for a while: what A sent meanwhile is lost, SCTP gives the
// association up, A connects again and the vehicle's HelloAck says where the player is.
// A serves again from there; the player loses nothing.
TEST_F(MigrationTest, AReconnectSendsAgainWhatWasLostWithTheOldAssociation) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(1));
  const size_t before = delivered_.size();
  net_.SetBlackhole(*a_ep_, true);
  Run(absl::Milliseconds(300));  // ~30 frames into the void
  EXPECT_EQ(delivered_.size(), before);
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  ASSERT_TRUE(net_.LoseAssociation(*a_ep_, d->associations(0).assoc_id()).ok());
  net_.SetBlackhole(*a_ep_, false);
  Run(absl::Seconds(4));  // a 1 s back-off, then the rest, caught up

  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  EXPECT_GE(a_->frames_resent(), 25u);
}

// Issue 15, overload defect 1: the stack drops the association and no notification
// reaches the edge (seen at 80 sessions: SERVING, no association, the vehicle without
// one). The next send fails with NOT_FOUND; the edge takes that for the association's
// loss, aborts what is left of it and connects again, and the vehicle's HelloAck has it
// serve again what went into the void (defect 3) before the loss was noticed.
TEST_F(MigrationTest, AnAssociationLostWithoutAnEventIsNoticedByItsSendErrors) {
  // No liveness checks: only the failing sends can tell.
  a_ = std::make_unique<EdgeEngine>(
      *a_ep_,
      EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory(),
                          .liveness_interval = absl::InfiniteDuration()});
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(1));
  net_.SetBlackhole(*a_ep_, true);
  Run(absl::Milliseconds(300));  // ~30 frames into the void
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  const transport::AssocId old = d->associations(0).assoc_id();
  ASSERT_TRUE(net_.DropSilently(*a_ep_, old).ok());
  net_.SetBlackhole(*a_ep_, false);
  Run(absl::Milliseconds(20));  // the next frame's send
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_CONNECTING);
  Run(absl::Seconds(4));  // a 1 s back-off, then the rest, caught up

  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  EXPECT_GE(a_->frames_resent(), 25u);
  d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->phase(), v1::SESSION_PHASE_SERVING);
  ASSERT_EQ(d->associations_size(), 1);
  EXPECT_NE(d->associations(0).assoc_id(), old);
  EXPECT_THAT(a_ep_->Associations(), ::testing::Not(::testing::Contains(old)));  // aborted
}

// Defect 1 on an idle session (the file is over, nothing fails to send): the edge asks
// the endpoint about an association it has not heard from for liveness_interval.
TEST_F(MigrationTest, AnIdleSessionsSilentlyLostAssociationIsNoticedByALivenessCheck) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Seconds(4) + absl::Milliseconds(300));  // the whole file
  ASSERT_EQ(delivered_.size(), kChunks);
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  const transport::AssocId old = d->associations(0).assoc_id();
  ASSERT_TRUE(net_.DropSilently(*a_ep_, old).ok());
  Run(absl::Seconds(3));  // a check within 1 s, a 1 s back-off, a new association

  d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->phase(), v1::SESSION_PHASE_SERVING);
  ASSERT_EQ(d->associations_size(), 1);  // before: SERVING with none
  EXPECT_NE(d->associations(0).assoc_id(), old);
  EXPECT_EQ(delivered_.size(), kChunks);
}

// Defect 1 before the first answer: an association the vehicle never answers (here its
// HelloAck is lost; as well a lost ASSOC_UP) is given up after handshake_timeout, and a
// new one is answered. The operator is told, once per unanswered association.
TEST_F(MigrationTest, AHelloThatIsNeverAnsweredIsTriedAgainOnANewAssociation) {
  UseEdgeAWithAShortHandshake();
  const auto& errors = a_errors_;
  net_.SetBlackhole(*vehicle_ep_, true);
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Milliseconds(100));
  net_.SetBlackhole(*vehicle_ep_, false);
  Run(absl::Milliseconds(1800));
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_CONNECTING);
  EXPECT_TRUE(delivered_.empty());
  EXPECT_TRUE(errors.empty());
  Run(absl::Seconds(3));  // the 2 s timeout, a 1 s back-off, then everything queued
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_SERVING);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, kSession);
  EXPECT_THAT(errors[0].second, ::testing::HasSubstr("did not answer the HELLO within 2s"));
  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
}

// Issue 17 (bad input): a vehicle that never acknowledges troubles only its own session.
// Its endpoint accepts the association and never reads, so no HelloAck ever comes; the
// edge tells the operator at every handshake timeout and keeps trying, while its other
// session, to a vehicle that answers, plays on time and whole.
TEST_F(MigrationTest, AVehicleThatNeverAnswersTroublesOnlyItsOwnSession) {
  UseEdgeAWithAShortHandshake();
  const auto& errors = a_errors_;
  std::unique_ptr<FakeEndpoint> mute =
      net_.CreateEndpoint({.local_addresses = {"10.8.0.1"}, .port = 6000});  // never read
  v1::SessionState muted = Fresh();
  muted.set_session_id(kSession + 1);
  muted.clear_vehicle_addresses();
  muted.add_vehicle_addresses("10.8.0.1");
  ASSERT_TRUE(a_->Serve(muted, now_).ok());
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(kPeriod * kChunks + absl::Seconds(3));
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_SERVING);
  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));  // paced as if it were alone
  EXPECT_EQ(a_->Describe(kSession + 1)->phase(), v1::SESSION_PHASE_CONNECTING);
  ASSERT_GE(errors.size(), 2u);  // a timeout, a 1 s back-off, a new association, ...
  for (const auto& [session, e] : errors) {
    EXPECT_EQ(session, kSession + 1);
    EXPECT_THAT(e, ::testing::HasSubstr("did not answer the HELLO within 2s"));
  }
}

// docs/protocol.md, "Session keys": whoever answers at the vehicle's addresses must prove
// it holds the session key (the HelloAck's MAC) before the edge sends it anything. An
// impostor that answers without the key, or with another one, gets no DATA frame; the edge
// reports it and connects again.
TEST_F(MigrationTest, AnAnswerWithoutTheSessionKeyGetsNoMedia) {
  UseEdgeAWithAShortHandshake();
  std::unique_ptr<FakeEndpoint> impostor =
      net_.CreateEndpoint({.local_addresses = {"10.7.0.1"}, .port = 6000});
  v1::SessionState state = Fresh();
  state.clear_vehicle_addresses();
  state.add_vehicle_addresses("10.7.0.1");
  ASSERT_TRUE(a_->Serve(state, now_).ok());
  int hellos = 0, data = 0;
  for (int step = 0; step < 3000; ++step, now_ += absl::Milliseconds(1)) {
    testing::Deliver(*a_, *a_ep_, now_, 100);
    a_->Pump(now_);
    for (int i = 0; i < 100; ++i) {
      auto in = impostor->Receive(absl::ZeroDuration());
      if (!in.ok() || !in->has_value()) break;
      const auto* m = std::get_if<transport::Message>(&**in);
      if (m == nullptr) continue;
      absl::StatusOr<FrameView> f = DecodeFrame(m->data);
      ASSERT_TRUE(f.ok());
      if (f->header.kind == FrameKind::kData) {
        ++data;
        continue;
      }
      v1::ControlMessage c;
      ASSERT_TRUE(c.ParseFromString(std::string(f->payload)));
      if (!c.has_hello()) continue;
      // Answers as a vehicle would, but: once without a MAC, then with another key's.
      v1::ControlMessage ack;
      ack.mutable_hello_ack()->set_session_id(kSession);
      ack.mutable_hello_ack()->set_accepts_edge_position(true);
      if (hellos++ % 2 == 1) {
        HelloAuthenticator::Create(testing::TestSessionKey("another session's key"))
            ->SignAck(c.hello(), *ack.mutable_hello_ack());
      }
      FrameHeader h{.kind = FrameKind::kControl, .session_id = kSession};
      (void)impostor->Send(m->assoc, {.stream = 0}, EncodeFrame(h, ack.SerializeAsString()));
    }
  }
  EXPECT_GE(hellos, 2);  // it kept trying: 1 s back-off between associations
  EXPECT_EQ(data, 0);
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_CONNECTING);
  ASSERT_FALSE(a_errors_.empty());
  EXPECT_THAT(a_errors_.front().second, ::testing::HasSubstr("does not hold it"));
}

// Issue 15, overload defect 2: a release succeeds when the association cannot shut down
// gracefully: the stack dropped it and refuses the SHUTDOWN with an error other than
// NOT_FOUND (before this change the kernel endpoint said UNAVAILABLE for its EPIPE). The
// session is let go at once and its association aborted.
TEST_F(MigrationTest, AReleaseSucceedsWhenTheAssociationCannotShutDown) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Milliseconds(500));
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  const transport::AssocId old = d->associations(0).assoc_id();
  ASSERT_TRUE(net_.DropSilently(*a_ep_, old,
                                absl::UnavailableError("ending association: Broken pipe"))
                  .ok());
  absl::Status released = a_->Release(kSession);
  EXPECT_TRUE(released.ok()) << released;
  EXPECT_TRUE(a_->Sessions().empty());
  EXPECT_THAT(a_ep_->Associations(), ::testing::Not(::testing::Contains(old)));
  EXPECT_EQ(a_->Release(kSession).code(), absl::StatusCode::kNotFound);  // not served any more
}

// Defect 2, later: the release started, but its SHUTDOWN_COMPLETE never comes (the stack
// dropped the association silently). After release_timeout the session is gone, so the
// node can drain.
TEST_F(MigrationTest, AReleaseWhoseShutdownNeverCompletesEndsAfterTheTimeout) {
  a_ = std::make_unique<EdgeEngine>(
      *a_ep_,
      EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory(),
                          .release_timeout = absl::Seconds(2)});
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  ASSERT_TRUE(a_->Serve(Fresh(), now_).ok());
  Run(absl::Milliseconds(500));
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  const transport::AssocId old = d->associations(0).assoc_id();
  ASSERT_TRUE(a_->Release(kSession).ok());
  ASSERT_TRUE(net_.DropSilently(*a_ep_, old, absl::InternalError("stuck")).ok());
  Run(absl::Seconds(1));
  ASSERT_EQ(a_->Sessions().size(), 1u);
  EXPECT_EQ(a_->Describe(kSession)->phase(), v1::SESSION_PHASE_RELEASING);
  Run(absl::Milliseconds(1100));  // release_timeout (2 s here) after the release
  EXPECT_TRUE(a_->Sessions().empty());
}

// Issue 15, overload defect 3: after a reconnect the edge serves a flow again from the
// vehicle's HelloAck position. A UDP feed of the flow's own could not (no second socket
// can bind its port), so the edge went on from its own position and the player stalled
// behind the hole for good; its ring still holds the datagrams, and the edge seeks back
// in it.
TEST_F(MigrationTest, AReconnectSendsAgainFromTheRingOfAFlowsOwnUdpPort) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  int probe = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in any{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  socklen_t len = sizeof any;
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&any), &len), 0);
  ::close(probe);
  v1::SessionState s = Fresh();
  s.mutable_flows(0)->mutable_source()->set_udp_listen(
      absl::StrCat("127.0.0.1:", ntohs(any.sin_port)));
  ASSERT_TRUE(a_->Serve(s, now_).ok());
  int encoder = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(::connect(encoder, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  auto send = [&](uint64_t k) {
    std::string d = PacedSource::Payload(k);
    ASSERT_EQ(::send(encoder, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
    Run(kPeriod);
  };
  uint64_t k = 0;
  for (; k < 50; ++k) send(k);
  net_.SetBlackhole(*a_ep_, true);
  for (int i = 0; i < 30; ++i) send(k++);
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  ASSERT_TRUE(net_.LoseAssociation(*a_ep_, d->associations(0).assoc_id()).ok());
  net_.SetBlackhole(*a_ep_, false);
  for (; k < 250; ++k) send(k);
  Run(absl::Milliseconds(100));
  ::close(encoder);
  ASSERT_EQ(delivered_.size(), 250u);
  for (size_t i = 0; i < delivered_.size(); ++i) {
    ASSERT_EQ(delivered_[i], PacedSource::Payload(i)) << i;
  }
  EXPECT_GE(a_->frames_resent(), 25u);
}

TEST_F(MigrationTest, ImportRejectsBadState) {
  a_pair_ = {a_.get(), a_ep_.get()};
  b_pair_ = {b_.get(), b_ep_.get()};
  v1::SessionState s = Fresh();
  s.set_format_version(9);
  EXPECT_EQ(b_->Serve(s, now_).code(), absl::StatusCode::kFailedPrecondition);
  s = Fresh();
  s.clear_flows();
  EXPECT_EQ(b_->Serve(s, now_).code(), absl::StatusCode::kInvalidArgument);
  s = Fresh();
  s.clear_vehicle_addresses();
  EXPECT_EQ(b_->Serve(s, now_).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(b_->Serve(Fresh(), now_).ok());
  EXPECT_EQ(b_->Serve(Fresh(), now_).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(b_->Export(999, now_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(b_->Release(999).code(), absl::StatusCode::kNotFound);
}

TEST_F(MigrationTest, AnEdgeAtCapacityRefusesMoreSessions) {
  EdgeEngine small(*b_ep_,
                   {.server_id = "edge-small", .make_source = Factory(), .max_sessions = 1});
  ASSERT_TRUE(small.Serve(Fresh(), now_).ok());
  v1::SessionState other = Fresh();
  other.set_session_id(kSession + 1);
  absl::Status st = small.Serve(other, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("edge-small is at capacity (1 sessions)"));
}

// A live feed that reaches both edges (a channel every edge ingests): each edge numbers
// the datagrams its own feed received, and B finds A's checkpoint among them by its
// fingerprint. The feeds are real UDP sockets on loopback; "the encoder" sends each
// datagram to both.
class LiveFeedMigrationTest : public MigrationTest {
 protected:
  void SetUp() override {
    MigrationTest::SetUp();
    for (auto* feed : {&feed_a_, &feed_b_}) {
      absl::StatusOr<std::shared_ptr<media::UdpFeed>> f = media::UdpFeed::Bind("127.0.0.1:0");
      ASSERT_TRUE(f.ok()) << f.status();
      *feed = *f;
      int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in to{.sin_family = AF_INET, .sin_port = htons((*f)->local_port()),
                     .sin_addr = {htonl(INADDR_LOOPBACK)}};
      ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
      encoder_.push_back(fd);
    }
    a_ = std::make_unique<EdgeEngine>(
        *a_ep_,
        EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory(),
                            .on_superseded = [this](uint64_t, uint64_t) { a_superseded_ = true; },
                            .live_feeds = {{"channel-1", feed_a_}}});
    b_ = std::make_unique<EdgeEngine>(
        *b_ep_,
        EdgeEngine::Options{.server_id = "edge-b", .make_source = Factory(),
                            .live_feeds = {{"channel-1", feed_b_}}});
    a_pair_ = {a_.get(), a_ep_.get()};
    b_pair_ = {b_.get(), b_ep_.get()};
  }
  void TearDown() override {
    for (int fd : encoder_) ::close(fd);
  }
  v1::SessionState Live() {
    v1::SessionState s = Fresh();
    s.mutable_flows(0)->mutable_source()->set_live_feed("channel-1");
    return s;
  }
  // Datagram k of the feed: every third is the same padding, as in a CBR MPEG-TS stream.
  static std::string Datagram(uint64_t k) {
    return k % 3 == 1 ? std::string(kChunk, '\xff') : PacedSource::Payload(k);
  }
  // The encoder sends datagram k to `feeds` (both edges, or only one); the engines run for
  // one period after it.
  void Broadcast(uint64_t k, const std::vector<int>& feeds = {0, 1}) {
    std::string d = Datagram(k);
    for (int i : feeds) ASSERT_EQ(::send(encoder_[i], d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
    Run(kPeriod);
  }

  std::shared_ptr<media::UdpFeed> feed_a_, feed_b_;
  std::vector<int> encoder_;
};

TEST_F(LiveFeedMigrationTest, ALiveFlowMovesToAnEdgeIngestingTheSameFeedLosingNothing) {
  for (uint64_t k = 0; k < 20; ++k) Broadcast(k);  // nobody watches yet: rings fill anyway
  EXPECT_EQ(feed_b_->end_index(), 20u);
  ASSERT_TRUE(a_->Serve(Live(), now_).ok());
  uint64_t k = 20;
  for (; k < 120; ++k) Broadcast(k);
  ASSERT_GT(delivered_.size(), 90u);

  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  // The run before the checkpoint: 32 frames, the last just before it.
  ASSERT_EQ(state->flows(0).last_frame_fingerprints_size(), 32);
  EXPECT_EQ(state->flows(0).last_frame_fingerprints(31),
            media::ChunkFingerprint(Datagram(20 + state->flows(0).next_sequence() - 1)));
  for (int i = 0; i < 5; ++i) Broadcast(k++);  // the SMM takes a while; A keeps serving
  absl::Status served = b_->Serve(*state, now_);
  ASSERT_TRUE(served.ok()) << served;
  for (int i = 0; i < 20; ++i) Broadcast(k++);
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  ASSERT_TRUE(a_->Release(kSession).ok());
  for (; k < 300; ++k) Broadcast(k);
  Run(absl::Milliseconds(100));

  // Every datagram from the one after the session opened, once, in order.
  ASSERT_EQ(delivered_.size(), 280u);
  for (size_t i = 0; i < delivered_.size(); ++i) {
    ASSERT_EQ(delivered_[i], Datagram(20 + i)) << i;
  }
  EXPECT_GT(vehicle_->Flows(kSession).at(0).stats.duplicates, 0u);  // A and B overlapped
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));
  EXPECT_TRUE(a_->Sessions().empty());

  // And back: B's own checkpoint, in B's numbering, is found in A's ring.
  a_->Pump(now_);
  state = b_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  served = a_->Serve(*state, now_);
  EXPECT_TRUE(served.ok()) << served;
}

// A live feed that sends nothing (paused): the session migrates all the same, and when the
// feed resumes the new edge alone carries it, losing nothing.
TEST_F(LiveFeedMigrationTest, APausedLiveFeedMigratesWithoutAFrame) {
  ASSERT_TRUE(a_->Serve(Live(), now_).ok());
  uint64_t k = 0;
  for (; k < 60; ++k) Broadcast(k);
  Run(absl::Milliseconds(300));  // the feed pauses; Progress catches up
  ASSERT_EQ(delivered_.size(), 60u);
  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->flows(0).next_sequence(), 60u);
  absl::Status served = b_->Serve(*state, now_);
  ASSERT_TRUE(served.ok()) << served;
  absl::Duration took = RunUntilASuperseded(absl::Seconds(2));
  EXPECT_TRUE(a_superseded_);
  EXPECT_LE(took, absl::Milliseconds(5));
  EXPECT_THAT(contiguous_, ::testing::ElementsAre(1u, 2u));
  EXPECT_EQ(b_->frames_sent(), 0u);
  ASSERT_TRUE(a_->Release(kSession).ok());
  Run(absl::Milliseconds(100));
  EXPECT_TRUE(a_->Sessions().empty());
  for (; k < 100; ++k) Broadcast(k);  // the feed resumes
  Run(absl::Milliseconds(100));
  ASSERT_EQ(delivered_.size(), 100u);
  for (size_t i = 0; i < delivered_.size(); ++i) ASSERT_EQ(delivered_[i], Datagram(i)) << i;
  EXPECT_EQ(b_->frames_sent(), 40u);
}

TEST_F(LiveFeedMigrationTest, AReconnectSendsAgainFromTheFeedsRing) {
  ASSERT_TRUE(a_->Serve(Live(), now_).ok());
  uint64_t k = 0;
  for (; k < 50; ++k) Broadcast(k);
  net_.SetBlackhole(*a_ep_, true);
  for (int i = 0; i < 30; ++i) Broadcast(k++);
  absl::StatusOr<v1::Session> d = a_->Describe(kSession);
  ASSERT_TRUE(d.ok() && d->associations_size() == 1) << d.status();
  ASSERT_TRUE(net_.LoseAssociation(*a_ep_, d->associations(0).assoc_id()).ok());
  net_.SetBlackhole(*a_ep_, false);
  for (; k < 250; ++k) Broadcast(k);
  Run(absl::Milliseconds(100));
  ASSERT_EQ(delivered_.size(), 250u);
  for (size_t i = 0; i < delivered_.size(); ++i) ASSERT_EQ(delivered_[i], Datagram(i)) << i;
  EXPECT_GE(a_->frames_resent(), 25u);
}

TEST_F(LiveFeedMigrationTest, LiveFlowsThatCannotMoveSaySo) {
  v1::SessionState unknown = Live();
  unknown.mutable_flows(0)->mutable_source()->set_live_feed("channel-9");
  absl::Status st = a_->Serve(unknown, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), ::testing::HasSubstr(
                                "edge-a does not ingest live feed 'channel-9' (its live_feeds: "
                                "'channel-1')"));

  // Nothing sent yet: no frame before the checkpoint to align on.
  ASSERT_TRUE(a_->Serve(Live(), now_).ok());
  absl::StatusOr<v1::SessionState> early = a_->Export(kSession, now_);
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(early.status().message(), ::testing::HasSubstr("cannot move yet"));

  // B never received what A sent (its feed is cut off): the checkpoint is not there.
  for (uint64_t k = 0; k < 30; ++k) Broadcast(k, {0});
  absl::StatusOr<v1::SessionState> state = a_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  st = b_->Serve(*state, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("edge edge-b cannot place the checkpoint"));
  EXPECT_THAT(st.message(), ::testing::HasSubstr("is not among the last"));

  // A checkpoint past the start with no fingerprint is malformed.
  state->mutable_flows(0)->clear_last_frame_fingerprints();
  EXPECT_EQ(b_->Serve(*state, now_).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MigrationTest, AFlowFromAnAddressOfThisEdgeCannotMove) {
  v1::SessionState s = Fresh();
  s.mutable_flows(0)->mutable_source()->set_udp_listen("127.0.0.1:0");
  ASSERT_TRUE(a_->Serve(s, now_).ok());
  absl::StatusOr<v1::SessionState> out = a_->Export(kSession, now_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(out.status().message(), ::testing::HasSubstr("reads udp_listen 127.0.0.1:0"));
}

}  // namespace
}  // namespace smig::dataplane
