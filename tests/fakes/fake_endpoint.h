// An in-memory transport::Endpoint for testing the layers above the transport without
// sockets: whole messages move between endpoints of one FakeNetwork at once, with the
// events and argument errors of the real stacks, and tests steer path state and failures.
//
//   FakeNetwork net;
//   std::unique_ptr<FakeEndpoint> server =
//       net.CreateEndpoint({.local_addresses = {"10.1.0.1", "10.2.0.1"}, .port = 5000});
//   std::unique_ptr<FakeEndpoint> client = net.CreateEndpoint({.local_addresses = {"10.1.0.2"}});
//   absl::StatusOr<AssocId> a = client->Connect({"10.1.0.1", "10.2.0.1"}, 5000);
//   // EVENT_TYPE_ASSOC_UP is now queued on both sides.
//   client->Send(*a, {.stream = 1, .ppid = 42}, "hi");
//   net.SetPathState(*client, *a, "10.1.0.1:5000", v1::PATH_STATE_INACTIVE);
//   client->Send(*a, {.stream = 2, .path = "10.2.0.1"}, "on the second path");
//
// Lifetimes: the FakeNetwork must outlive every endpoint it created. All state lives in
// the network behind one mutex, so destroying or killing an endpoint never leaves its
// peers pointing at freed memory. As with the real stacks, destroying an endpoint aborts
// its associations (its peers get ASSOC_LOST).
//
// Where the fake differs, to stay small and deterministic: a Connect() that finds no
// listener queues ASSOC_CANT_START at once; no local address means 127.0.0.1; port 0 takes
// the next free one from 40000; an association is forgotten when Receive() hands up its
// ending event, as StackEndpoint does.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/transport/endpoint.h"

namespace smig::transport::testing {

class FakeEndpoint;

class FakeNetwork {
 public:
  FakeNetwork() = default;
  FakeNetwork(const FakeNetwork&) = delete;
  FakeNetwork& operator=(const FakeNetwork&) = delete;

  std::unique_ptr<FakeEndpoint> CreateEndpoint(const EndpointOptions& options);

  // Sets the state of one path as `local` sees it and queues the matching PATH_* event
  // there (ACTIVE, INACTIVE and POTENTIALLY_FAILED only). `peer_address` is "ip:port".
  absl::Status SetPathState(const FakeEndpoint& local, AssocId assoc,
                            absl::string_view peer_address, v1::PathState state);
  absl::Status SetSrtt(const FakeEndpoint& local, AssocId assoc, absl::string_view peer_address,
                       double srtt_ms);
  // The endpoint's host dies: its peers get ASSOC_LOST; it loses its associations, stops
  // accepting new ones and gets no event itself.
  void KillEndpoint(const FakeEndpoint& endpoint);
  // While full, the endpoint's Send() fails with UNAVAILABLE, as a real stack does when its
  // send buffer stays full for SendOptions::max_wait.
  void SetSendBufferFull(const FakeEndpoint& endpoint, bool full);
  // While on, what the endpoint sends is accepted and lost, as when every path is dark
  // in the seconds before SCTP gives an association up.
  void SetBlackhole(const FakeEndpoint& endpoint, bool on);
  // The association times out: both ends get ASSOC_LOST.
  absl::Status LoseAssociation(const FakeEndpoint& local, AssocId assoc);
  // The stack drops the association and no notification reaches `local` (seen under
  // overload): events already queued there for it are lost, and none follows; the peer
  // gets ASSOC_LOST unless the association was already ending. The endpoint still lists
  // it; Send() and Shutdown() on it fail with `error` (the real endpoints: NOT_FOUND,
  // "the association is gone"; pass another code to model a stack that says otherwise),
  // GetAssociation() with NOT_FOUND, and Abort() forgets it (NOT_FOUND).
  absl::Status DropSilently(const FakeEndpoint& local, AssocId assoc,
                            absl::Status error = absl::NotFoundError("the association is gone"));
  // A path that died before the stack noticed: what `local` sends on it while its state is
  // still ACTIVE waits, and so does everything sent after it on the same stream (ordered
  // delivery), as with a real stack until its retransmission timer moves the data. Held
  // messages arrive once the path is lit again or its state leaves ACTIVE (SetPathState:
  // the stack retransmits on another path).
  absl::Status SetPathDark(const FakeEndpoint& local, AssocId assoc,
                           absl::string_view peer_address, bool dark);
  // Messages of `local`'s association held by dark paths.
  size_t HeldMessages(const FakeEndpoint& local, AssocId assoc);
  // Heartbeats RequestHeartbeat() sent on the path; a dark path answers none, and one
  // still unanswered when the next is requested makes an active path potentially failed
  // (its event queued), as the kernel does at PF threshold 0.
  uint64_t HeartbeatsRequested(const FakeEndpoint& local, AssocId assoc,
                               absl::string_view peer_address);
  // Off: a dark path's held messages stay held after the stack gave the path up, until it
  // is lit again or this is turned back on (a real stack retransmits them at its next
  // timer, some time after the failure). On by default.
  void SetRetransmitOnFailure(bool on);

