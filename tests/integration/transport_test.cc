// The transport integration suite. The same source runs on either stack, chosen by
// $SMIG_TEST_STACK (userland, the default, or kernel). ctest runs the kernel variant
// natively where the kernel has SCTP and otherwise inside the project's VM (scripts/vm).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dataplane/transport/endpoint.h"
#include "dataplane/transport/userland_endpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/testbed.h"
#include "tests/integration/transport_fixture.h"

namespace smig::transport {
namespace {

using ::testing::HasSubstr;
using testbed::LastSummary;
using testbed::Process;
using testbed::ReadRecords;
using testbed::TwoHostNet;
using itest::Measure;
using itest::Stack;
using itest::StackName;
using itest::TransportTest;
using itest::TwoHostTest;
using itest::Window;

// A UDP port nobody holds right now, for usrsctp's encapsulation.
uint16_t FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  close(fd);
  return ntohs(sin.sin_port);
}

// One usrsctp stack per process: every in-process endpoint shares this port.
uint16_t ProcessUdpPort() {
  static uint16_t port = FreeUdpPort();
  return port;
}

EndpointOptions LoopbackOptions(bool listen) {
  EndpointOptions o;
  o.local_addresses = {"127.0.0.1"};
  o.listen = listen;
  o.profile = FastFailoverProfile();
  o.max_message_size = 1 << 20;
  if (Stack() == StackChoice::kUserland) {
    o.udp_encaps_port = ProcessUdpPort();
    o.remote_udp_encaps_port = ProcessUdpPort();
  }
  return o;
}

// Receives until `pred` accepts something or the timeout passes.
template <typename T>
absl::StatusOr<T> NextOf(Endpoint& ep, absl::Duration timeout, std::function<bool(const T&)> pred) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::optional<Incoming>> in = ep.Receive(absl::Milliseconds(20));
    if (!in.ok()) return in.status();
    if (!in->has_value()) continue;
    if (const T* t = std::get_if<T>(&**in); t != nullptr && pred(*t)) return *t;
  }
  return absl::DeadlineExceededError("nothing matching arrived");
}

absl::StatusOr<v1::Event> NextEvent(Endpoint& ep, v1::EventType type,
                                    absl::Duration timeout = absl::Seconds(5)) {
  return NextOf<v1::Event>(ep, timeout, [type](const v1::Event& e) { return e.type() == type; });
}

struct Pair {
  std::unique_ptr<Endpoint> server, client;
  AssocId client_assoc = 0, server_assoc = 0;
};

absl::StatusOr<Pair> ConnectedPair() {
  Pair p;
  absl::StatusOr<std::unique_ptr<Endpoint>> s = CreateEndpoint(Stack(), LoopbackOptions(true));
  if (!s.ok()) return s.status();
  absl::StatusOr<std::unique_ptr<Endpoint>> c = CreateEndpoint(Stack(), LoopbackOptions(false));
  if (!c.ok()) return c.status();
  p.server = std::move(*s);
  p.client = std::move(*c);
  absl::StatusOr<AssocId> id = p.client->Connect({"127.0.0.1"}, p.server->local_port());
  if (!id.ok()) return id.status();
  p.client_assoc = *id;
  absl::StatusOr<v1::Event> up = NextEvent(*p.client, v1::EVENT_TYPE_ASSOC_UP);
  if (!up.ok()) return up.status();
  absl::StatusOr<v1::Event> sup = NextEvent(*p.server, v1::EVENT_TYPE_ASSOC_UP);
  if (!sup.ok()) return sup.status();
  p.server_assoc = sup->assoc_id();
  return p;
}

