// Endpoint: one multi-homed SCTP endpoint (a one-to-many socket) behind a stack-neutral
// interface. Two real stacks implement it, kernel lksctp and userland usrsctp, and
// tests/fakes has an in-memory fake for the layers above.
//
//   EndpointOptions opts;
//   opts.local_addresses = {"10.1.0.2", "10.2.0.2"};
//   opts.profile = FastFailoverProfile();
//   absl::StatusOr<std::unique_ptr<Endpoint>> ep = CreateEndpoint(StackChoice::kAuto, opts);
//   absl::StatusOr<AssocId> assoc = (*ep)->Connect({"10.1.0.1", "10.2.0.1"}, 5000);
//   // ... wait for EVENT_TYPE_ASSOC_UP from Receive(), then:
//   (*ep)->Send(*assoc, {.stream = 1, .ppid = 42}, "hello");
//   absl::StatusOr<std::optional<Incoming>> in = (*ep)->Receive(absl::Milliseconds(100));
//
// Threading: Receive() is called from one thread at a time. Send(), SetPrimary(),
// GetAssociation(), Shutdown() and Abort() may be called from other threads meanwhile.
// Lifetime: destroying an Endpoint aborts the associations it still has (SO_LINGER 0), so
// it never hangs on a dead peer; call Shutdown() and wait for SHUTDOWN_COMPLETE first for a
// graceful end that delivers queued data.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "smig/transport/v1/transport.pb.h"

namespace smig::transport {

using AssocId = uint32_t;
// v1 here is the generated ::smig::transport::v1 (an alias of it would redefine it: clang).

// The IANA port of SCTP over UDP (RFC 6951).
constexpr uint16_t kDefaultUdpEncapsPort = 9899;

struct EndpointOptions {
  // Numeric local addresses to bind (the radios of a vehicle, the NICs of a server).
  // Empty binds the wildcard address.
  std::vector<std::string> local_addresses;
  uint16_t port = 0;  // SCTP port; 0 picks one (see Endpoint::local_port()).
  uint16_t streams = 16;  // inbound and outbound streams requested per association.
  v1::FailoverProfile profile;
  // Largest user message accepted by Send() and reassembled by Receive().
  size_t max_message_size = 1 << 20;
  // SCTP over UDP (RFC 6951). Userland: the process-wide port of usrsctp (0 means 9899);
  // the stack always encapsulates. Kernel: 0 means plain SCTP; non-zero turns on the
  // kernel's encapsulation (Linux >= 5.11) on this UDP port for the network namespace.
  uint16_t udp_encaps_port = 0;
  // The peer's UDP encapsulation port, used by Connect() (0 means 9899 when encapsulating).
  uint16_t remote_udp_encaps_port = 0;
  // Accept associations from peers.
  bool listen = true;
};

struct SendOptions {
  uint16_t stream = 0;
  uint32_t ppid = 0;  // host byte order; converted on the wire
  bool unordered = false;
  // The peer address this message goes to: one of the association's paths, "ip:port" as
  // AssociationInfo lists them, or just "ip" (the association's port). Empty: the stack's
  // choice (the primary, or where failover moved new data). A named path overrides the
  // primary for this message (SCTP_ADDR_OVER): two copies can ride two paths. Should the
  // path fail, the stacks retransmit its data on another one. INVALID_ARGUMENT when it is
  // not a path of the association (or the association is not up yet).
  std::string path;
  // How long Send() may wait for room in a full send buffer before UNAVAILABLE. Event
  // loops that serve many associations pass zero and retry later instead of blocking.
  absl::Duration max_wait = absl::Seconds(2);
};

struct Message {
  AssocId assoc = 0;
  uint16_t stream = 0;
  uint32_t ppid = 0;  // host byte order
  bool unordered = false;
  std::string data;
};

// What Receive() hands up: a whole user message or a notification.
using Incoming = std::variant<Message, v1::Event>;

class Endpoint {
 public:
  virtual ~Endpoint() = default;