 private:
  friend class FakeEndpoint;
  struct Path {
    std::string address;
    v1::PathState state = v1::PATH_STATE_ACTIVE;
    double srtt_ms = 0;
    bool dark = false;
    uint64_t bytes = 0;
    uint64_t messages = 0;
    uint64_t heartbeats = 0;
    bool heartbeat_unanswered = false;
  };
  struct Assoc {
    uint64_t peer_node = 0;  // 0: never came up
    AssocId peer_assoc = 0;
    bool ended = false;  // its ending event is queued; sends fail from now on
    absl::Status dropped;  // not OK: DropSilently; what Send() and Shutdown() fail with
    uint32_t streams = 0;
    std::vector<Path> paths;  // the peer's addresses, in its order
    std::string primary;
    struct Held {
      size_t path;  // index into paths
      Message message;
    };
    std::deque<Held> held;  // sent, not delivered yet: a dark path (SetPathDark)
  };
  struct Node {
    EndpointOptions options;
    std::vector<std::string> hosts;  // numeric, normalised
    uint16_t port = 0;
    int event_fd = -1;
    bool alive = true;
    bool send_buffer_full = false;
    bool blackhole = false;
    AssocId next_assoc = 1;
    std::map<AssocId, Assoc> assocs;
    std::deque<Incoming> queue;
    absl::CondVar ready;
  };

  void Push(Node& node, Incoming in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `a` ended and queues `type` at its peer, whose side ends too.
  void EndPeer(Assoc& a, v1::EventType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Detach(Node& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Path* FindPath(const FakeEndpoint& local, AssocId assoc, absl::string_view address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers the held messages of `a` that nothing holds any more, in order per stream.
  void ReleaseHeld(Assoc& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool retransmit_on_failure_ ABSL_GUARDED_BY(mu_) = true;
  uint64_t next_node_ ABSL_GUARDED_BY(mu_) = 1;
  uint16_t next_port_ ABSL_GUARDED_BY(mu_) = 40000;
  std::map<uint64_t, Node> nodes_ ABSL_GUARDED_BY(mu_);  // std::map: Node addresses stay put
};

class FakeEndpoint final : public Endpoint {
 public:
  ~FakeEndpoint() override;

  v1::StackKind stack() const override { return v1::STACK_KIND_UNSPECIFIED; }
  uint16_t local_port() const override { return port_; }
  absl::StatusOr<AssocId> Connect(const std::vector<std::string>& peer_addresses,
                                  uint16_t peer_port) override;
  absl::Status Send(AssocId assoc, const SendOptions& options, absl::string_view data) override;
  absl::StatusOr<std::optional<Incoming>> Receive(absl::Duration timeout) override;
  // An eventfd, readable while messages or events are queued.
  int wait_fd() const override { return event_fd_; }
  absl::Status SetPrimary(AssocId assoc, absl::string_view peer_address) override;
  absl::Status RequestHeartbeat(AssocId assoc, absl::string_view peer_address) override;
  absl::StatusOr<v1::AssociationInfo> GetAssociation(AssocId assoc) override;
  std::vector<AssocId> Associations() const override;
  absl::Status Shutdown(AssocId assoc) override;
  absl::Status Abort(AssocId assoc) override;

 private:
  friend class FakeNetwork;
  FakeEndpoint(FakeNetwork& net, uint64_t node, uint16_t port, int event_fd)
      : net_(net), node_(node), port_(port), event_fd_(event_fd) {}

  FakeNetwork& net_;
  const uint64_t node_;
  const uint16_t port_;
  const int event_fd_;
};

}  // namespace smig::transport::testing