TEST_F(TransportTest, StreamsPpidsUnorderedAndALargeMessageArriveWhole) {
  absl::StatusOr<Pair> p = ConnectedPair();
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->client->stack(), Stack() == StackChoice::kKernel ? v1::STACK_KIND_KERNEL
                                                                 : v1::STACK_KIND_USERLAND);
  // 4 streams x 50 ordered messages, an unordered message per stream, one 256 KiB message.
  for (int i = 0; i < 50; ++i) {
    for (uint16_t s = 1; s <= 4; ++s) {
      ASSERT_TRUE(p->client->Send(p->client_assoc, {.stream = s, .ppid = 100u + s},
                                  absl::StrCat("s", s, "-", i)).ok());
    }
  }
  for (uint16_t s = 1; s <= 4; ++s) {
    ASSERT_TRUE(p->client->Send(p->client_assoc, {.stream = s, .ppid = 7, .unordered = true},
                                absl::StrCat("u", s)).ok());
  }
  std::string big(256 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE(p->client->Send(p->client_assoc, {.stream = 5, .ppid = 0xDEADBEEF}, big).ok());

  std::map<uint16_t, int> next;  // per-stream order of the ordered messages
  int unordered = 0;
  bool got_big = false;
  for (int n = 0; n < 50 * 4 + 4 + 1; ++n) {
    absl::StatusOr<Message> m =
        NextOf<Message>(*p->server, absl::Seconds(10), [](const Message&) { return true; });
    ASSERT_TRUE(m.ok()) << m.status() << " after " << n << " messages";
    EXPECT_EQ(m->assoc, p->server_assoc);
    if (m->stream == 5) {
      EXPECT_EQ(m->ppid, 0xDEADBEEFu);
      EXPECT_EQ(m->data.size(), big.size());
      EXPECT_TRUE(m->data == big) << "256 KiB message corrupted";
      got_big = true;
    } else if (m->unordered) {
      EXPECT_EQ(m->ppid, 7u);
      EXPECT_EQ(m->data, absl::StrCat("u", m->stream));
      ++unordered;
    } else {
      EXPECT_EQ(m->ppid, 100u + m->stream);
      EXPECT_EQ(m->data, absl::StrCat("s", m->stream, "-", next[m->stream]++));
    }
  }
  EXPECT_TRUE(got_big);
  EXPECT_EQ(unordered, 4);
  for (uint16_t s = 1; s <= 4; ++s) EXPECT_EQ(next[s], 50) << "stream " << s;
}

TEST_F(TransportTest, GracefulShutdownDeliversQueuedData) {
  absl::StatusOr<Pair> p = ConnectedPair();
  ASSERT_TRUE(p.ok()) << p.status();
  // Less than the send buffer can hold (Linux caps SO_SNDBUF at net.core.wmem_max), since
  // nobody reads until the shutdown.
  for (int i = 0; i < 40; ++i) {
    absl::Status s = p->client->Send(p->client_assoc, {.stream = 1}, std::string(4000, 'x'));
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(p->client->Shutdown(p->client_assoc).ok());
  int got = 0;
  bool complete = false;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!complete && absl::Now() < deadline) {
    absl::StatusOr<std::optional<Incoming>> in = p->server->Receive(absl::Milliseconds(50));
    ASSERT_TRUE(in.ok()) << in.status();
    if (!in->has_value()) continue;
    if (std::holds_alternative<Message>(**in)) ++got;
    if (auto* e = std::get_if<v1::Event>(&**in)) {
      complete = e->type() == v1::EVENT_TYPE_SHUTDOWN_COMPLETE;
    }
  }
  EXPECT_TRUE(complete);
  EXPECT_EQ(got, 40);
  EXPECT_TRUE(p->server->Associations().empty());
}

