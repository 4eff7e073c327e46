#include "tests/fakes/fake_endpoint.h"

#include <poll.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::transport::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The next thing the endpoint hands up, which must come within a second.
Incoming Next(Endpoint& ep) {
  absl::StatusOr<std::optional<Incoming>> in = ep.Receive(absl::Seconds(1));
  EXPECT_TRUE(in.ok()) << in.status();
  if (!in.ok() || !in->has_value()) {
    ADD_FAILURE() << "nothing received";
    return v1::Event();
  }
  return std::move(**in);
}

v1::Event NextEvent(Endpoint& ep) {
  Incoming in = Next(ep);
  if (auto* e = std::get_if<v1::Event>(&in)) return *e;
  ADD_FAILURE() << "got a message, wanted an event: " << std::get<Message>(in).data;
  return v1::Event();
}

Message NextMessage(Endpoint& ep) {
  Incoming in = Next(ep);
  if (auto* m = std::get_if<Message>(&in)) return *m;
  ADD_FAILURE() << "got an event, wanted a message: " << std::get<v1::Event>(in).DebugString();
  return Message();
}

bool Readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

class FakeEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = net_.CreateEndpoint(
        {.local_addresses = {"10.1.0.1", "10.2.0.1"}, .port = 5000, .streams = 4});
    client_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.2", "10.2.0.2"}, .streams = 16,
                                   .max_message_size = 100, .listen = false});
  }
  // Connects client to server and takes both ASSOC_UP events.
  void Connect() {
    absl::StatusOr<AssocId> id = client_->Connect({"10.1.0.1", "10.2.0.1"}, 5000);
    ASSERT_TRUE(id.ok()) << id.status();
    client_assoc_ = *id;
    v1::Event up = NextEvent(*client_);
    ASSERT_EQ(up.type(), v1::EVENT_TYPE_ASSOC_UP);
    ASSERT_EQ(up.assoc_id(), client_assoc_);
    up = NextEvent(*server_);
    ASSERT_EQ(up.type(), v1::EVENT_TYPE_ASSOC_UP);
    server_assoc_ = up.assoc_id();
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> server_;
  std::unique_ptr<FakeEndpoint> client_;
  AssocId client_assoc_ = 0;
  AssocId server_assoc_ = 0;
};

TEST_F(FakeEndpointTest, ConnectBringsBothSidesUpWithTheSmallerStreamCount) {
  EXPECT_EQ(client_->stack(), v1::STACK_KIND_UNSPECIFIED);
  EXPECT_EQ(server_->local_port(), 5000);
  EXPECT_NE(client_->local_port(), 0);
  absl::StatusOr<AssocId> id = client_->Connect({"10.2.0.1"}, 5000);
  ASSERT_TRUE(id.ok()) << id.status();
  for (Endpoint* ep : std::initializer_list<Endpoint*>{client_.get(), server_.get()}) {
    v1::Event up = NextEvent(*ep);
    EXPECT_EQ(up.type(), v1::EVENT_TYPE_ASSOC_UP);
    EXPECT_EQ(up.streams_in(), 4u);
    EXPECT_EQ(up.streams_out(), 4u);
    EXPECT_THAT(ep->Associations(), ElementsAre(up.assoc_id()));
  }
  EXPECT_THAT(client_->Associations(), ElementsAre(*id));
}

TEST_F(FakeEndpointTest, AssociationInfoListsPeerPathsWithTheFirstGivenAsPrimary) {
  absl::StatusOr<AssocId> id = client_->Connect({"10.2.0.1", "10.1.0.1"}, 5000);
  ASSERT_TRUE(id.ok());
  absl::StatusOr<v1::AssociationInfo> info = client_->GetAssociation(*id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->assoc_id(), *id);
  EXPECT_EQ(info->streams_out(), 4u);
  ASSERT_EQ(info->paths_size(), 2);
  EXPECT_EQ(info->paths(0).address(), "10.1.0.1:5000");
  EXPECT_EQ(info->paths(0).state(), v1::PATH_STATE_ACTIVE);
  EXPECT_FALSE(info->paths(0).primary());
  EXPECT_EQ(info->paths(1).address(), "10.2.0.1:5000");
  EXPECT_TRUE(info->paths(1).primary());
  std::string port = std::to_string(client_->local_port());
  EXPECT_THAT(info->local_addresses(), ElementsAre("10.1.0.2:" + port, "10.2.0.2:" + port));
}

