// StackEndpoint: what the kernel and userland endpoints share above their socket calls:
// argument checks, the receive loop with reassembly, association bookkeeping, per-path
// send attribution and bounded-time sends. A stack supplies the raw operations.
// Internal to dataplane/transport.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dataplane/transport/address.h"
#include "dataplane/transport/endpoint.h"
#include "dataplane/transport/message_assembler.h"
#include "dataplane/transport/path_table.h"

namespace smig::transport {

class StackEndpoint : public Endpoint {
 public:
  explicit StackEndpoint(const EndpointOptions& options);

  absl::StatusOr<AssocId> Connect(const std::vector<std::string>& peer_addresses,
                                  uint16_t peer_port) final;
  absl::Status Send(AssocId assoc, const SendOptions& options, absl::string_view data) final;
  absl::StatusOr<std::optional<Incoming>> Receive(absl::Duration timeout) final;
  absl::Status SetPrimary(AssocId assoc, absl::string_view peer_address) final;
  absl::Status RequestHeartbeat(AssocId assoc, absl::string_view peer_address) final;
  absl::StatusOr<v1::AssociationInfo> GetAssociation(AssocId assoc) final;
  std::vector<AssocId> Associations() const final;
  absl::Status Shutdown(AssocId assoc) final;
  absl::Status Abort(AssocId assoc) final;

 protected:
  // One read from the stack: a piece of a message or notification.
  struct Piece {
    size_t length = 0;
    bool notification = false;
    bool end_of_record = false;
    AssocId assoc = 0;
    uint16_t stream = 0;
    uint32_t ppid = 0;  // host order
    bool unordered = false;
  };
  enum class SendResult { kSent, kWouldBlock };
  enum class EndKind { kGraceful, kAbort };

  // Non-blocking read into `buffer`; nullopt when nothing is queued.
  virtual absl::StatusOr<std::optional<Piece>> ReadPiece(char* buffer, size_t capacity) = 0;
  virtual std::optional<v1::Event> TranslateNotification(const char* data, size_t length) = 0;
  // `to`: the peer address to send to (SCTP_ADDR_OVER), or null for the stack's choice.
  virtual absl::StatusOr<SendResult> SendRaw(AssocId assoc, const SendOptions& options,
                                             const SocketAddress* to, absl::string_view data) = 0;
  // Waits until a send may succeed or the deadline passes.
  virtual void WaitWritable(absl::Time deadline) = 0;
  // Waits until wait_fd() is readable or the deadline passes, then clears any wakeup
  // state so a later event wakes the next wait.
  virtual void WaitReadable(absl::Time deadline) = 0;
  // Forgets wake-ups already consumed, for callers that poll wait_fd() themselves: called
  // before the last read of a Receive() that returns empty-handed, so a wake-up for data
  // that arrives later stays pending.
  virtual void ClearReadable() {}
  virtual absl::StatusOr<AssocId> ConnectRaw(const std::vector<SocketAddress>& peers) = 0;
  virtual absl::Status SetPrimaryRaw(AssocId assoc, const SocketAddress& peer) = 0;
  virtual absl::Status RequestHeartbeatRaw(AssocId assoc, const SocketAddress& peer) = 0;
  virtual absl::Status EndRaw(AssocId assoc, EndKind kind) = 0;
  // Paths with the stack's state, srtt (ms), rto, cwnd, mtu and primary flag, plus local
  // addresses and stream counts.
  virtual absl::StatusOr<v1::AssociationInfo> QueryRaw(AssocId assoc) = 0;
  // Applied when an association comes up (settings a stack takes only per association).
  virtual void OnAssociationUp(AssocId /*assoc*/) {}

  const EndpointOptions& options() const { return options_; }

 private:
  absl::Status CheckKnown(AssocId assoc) const;
  // The association's path that `text` ("ip:port" or "ip") names; INVALID_ARGUMENT if none.
  absl::StatusOr<SocketAddress> ResolvePath(AssocId assoc, absl::string_view text) const;
  void Track(const v1::Event& event);

  EndpointOptions options_;
  std::string buffer_;
  MessageAssembler assembler_;
  PathTable paths_;
};

// Maps an errno of a stack call to a status that names the call.
absl::Status ErrnoStatus(int error, absl::string_view what);

}  // namespace smig::transport