TEST_F(TransportTest, BadInputGetsClearErrors) {
  absl::StatusOr<Pair> p = ConnectedPair();
  ASSERT_TRUE(p.ok()) << p.status();

  absl::Status too_big = p->client->Send(p->client_assoc, {.stream = 1}, std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.message(), HasSubstr("exceeds the limit"));

  absl::Status unknown = p->client->Send(987654, {.stream = 1}, "x");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("987654"));

  absl::Status bad_stream = p->client->Send(p->client_assoc, {.stream = 999}, "x");
  EXPECT_EQ(bad_stream.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_stream.message(), HasSubstr("999"));

  absl::StatusOr<AssocId> bad_peer = p->client->Connect({"10.0.0.300"}, 5000);
  EXPECT_EQ(bad_peer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_peer.status().message(), HasSubstr("10.0.0.300"));

  EndpointOptions bad_local = LoopbackOptions(true);
  bad_local.local_addresses = {"127.0.0.1", "not-an-ip"};
  absl::StatusOr<std::unique_ptr<Endpoint>> ep = CreateEndpoint(Stack(), bad_local);
  EXPECT_EQ(ep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ep.status().message(), HasSubstr("not-an-ip"));

  EXPECT_EQ(p->client->SetPrimary(p->client_assoc, "garbage").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p->client->RequestHeartbeat(p->client_assoc, "garbage").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p->client->RequestHeartbeat(p->client_assoc + 1000, "127.0.0.1:1").code(),
            absl::StatusCode::kNotFound);
  // A heartbeat on demand on the association's one path.
  absl::Status hb = p->client->RequestHeartbeat(
      p->client_assoc, absl::StrCat("127.0.0.1:", p->server->local_port()));
  EXPECT_TRUE(hb.ok()) << hb;

  // The association still works after all of that.
  ASSERT_TRUE(p->client->Send(p->client_assoc, {.stream = 2, .ppid = 9}, "still fine").ok());
  absl::StatusOr<Message> m =
      NextOf<Message>(*p->server, absl::Seconds(5), [](const Message&) { return true; });
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->data, "still fine");
}

TEST_F(TransportTest, KernelStackWorksBesideUsrsctpInTheSameNamespace) {
  if (Stack() != StackChoice::kKernel) {
    GTEST_SKIP() << "kernel-only: a usrsctp stack running as root must not answer kernel SCTP";
  }
  EndpointOptions userland = LoopbackOptions(true);
  userland.udp_encaps_port = FreeUdpPort();
  absl::StatusOr<std::unique_ptr<Endpoint>> u = CreateEndpoint(StackChoice::kUserland, userland);
  ASSERT_TRUE(u.ok()) << u.status();
  absl::StatusOr<Pair> p = ConnectedPair();  // kernel endpoints, same namespace and process
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->client->Send(p->client_assoc, {.stream = 1}, "beside usrsctp").ok());
  absl::StatusOr<Message> m =
      NextOf<Message>(*p->server, absl::Seconds(5), [](const Message&) { return true; });
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->data, "beside usrsctp");
}

// ---- Tests across two network namespaces, with smig-sctpcat as the two peers. ----

enum class Cut { kLinkDown, kNftDrop };

class FailoverTest : public TwoHostTest, public ::testing::WithParamInterface<Cut> {};