TEST_F(FakeEndpointTest, ConnectWithoutListenerCannotStart) {
  for (uint16_t port : {uint16_t{5001}, client_->local_port()}) {  // nobody; not listening
    absl::StatusOr<AssocId> id = server_->Connect({"10.1.0.2"}, port);
    ASSERT_TRUE(id.ok()) << id.status();
    v1::Event e = NextEvent(*server_);
    EXPECT_EQ(e.type(), v1::EVENT_TYPE_ASSOC_CANT_START);
    EXPECT_EQ(e.assoc_id(), *id);
  }
  EXPECT_THAT(server_->Associations(), IsEmpty());
  EXPECT_EQ(client_->Connect({"10.9.9.9"}, 5000).status().code(), absl::StatusCode::kOk);
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_ASSOC_CANT_START);
}

TEST_F(FakeEndpointTest, ConnectRejectsBadArguments) {
  EXPECT_EQ(client_->Connect({}, 5000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Connect({"10.1.0.1"}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Connect({"server.local"}, 5000).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeEndpointTest, SendDeliversWholeMessagesWithStreamPpidAndOrdering) {
  Connect();
  ASSERT_TRUE(
      client_->Send(client_assoc_, {.stream = 3, .ppid = 42, .unordered = true}, "hello").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 0}, "world").ok());
  Message m = NextMessage(*server_);
  EXPECT_EQ(m.assoc, server_assoc_);
  EXPECT_EQ(m.stream, 3);
  EXPECT_EQ(m.ppid, 42u);
  EXPECT_TRUE(m.unordered);
  EXPECT_EQ(m.data, "hello");
  m = NextMessage(*server_);
  EXPECT_EQ(m.stream, 0);
  EXPECT_EQ(m.ppid, 0u);
  EXPECT_FALSE(m.unordered);
  EXPECT_EQ(m.data, "world");
  // And back.
  ASSERT_TRUE(server_->Send(server_assoc_, {.stream = 1}, "back").ok());
  m = NextMessage(*client_);
  EXPECT_EQ(m.assoc, client_assoc_);
  EXPECT_EQ(m.data, "back");
}

TEST_F(FakeEndpointTest, SendErrorsMatchTheRealStacks) {
  Connect();
  EXPECT_EQ(client_->Send(client_assoc_ + 100, {}, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Send(client_assoc_, {}, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->Send(client_assoc_, {}, std::string(100, 'x')).ok());
  absl::Status big = client_->Send(client_assoc_, {}, std::string(101, 'x'));
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.message(), HasSubstr("101"));
  EXPECT_TRUE(client_->Send(client_assoc_, {.stream = 3}, "x").ok());
  EXPECT_EQ(client_->Send(client_assoc_, {.stream = 4}, "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeEndpointTest, ReceiveTimesOutWhenIdleAndWakesForASend) {
  Connect();
  absl::Time start = absl::Now();
  absl::StatusOr<std::optional<Incoming>> in = server_->Receive(absl::Milliseconds(30));
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(in->has_value());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_FALSE(Readable(server_->wait_fd()));

  std::thread sender([&] {
    absl::SleepFor(absl::Milliseconds(20));
    EXPECT_TRUE(client_->Send(client_assoc_, {}, "late").ok());
  });
  in = server_->Receive(absl::Seconds(5));
  sender.join();
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_EQ(std::get<Message>(**in).data, "late");
}

TEST_F(FakeEndpointTest, WaitFdIsReadableExactlyWhileSomethingIsQueued) {
  Connect();
  EXPECT_FALSE(Readable(server_->wait_fd()));
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "a").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "b").ok());
  EXPECT_TRUE(Readable(server_->wait_fd()));
  NextMessage(*server_);
  EXPECT_TRUE(Readable(server_->wait_fd()));
  NextMessage(*server_);
  EXPECT_FALSE(Readable(server_->wait_fd()));
}

TEST_F(FakeEndpointTest, ShutdownDeliversQueuedMessagesFirst) {
  Connect();
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "one").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "two").ok());
  ASSERT_TRUE(client_->Shutdown(client_assoc_).ok());
  EXPECT_EQ(client_->Send(client_assoc_, {}, "late").code(), absl::StatusCode::kUnavailable);

  EXPECT_EQ(NextMessage(*server_).data, "one");
  EXPECT_EQ(NextMessage(*server_).data, "two");
  v1::Event e = NextEvent(*server_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_PEER_SHUTDOWN);
  EXPECT_EQ(e.assoc_id(), server_assoc_);
  EXPECT_EQ(server_->Send(server_assoc_, {}, "late").code(), absl::StatusCode::kUnavailable);
  e = NextEvent(*server_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_SHUTDOWN_COMPLETE);
  EXPECT_EQ(e.assoc_id(), server_assoc_);
  EXPECT_THAT(server_->Associations(), IsEmpty());

  e = NextEvent(*client_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_SHUTDOWN_COMPLETE);
  EXPECT_EQ(e.assoc_id(), client_assoc_);
  EXPECT_THAT(client_->Associations(), IsEmpty());
  EXPECT_EQ(client_->Shutdown(client_assoc_).code(), absl::StatusCode::kNotFound);
}

