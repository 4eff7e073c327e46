#include "dataplane/transport/stack_endpoint.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace smig::transport {
namespace {
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

absl::Status ErrnoStatus(int error, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case EAGAIN:
    case ENOBUFS:
    case ENOMEM:
      return absl::UnavailableError(msg);
    case EADDRINUSE:
      return absl::AlreadyExistsError(msg);
    case EADDRNOTAVAIL:
    case EINVAL:
    case EMSGSIZE:
    case EAFNOSUPPORT:
      return absl::InvalidArgumentError(msg);
    case ENOENT:
    case ESRCH:
      return absl::NotFoundError(msg);
    case EPROTONOSUPPORT:
    case ESOCKTNOSUPPORT:
    case ENOPROTOOPT:
      return absl::UnimplementedError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case ECONNREFUSED:
    case ENETUNREACH:
    case EHOSTUNREACH:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

StackEndpoint::StackEndpoint(const EndpointOptions& options)
    : options_(options), buffer_(kReadChunk, '\0'), assembler_(options.max_message_size) {}

absl::StatusOr<AssocId> StackEndpoint::Connect(const std::vector<std::string>& peer_addresses,
                                               uint16_t peer_port) {
  if (peer_addresses.empty()) return absl::InvalidArgumentError("no peer address given");
  if (peer_port == 0) return absl::InvalidArgumentError("peer port 0");
  SMIG_ASSIGN_OR_RETURN(const std::vector<SocketAddress> peers,
                        ParseAddressList(peer_addresses, peer_port));
  absl::StatusOr<AssocId> id = ConnectRaw(peers);
  if (id.ok()) paths_.AddPending(*id);
  return id;
}

absl::Status StackEndpoint::CheckKnown(AssocId assoc) const {
  if (!paths_.Contains(assoc)) {
    return absl::NotFoundError(absl::StrCat("unknown association ", assoc));
  }
  return absl::OkStatus();
}

absl::StatusOr<SocketAddress> StackEndpoint::ResolvePath(AssocId assoc,
                                                         absl::string_view text) const {
  absl::StatusOr<SocketAddress> want = SocketAddress::Parse(text, 0);
  const bool any_port = want.ok();
  if (!any_port) want = SocketAddress::ParseHostPort(text);
  if (!want.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", text, "\" is not an address (ip or ip:port)"));
  }
  const std::vector<std::string> paths = paths_.Paths(assoc);
  for (const std::string& p : paths) {
    absl::StatusOr<SocketAddress> have = SocketAddress::ParseHostPort(p);
    if (have.ok() && (any_port ? have->Host() == want->Host() : *have == *want)) return *have;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "path ", text, " is not a peer address of association ", assoc, " (its paths: ",
      paths.empty() ? std::string("none yet") : absl::StrJoin(paths, ", "), ")"));
}

absl::Status StackEndpoint::Send(AssocId assoc, const SendOptions& options,
                                 absl::string_view data) {
  if (data.size() > options_.max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", data.size(),
                                                   " bytes exceeds the limit of ",
                                                   options_.max_message_size, " bytes"));
  }
  if (data.empty()) return absl::InvalidArgumentError("empty message");
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  uint32_t streams = paths_.StreamsOut(assoc);
  if (streams != 0 && options.stream >= streams) {
    return absl::InvalidArgumentError(absl::StrCat("stream ", options.stream,
                                                   " out of range: association ", assoc,
                                                   " has ", streams, " outbound streams"));
  }
  std::optional<SocketAddress> to;
  if (!options.path.empty()) {
    SMIG_ASSIGN_OR_RETURN(to, ResolvePath(assoc, options.path));
  }
  absl::Time deadline = absl::Now() + options.max_wait;
  while (true) {
    SMIG_ASSIGN_OR_RETURN(const SendResult r,
                          SendRaw(assoc, options, to ? &*to : nullptr, data));
    if (r == SendResult::kSent) break;
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("send buffer of association ", assoc,
                                                 " stayed full for ",
                                                 absl::FormatDuration(options.max_wait)));
    }
    WaitWritable(deadline);
  }
  paths_.RecordSend(assoc, data.size(), to ? to->ToString() : std::string());
  return absl::OkStatus();
}