TEST_P(FailoverTest, CutPrimaryWhileStreamingLosesNothing) {
  const std::string primary = TwoHostNet::AddrB(2) + ":5000";
  auto rx = Process::Start(Receiver(), Out("rx.json"));
  ASSERT_TRUE(rx.ok()) << rx.status();
  testbed::AwaitFirstRecord(Out("rx.json"));
  auto tx = Process::Start(Sender({"--send=numbered", "--rate=1000", "--size=200", "--duration=12s",
                                   "--primary=" + primary, "--stats-interval=250ms"}),
                           Out("tx.json"));
  ASSERT_TRUE(tx.ok()) << tx.status();

  absl::SleepFor(absl::Milliseconds(1500));
  Window before = Measure((*tx)->pid(), absl::Seconds(1));  // t = 1.5 .. 2.5 s
  if (GetParam() == Cut::kLinkDown) {
    ASSERT_TRUE(net_->SetLink(2, false).ok());
  } else {
    ASSERT_TRUE(net_->SetDrop(2, true).ok());
  }
  Window during = Measure((*tx)->pid(), absl::Milliseconds(1500));
  if (GetParam() == Cut::kLinkDown) {
    ASSERT_TRUE(net_->SetLink(2, true).ok());
  } else {
    ASSERT_TRUE(net_->SetDrop(2, false).ok());
  }
  absl::SleepFor(absl::Seconds(2));  // the primary is confirmed again by heartbeats
  Window after = Measure((*tx)->pid(), absl::Seconds(1));

  absl::StatusOr<int> tx_rc = (*tx)->Wait(absl::Seconds(20));
  absl::StatusOr<int> rx_rc = (*rx)->Wait(absl::Seconds(10));
  ASSERT_TRUE(tx_rc.ok()) << tx_rc.status();
  ASSERT_TRUE(rx_rc.ok()) << rx_rc.status();
  EXPECT_EQ(*tx_rc, 0) << (*tx)->Stderr();
  EXPECT_EQ(*rx_rc, 0) << (*rx)->Stderr();

  std::cout << "[paths] packets on path1/path2: before " << before.path1 << "/" << before.path2
            << ", during " << during.path1 << "/" << during.path2 << ", after " << after.path1
            << "/" << after.path2 << "\n";
  // The primary we set carries the traffic, before the cut and again after it heals.
  EXPECT_GT(before.path2, 500u);
  EXPECT_LT(before.path1, before.path2 / 5);
  EXPECT_GT(during.path1, 500u);
  EXPECT_GT(after.path2, 500u);
  EXPECT_LT(after.path1, after.path2 / 5);

  std::vector<transport::v1::CatRecord> tx_recs = ReadRecords(Out("tx.json"));
  std::vector<transport::v1::CatRecord> rx_recs = ReadRecords(Out("rx.json"));
  // Both sides list both paths; the sender's own per-path counters favour the primary.
  bool tx_two_paths = false, rx_two_paths = false, tx_counts_primary = false;
  for (const auto& r : tx_recs) {
    if (!r.has_stats() || r.stats().paths_size() != 2) continue;
    tx_two_paths = true;
    for (const auto& path : r.stats().paths()) {
      if (path.address() == primary && path.primary() && path.messages_sent() > 1000) {
        tx_counts_primary = true;
      }
    }
  }
  for (const auto& r : rx_recs) rx_two_paths |= r.has_stats() && r.stats().paths_size() == 2;
  EXPECT_TRUE(tx_two_paths);
  EXPECT_TRUE(rx_two_paths);
  EXPECT_TRUE(tx_counts_primary);

  std::optional<transport::v1::CatSummary> sent = LastSummary(tx_recs);
  std::optional<transport::v1::CatSummary> got = LastSummary(rx_recs);
  ASSERT_TRUE(sent && got);
  std::cout << "[result] sent " << sent->messages_sent() << " received " << got->unique_received()
            << " duplicates " << got->duplicates() << " max_gap_ms " << got->max_gap_ms() << "\n";
  EXPECT_GT(sent->messages_sent(), 11000u);
  EXPECT_EQ(got->unique_received(), sent->messages_sent()) << "messages lost";
  EXPECT_EQ(got->missing(), 0u);
  EXPECT_EQ(got->duplicates(), 0u);
  EXPECT_LE(got->max_gap_ms(), 300.0);
}

INSTANTIATE_TEST_SUITE_P(Cuts, FailoverTest, ::testing::Values(Cut::kLinkDown, Cut::kNftDrop),
                         [](const auto& param_info) {
                           return param_info.param == Cut::kLinkDown ? "LinkDown" : "NftDrop";
                         });

TEST_F(TwoHostTest, PeerKilledIsNoticedWithinOneSecondAndCloseDoesNotHang) {
  auto rx = Process::Start(Receiver(), Out("rx.json"));
  ASSERT_TRUE(rx.ok()) << rx.status();
  testbed::AwaitFirstRecord(Out("rx.json"));
  auto tx = Process::Start(Sender({"--send=numbered", "--rate=1000", "--size=200", "--duration=20s"}),
                           Out("tx.json"));
  ASSERT_TRUE(tx.ok()) << tx.status();
  absl::SleepFor(absl::Milliseconds(1500));
  absl::Time killed_at = absl::Now();
  (*rx)->Kill(SIGKILL);
  absl::StatusOr<int> rc = (*tx)->Wait(absl::Seconds(5));  // exits after the end, closing
  absl::Duration exited_after = absl::Now() - killed_at;
  std::string tail;
  for (const auto& r : ReadRecords(Out("tx.json"))) tail = r.DebugString();
  ASSERT_TRUE(rc.ok()) << "sender did not notice the dead peer and exit: " << rc.status()
                       << "; its last record: " << tail;

  // A dead process on a live kernel: that kernel ends the association for it (SHUTDOWN or
  // ABORT). A dead usrsctp process says nothing; only the tuned timers notice (ASSOC_LOST).
  std::optional<absl::Duration> lost_after;
  std::string how;
  for (const auto& r : ReadRecords(Out("tx.json"))) {
    if (!r.has_event() || lost_after) continue;
    v1::EventType t = r.event().type();
    if (t == v1::EVENT_TYPE_ASSOC_LOST || t == v1::EVENT_TYPE_PEER_SHUTDOWN ||
        t == v1::EVENT_TYPE_SHUTDOWN_COMPLETE) {
      lost_after = absl::UnixEpoch() + absl::Seconds(r.unix_s()) - killed_at;
      how = v1::EventType_Name(t);
    }
  }
  ASSERT_TRUE(lost_after.has_value()) << "the association never ended";
  std::cout << "[result] " << how << " " << absl::FormatDuration(*lost_after)
            << " after kill -9; sender exited after " << absl::FormatDuration(exited_after) << "\n";
  EXPECT_LE(*lost_after, absl::Seconds(1));
  EXPECT_LE(exited_after, absl::Milliseconds(1500));
}