TEST_F(FakeEndpointTest, AbortTellsThePeerAndForgetsAtOnce) {
  Connect();
  ASSERT_TRUE(client_->Abort(client_assoc_).ok());
  EXPECT_THAT(client_->Associations(), IsEmpty());
  EXPECT_EQ(client_->Send(client_assoc_, {}, "x").code(), absl::StatusCode::kNotFound);
  v1::Event e = NextEvent(*server_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_ASSOC_LOST);
  EXPECT_EQ(e.assoc_id(), server_assoc_);
  EXPECT_THAT(server_->Associations(), IsEmpty());
  EXPECT_EQ(client_->Abort(client_assoc_).code(), absl::StatusCode::kNotFound);
}

TEST_F(FakeEndpointTest, KilledOrDestroyedEndpointLosesItsPeers) {
  Connect();
  net_.KillEndpoint(*server_);
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_ASSOC_LOST);
  EXPECT_THAT(server_->Associations(), IsEmpty());
  ASSERT_TRUE(client_->Connect({"10.1.0.1"}, 5000).ok());  // a dead host accepts nothing
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_ASSOC_CANT_START);

  std::unique_ptr<FakeEndpoint> other =
      net_.CreateEndpoint({.local_addresses = {"10.1.0.3"}, .port = 6000});
  absl::StatusOr<AssocId> id = client_->Connect({"10.1.0.3"}, 6000);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_ASSOC_UP);
  other.reset();
  v1::Event e = NextEvent(*client_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_ASSOC_LOST);
  EXPECT_EQ(e.assoc_id(), *id);
}