void StackEndpoint::Track(const v1::Event& event) {
  if (event.type() == v1::EVENT_TYPE_ASSOC_UP || event.type() == v1::EVENT_TYPE_ASSOC_RESTART) {
    OnAssociationUp(event.assoc_id());
    std::vector<std::string> paths;
    std::string primary;
    if (absl::StatusOr<v1::AssociationInfo> info = QueryRaw(event.assoc_id()); info.ok()) {
      for (const v1::PathInfo& p : info->paths()) {
        paths.push_back(p.address());
        if (p.primary()) primary = p.address();
      }
    }
    paths_.OnUp(event.assoc_id(), event.streams_out(), paths, primary);
    return;
  }
  paths_.OnEvent(event);
  switch (event.type()) {
    case v1::EVENT_TYPE_ASSOC_LOST:
    case v1::EVENT_TYPE_ASSOC_CANT_START:
    case v1::EVENT_TYPE_SHUTDOWN_COMPLETE:
      assembler_.Forget(event.assoc_id());
      break;
    default:
      break;
  }
}

absl::StatusOr<std::optional<Incoming>> StackEndpoint::Receive(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::optional<Piece>> piece = ReadPiece(buffer_.data(), buffer_.size());
    if (!piece.ok()) return piece.status();
    if (!piece->has_value()) {
      if (absl::Now() >= deadline) {
        ClearReadable();
        piece = ReadPiece(buffer_.data(), buffer_.size());
        if (!piece.ok()) return piece.status();
        if (!piece->has_value()) return std::nullopt;
      } else {
        WaitReadable(deadline);
        continue;
      }
    }
    const Piece& p = **piece;
    MessageAssembler::Key key{p.assoc, p.stream, p.notification};
    absl::StatusOr<std::optional<std::string>> whole =
        assembler_.Add(key, absl::string_view(buffer_.data(), p.length), p.end_of_record);
    if (!whole.ok()) return whole.status();
    if (!whole->has_value()) continue;
    if (p.notification) {
      std::optional<v1::Event> event = TranslateNotification((*whole)->data(), (*whole)->size());
      if (!event) continue;  // a notification smig does not use
      Track(*event);
      return Incoming(std::move(*event));
    }
    return Incoming(Message{.assoc = p.assoc,
                            .stream = p.stream,
                            .ppid = p.ppid,
                            .unordered = p.unordered,
                            .data = std::move(**whole)});
  }
}

absl::Status StackEndpoint::SetPrimary(AssocId assoc, absl::string_view peer_address) {
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  SMIG_ASSIGN_OR_RETURN(const SocketAddress peer, SocketAddress::ParseHostPort(peer_address));
  SMIG_RETURN_IF_ERROR(SetPrimaryRaw(assoc, peer));
  paths_.SetPrimary(assoc, peer.ToString());
  return absl::OkStatus();
}

absl::Status StackEndpoint::RequestHeartbeat(AssocId assoc, absl::string_view peer_address) {
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  SMIG_ASSIGN_OR_RETURN(const SocketAddress peer, SocketAddress::ParseHostPort(peer_address));
  return RequestHeartbeatRaw(assoc, peer);
}

absl::StatusOr<v1::AssociationInfo> StackEndpoint::GetAssociation(AssocId assoc) {
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  absl::StatusOr<v1::AssociationInfo> queried = QueryRaw(assoc);
  if (absl::IsInvalidArgument(queried.status()) || absl::IsNotFound(queried.status())) {
    // Both stacks answer EINVAL (or ENOENT) for an association id they do not have: it
    // ended, and its notification may not have reached Receive() yet (or never will). It
    // is not forgotten here: its event, when it comes, must still reach the caller of
    // Receive(); whoever gives up on it first calls Abort(), which forgets it.
    return absl::NotFoundError(absl::StrCat("association ", assoc, " is gone: the stack no longer "
                                            "has it (", queried.status().message(), ")"));
  }
  SMIG_ASSIGN_OR_RETURN(v1::AssociationInfo info, std::move(queried));
  info.set_assoc_id(assoc);
  info.set_stack(stack());
  paths_.FillCounters(info);
  return info;
}

std::vector<AssocId> StackEndpoint::Associations() const { return paths_.Associations(); }

absl::Status StackEndpoint::Shutdown(AssocId assoc) {
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  return EndRaw(assoc, EndKind::kGraceful);
}

absl::Status StackEndpoint::Abort(AssocId assoc) {
  SMIG_RETURN_IF_ERROR(CheckKnown(assoc));
  absl::Status s = EndRaw(assoc, EndKind::kAbort);
  v1::Event gone;
  gone.set_type(v1::EVENT_TYPE_ASSOC_LOST);
  gone.set_assoc_id(assoc);
  // Forget it now: whether a stack also notifies its own abort differs between stacks.
  // NOT_FOUND: the stack had already dropped it (no event came): forget it all the same.
  if (s.ok() || absl::IsNotFound(s)) paths_.OnEvent(gone);
  return s;
}

}  // namespace smig::transport