TEST_F(TwoHostTest, UdpEncapsulationPortTakenIsDetected) {
  // usrsctp in host A holds the UDP port; a second stack asking for it must fail clearly.
  auto holder = Process::Start(
      net_->InA({SMIG_SCTPCAT, "--sctp-stack=userland", "--listen", "--udp-port=9911"}),
      Out("holder.json"));
  ASSERT_TRUE(holder.ok()) << holder.status();
  testbed::AwaitFirstRecord(Out("holder.json"));
  auto second = Process::Start(net_->InA(Cat({"--check-stack", "--udp-port=9911"})),
                               Out("second.json"));
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<int> rc = (*second)->Wait(absl::Seconds(10));
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 2);
  EXPECT_THAT((*second)->Stderr(), HasSubstr("UDP encapsulation port 9911 is already in use"));
}

TEST_F(TwoHostTest, KernelUdpEncapsulationCarriesTraffic) {
  if (Stack() != StackChoice::kKernel) {
    GTEST_SKIP() << "kernel-only: the userland stack always encapsulates (every other test)";
  }
  auto rx = Process::Start(
      net_->InB(Cat({"--listen", "--local=" + TwoHostNet::AddrB(1), "--port=5000", "--once",
                     "--udp-port=9899"})),
      Out("rx.json"));
  ASSERT_TRUE(rx.ok()) << rx.status();
  // Count what reaches B's encapsulation port: plain SCTP would not touch this counter.
  ASSERT_TRUE(testbed::Sh("ip netns exec " + net_->ns_b() +
                          " nft add table inet smigcount && ip netns exec " + net_->ns_b() +
                          " nft add chain inet smigcount in '{ type filter hook input priority 0; }'"
                          " && ip netns exec " + net_->ns_b() +
                          " nft add rule inet smigcount in udp dport 9899 counter")
                  .ok());
  testbed::AwaitFirstRecord(Out("rx.json"));
  auto tx = Process::Start(
      net_->InA(Cat({"--peer=" + TwoHostNet::AddrB(1), "--peer-port=5000", "--udp-port=9899",
                     "--peer-udp-port=9899", "--send=numbered", "--count=500", "--rate=0"})),
      Out("tx.json"));
  ASSERT_TRUE(tx.ok()) << tx.status();
  ASSERT_EQ((*tx)->Wait(absl::Seconds(20)).value_or(-1), 0) << (*tx)->Stderr();
  ASSERT_EQ((*rx)->Wait(absl::Seconds(10)).value_or(-1), 0) << (*rx)->Stderr();
  std::optional<transport::v1::CatSummary> got = LastSummary(ReadRecords(Out("rx.json")));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->unique_received(), 500u);
  absl::StatusOr<std::string> counted =
      testbed::Sh("ip netns exec " + net_->ns_b() + " nft list table inet smigcount");
  ASSERT_TRUE(counted.ok()) << counted.status();
  uint64_t packets = 0;
  size_t at = counted->find("packets ");
  ASSERT_NE(at, std::string::npos) << *counted;
  packets = std::strtoull(counted->c_str() + at + 8, nullptr, 10);
  std::cout << "[result] UDP packets to port 9899 at B: " << packets << "\n";
  EXPECT_GE(packets, 100u);
}

}  // namespace
}  // namespace smig::transport