TEST_F(FakeEndpointTest, SetPrimaryAcceptsOnlyPeerAddresses) {
  Connect();
  EXPECT_TRUE(client_->SetPrimary(client_assoc_, "10.2.0.1:5000").ok());
  absl::StatusOr<v1::AssociationInfo> info = client_->GetAssociation(client_assoc_);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->paths(0).primary());
  EXPECT_TRUE(info->paths(1).primary());
  EXPECT_EQ(client_->SetPrimary(client_assoc_, "10.3.0.1:5000").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->SetPrimary(client_assoc_, "10.1.0.1:5001").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->SetPrimary(client_assoc_, "10.1.0.1").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->SetPrimary(client_assoc_ + 1, "10.1.0.1:5000").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FakeEndpointTest, AHeartbeatThatADarkPathLeftUnansweredMakesItPotentiallyFailed) {
  Connect();
  EXPECT_EQ(client_->RequestHeartbeat(client_assoc_, "10.3.0.1:5000").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->RequestHeartbeat(client_assoc_, "garbage").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->RequestHeartbeat(client_assoc_ + 1, "10.1.0.1:5000").code(),
            absl::StatusCode::kNotFound);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client_->RequestHeartbeat(client_assoc_, "10.1.0.1:5000").ok());
  EXPECT_EQ(net_.HeartbeatsRequested(*client_, client_assoc_, "10.1.0.1:5000"), 3u);
  ASSERT_TRUE(net_.SetPathDark(*client_, client_assoc_, "10.1.0.1:5000", true).ok());
  ASSERT_TRUE(client_->RequestHeartbeat(client_assoc_, "10.1.0.1:5000").ok());  // unanswered
  absl::StatusOr<v1::AssociationInfo> info = client_->GetAssociation(client_assoc_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->paths(0).state(), v1::PATH_STATE_ACTIVE);
  ASSERT_TRUE(client_->RequestHeartbeat(client_assoc_, "10.1.0.1:5000").ok());  // and again
  v1::Event e = NextEvent(*client_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED);
  EXPECT_EQ(e.address(), "10.1.0.1:5000");
}