  virtual v1::StackKind stack() const = 0;
  virtual uint16_t local_port() const = 0;

  // Starts an association to a multi-homed peer; returns its id at once.
  // EVENT_TYPE_ASSOC_UP (or ASSOC_CANT_START) follows through Receive().
  virtual absl::StatusOr<AssocId> Connect(const std::vector<std::string>& peer_addresses,
                                          uint16_t peer_port) = 0;

  // Sends one whole message. Errors: NOT_FOUND for an unknown association, or one the
  // stack has ended (ENOENT, EPIPE, ENOTCONN, ECONNRESET) though its ending event has not
  // come through Receive() (or never will: a stack may drop an association silently),
  // INVALID_ARGUMENT for a message over max_message_size, a stream out of range or a path
  // that is not the association's,
  // UNAVAILABLE when the stack's send buffer stayed full for options.max_wait.
  virtual absl::Status Send(AssocId assoc, const SendOptions& options,
                            absl::string_view data) = 0;

  // Waits up to `timeout` for one whole message or one notification. nullopt means the
  // timeout expired. Messages that came in pieces are handed up whole.
  virtual absl::StatusOr<std::optional<Incoming>> Receive(absl::Duration timeout) = 0;

  // A file descriptor that becomes readable when Receive() may have work: for event loops.
  virtual int wait_fd() const = 0;

  virtual absl::Status SetPrimary(AssocId assoc, absl::string_view peer_address) = 0;
  // Sends a HEARTBEAT on that path now (RFC 6458 SPP_HB_DEMAND); one still unanswered
  // when the next is due counts as a path error, as a timeout does. Both stacks skip their
  // own heartbeats on a path while it carries data, and the kernel retransmits a lost
  // chunk on another path: a dead path that is sent named copies while the other path's
  // SACKs get its losses fast-retransmitted elsewhere never times out. Errors as for
  // SetPrimary().
  virtual absl::Status RequestHeartbeat(AssocId assoc, absl::string_view peer_address) = 0;
  // NOT_FOUND for an unknown association, and for one the stack no longer has (still
  // known until its ending event is received or Abort() forgets it).
  virtual absl::StatusOr<v1::AssociationInfo> GetAssociation(AssocId assoc) = 0;
  virtual std::vector<AssocId> Associations() const = 0;

  // Graceful: delivers queued data, then SHUTDOWN; EVENT_TYPE_SHUTDOWN_COMPLETE follows.
  // NOT_FOUND as for Send().
  virtual absl::Status Shutdown(AssocId assoc) = 0;
  // Immediate: ABORT, queued data is dropped. The association is forgotten at once, also
  // when the stack had already dropped it (NOT_FOUND then).
  virtual absl::Status Abort(AssocId assoc) = 0;
};

enum class StackChoice { kAuto, kKernel, kUserland };

// "auto", "kernel" or "userland"; INVALID_ARGUMENT otherwise.
absl::StatusOr<StackChoice> ParseStackChoice(absl::string_view text);
absl::string_view StackName(v1::StackKind kind);

// True when this host (network namespace) can open a kernel SCTP socket.
bool KernelSctpAvailable();

// Opens an endpoint. kAuto picks the kernel stack when KernelSctpAvailable(), otherwise
// usrsctp, and logs the choice to stderr.
absl::StatusOr<std::unique_ptr<Endpoint>> CreateEndpoint(StackChoice choice,
                                                         const EndpointOptions& options);

// Profiles. Fast: heartbeats every 100 ms, RTO 50..300 ms (initial 200), PF threshold 1
// (two timeouts with no SACK between), 2 path retransmissions, immediate SACKs, no burst
// limit; moves new data off a dead path in about 150 ms, and no single (spurious or
// tail-loss) timeout moves it (see endpoint_factory.cc).
v1::FailoverProfile FastFailoverProfile();
// RFC 4960 defaults (RTO 1..60 s, heartbeat 30 s, 5 path retransmissions, no PF).
v1::FailoverProfile DefaultFailoverProfile();

}  // namespace smig::transport