TEST_F(FakeEndpointTest, PathStateMovesSendCountersAndEmitsEvents) {
  Connect();
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "12345").ok());
  ASSERT_TRUE(net_.SetPathState(*client_, client_assoc_, "10.1.0.1:5000",
                                v1::PATH_STATE_INACTIVE).ok());
  v1::Event e = NextEvent(*client_);
  EXPECT_EQ(e.type(), v1::EVENT_TYPE_PATH_UNREACHABLE);
  EXPECT_EQ(e.address(), "10.1.0.1:5000");
  EXPECT_EQ(e.assoc_id(), client_assoc_);
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "123").ok());
  ASSERT_TRUE(net_.SetSrtt(*client_, client_assoc_, "10.2.0.1:5000", 12.5).ok());

  absl::StatusOr<v1::AssociationInfo> info = client_->GetAssociation(client_assoc_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->paths(0).state(), v1::PATH_STATE_INACTIVE);
  EXPECT_EQ(info->paths(0).bytes_sent(), 5u);
  EXPECT_EQ(info->paths(0).messages_sent(), 1u);
  EXPECT_EQ(info->paths(1).bytes_sent(), 3u);
  EXPECT_EQ(info->paths(1).messages_sent(), 1u);
  EXPECT_DOUBLE_EQ(info->paths(1).srtt_ms(), 12.5);

  ASSERT_TRUE(net_.SetPathState(*client_, client_assoc_, "10.1.0.1:5000",
                                v1::PATH_STATE_POTENTIALLY_FAILED).ok());
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED);
  ASSERT_TRUE(net_.SetPathState(*client_, client_assoc_, "10.1.0.1:5000",
                                v1::PATH_STATE_ACTIVE).ok());
  EXPECT_EQ(NextEvent(*client_).type(), v1::EVENT_TYPE_PATH_AVAILABLE);
  ASSERT_TRUE(client_->Send(client_assoc_, {}, "1").ok());
  info = client_->GetAssociation(client_assoc_);
  EXPECT_EQ(info->paths(0).messages_sent(), 2u);
  // The peer's view is separate.
  EXPECT_EQ(server_->GetAssociation(server_assoc_)->paths(0).state(), v1::PATH_STATE_ACTIVE);

  EXPECT_EQ(net_.SetPathState(*client_, client_assoc_, "10.9.0.1:5000", v1::PATH_STATE_ACTIVE)
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(net_.SetSrtt(*client_, client_assoc_ + 1, "10.1.0.1:5000", 1).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FakeEndpointTest, ANamedPathCarriesTheMessageAndCountsIt) {
  Connect();
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 1, .path = "10.2.0.1:5000"}, "12").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 1, .path = "10.2.0.1"}, "345").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 1}, "6").ok());
  EXPECT_EQ(NextMessage(*server_).data, "12");
  EXPECT_EQ(NextMessage(*server_).data, "345");
  EXPECT_EQ(NextMessage(*server_).data, "6");
  absl::StatusOr<v1::AssociationInfo> info = client_->GetAssociation(client_assoc_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->paths(0).bytes_sent(), 1u);  // the primary: the unnamed send
  EXPECT_EQ(info->paths(1).bytes_sent(), 5u);
  EXPECT_EQ(info->paths(1).messages_sent(), 2u);

  absl::Status bad = client_->Send(client_assoc_, {.path = "10.9.0.1"}, "x");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("10.9.0.1"));
  EXPECT_EQ(client_->Send(client_assoc_, {.path = "10.2.0.1:5001"}, "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeEndpointTest, ADarkPathHoldsItsStreamUntilTheStackMovesOn) {
  Connect();
  ASSERT_TRUE(net_.SetPathDark(*client_, client_assoc_, "10.1.0.1:5000", true).ok());
  // On the dark primary: held, and so is what follows on its stream, even on a live path.
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 1}, "a1").ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 1, .path = "10.2.0.1"}, "a2").ok());
  // Another stream on the live path is not held.
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 2, .path = "10.2.0.1"}, "b1").ok());
  EXPECT_EQ(NextMessage(*server_).data, "b1");
  EXPECT_FALSE(server_->Receive(absl::ZeroDuration())->has_value());
  EXPECT_EQ(net_.HeldMessages(*client_, client_assoc_), 2u);
  // The stack gives the path up: what it held goes on another path, in stream order.
  ASSERT_TRUE(net_.SetPathState(*client_, client_assoc_, "10.1.0.1:5000",
                                v1::PATH_STATE_INACTIVE).ok());
  EXPECT_EQ(NextMessage(*server_).data, "a1");
  EXPECT_EQ(NextMessage(*server_).data, "a2");
  EXPECT_EQ(net_.HeldMessages(*client_, client_assoc_), 0u);
  // Dark but lit again before the stack noticed: held, then delivered.
  ASSERT_TRUE(net_.SetPathDark(*client_, client_assoc_, "10.2.0.1:5000", true).ok());
  ASSERT_TRUE(client_->Send(client_assoc_, {.stream = 3}, "c1").ok());  // on 10.2: the only active one
  EXPECT_FALSE(server_->Receive(absl::ZeroDuration())->has_value());
  ASSERT_TRUE(net_.SetPathDark(*client_, client_assoc_, "10.2.0.1:5000", false).ok());
  EXPECT_EQ(NextMessage(*server_).data, "c1");
  EXPECT_EQ(net_.SetPathDark(*client_, client_assoc_, "10.9.0.1:5000", true).code(),
            absl::StatusCode::kNotFound);
}

TEST(FakeNetworkTest, PortZeroPicksDistinctPortsAndNoAddressMeansLoopback) {
  FakeNetwork net;
  std::unique_ptr<FakeEndpoint> a = net.CreateEndpoint({});
  std::unique_ptr<FakeEndpoint> b = net.CreateEndpoint({});
  EXPECT_NE(a->local_port(), 0);
  EXPECT_NE(a->local_port(), b->local_port());
  absl::StatusOr<AssocId> id = a->Connect({"127.0.0.1"}, b->local_port());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(NextEvent(*a).type(), v1::EVENT_TYPE_ASSOC_UP);
}

}  // namespace
}  // namespace smig::transport::testing
