#include "tests/fakes/fake_endpoint.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "dataplane/transport/address.h"

namespace smig::transport::testing {
namespace {

std::string PathAddress(const std::string& host, uint16_t port) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(host, port);
  return a.ok() ? a->ToString() : absl::StrCat(host, ":", port);
}

v1::Event MakeEvent(v1::EventType type, AssocId assoc) {
  v1::Event e;
  e.set_type(type);
  e.set_assoc_id(assoc);
  return e;
}

bool Ends(v1::EventType type) {
  return type == v1::EVENT_TYPE_ASSOC_LOST || type == v1::EVENT_TYPE_ASSOC_CANT_START ||
         type == v1::EVENT_TYPE_SHUTDOWN_COMPLETE;
}

absl::Status UnknownAssoc(AssocId assoc) {
  return absl::NotFoundError(absl::StrCat("unknown association ", assoc));
}

}  // namespace

std::unique_ptr<FakeEndpoint> FakeNetwork::CreateEndpoint(const EndpointOptions& options) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_node_++;
  Node& n = nodes_[id];
  n.options = options;
  n.port = options.port != 0 ? options.port : next_port_++;
  std::vector<std::string> hosts = options.local_addresses;
  if (hosts.empty()) hosts = {"127.0.0.1"};
  for (const std::string& h : hosts) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(h, 0);
    n.hosts.push_back(a.ok() ? a->Host() : h);
  }
  n.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return std::unique_ptr<FakeEndpoint>(new FakeEndpoint(*this, id, n.port, n.event_fd));
}

void FakeNetwork::Push(Node& node, Incoming in) {
  if (node.queue.empty()) {
    uint64_t one = 1;
    (void)!write(node.event_fd, &one, sizeof one);
  }
  node.queue.push_back(std::move(in));
  node.ready.SignalAll();
}

void FakeNetwork::EndPeer(Assoc& a, v1::EventType type) {
  if (!a.ended && a.peer_node != 0) {
    Node& peer = nodes_.at(a.peer_node);
    peer.assocs.at(a.peer_assoc).ended = true;
    Push(peer, MakeEvent(type, a.peer_assoc));
  }
  a.ended = true;
}

void FakeNetwork::Detach(Node& node) {
  for (auto& [id, a] : node.assocs) EndPeer(a, v1::EVENT_TYPE_ASSOC_LOST);
  node.assocs.clear();
  node.alive = false;
}

FakeNetwork::Path* FakeNetwork::FindPath(const FakeEndpoint& local, AssocId assoc,
                                         absl::string_view address) {
  auto a = nodes_.at(local.node_).assocs.find(assoc);
  if (a == nodes_.at(local.node_).assocs.end()) return nullptr;
  for (Path& p : a->second.paths) {
    if (p.address == address) return &p;
  }
  return nullptr;
}

absl::Status FakeNetwork::SetPathState(const FakeEndpoint& local, AssocId assoc,
                                       absl::string_view peer_address, v1::PathState state) {
  v1::EventType type;
  switch (state) {
    case v1::PATH_STATE_ACTIVE: type = v1::EVENT_TYPE_PATH_AVAILABLE; break;
    case v1::PATH_STATE_INACTIVE: type = v1::EVENT_TYPE_PATH_UNREACHABLE; break;
    case v1::PATH_STATE_POTENTIALLY_FAILED: type = v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED; break;
    default: return absl::InvalidArgumentError(absl::StrCat("no event for path state ", state));
  }
  absl::MutexLock lock(&mu_);
  Path* p = FindPath(local, assoc, peer_address);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("no path ", peer_address));
  p->state = state;
  v1::Event e = MakeEvent(type, assoc);
  e.set_address(p->address);
  Push(nodes_.at(local.node_), std::move(e));
  ReleaseHeld(nodes_.at(local.node_).assocs.at(assoc));  // the stack moved them
  return absl::OkStatus();
}

absl::Status FakeNetwork::SetPathDark(const FakeEndpoint& local, AssocId assoc,
                                      absl::string_view peer_address, bool dark) {
  absl::MutexLock lock(&mu_);
  Path* p = FindPath(local, assoc, peer_address);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("no path ", peer_address));
  p->dark = dark;
  ReleaseHeld(nodes_.at(local.node_).assocs.at(assoc));
  return absl::OkStatus();
}

uint64_t FakeNetwork::HeartbeatsRequested(const FakeEndpoint& local, AssocId assoc,
                                          absl::string_view peer_address) {
  absl::MutexLock lock(&mu_);
  Path* p = FindPath(local, assoc, peer_address);
  return p == nullptr ? 0 : p->heartbeats;
}

size_t FakeNetwork::HeldMessages(const FakeEndpoint& local, AssocId assoc) {
  absl::MutexLock lock(&mu_);
  auto a = nodes_.at(local.node_).assocs.find(assoc);
  return a == nodes_.at(local.node_).assocs.end() ? 0 : a->second.held.size();
}

void FakeNetwork::SetRetransmitOnFailure(bool on) {
  absl::MutexLock lock(&mu_);
  retransmit_on_failure_ = on;
  for (auto& [id, node] : nodes_) {
    for (auto& [assoc, a] : node.assocs) ReleaseHeld(a);
  }
}

void FakeNetwork::ReleaseHeld(Assoc& a) {
  if (a.held.empty()) return;
  std::deque<Assoc::Held> still;
  std::vector<uint16_t> blocked;  // streams with an earlier message still held
  for (Assoc::Held& h : a.held) {
    const Path& p = a.paths[h.path];
    const bool waits = std::find(blocked.begin(), blocked.end(), h.message.stream) != blocked.end() ||
                       (p.dark && (p.state == v1::PATH_STATE_ACTIVE || !retransmit_on_failure_));
    if (waits) {
      blocked.push_back(h.message.stream);
      still.push_back(std::move(h));
    } else if (a.peer_node != 0 && !a.ended) {
      Push(nodes_.at(a.peer_node), std::move(h.message));
    }
  }
  a.held = std::move(still);
}

absl::Status FakeNetwork::SetSrtt(const FakeEndpoint& local, AssocId assoc,
                                  absl::string_view peer_address, double srtt_ms) {
  absl::MutexLock lock(&mu_);
  Path* p = FindPath(local, assoc, peer_address);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("no path ", peer_address));
  p->srtt_ms = srtt_ms;
  return absl::OkStatus();
}

void FakeNetwork::KillEndpoint(const FakeEndpoint& endpoint) {
  absl::MutexLock lock(&mu_);
  Detach(nodes_.at(endpoint.node_));
}

void FakeNetwork::SetSendBufferFull(const FakeEndpoint& endpoint, bool full) {
  absl::MutexLock lock(&mu_);
  nodes_.at(endpoint.node_).send_buffer_full = full;
}

void FakeNetwork::SetBlackhole(const FakeEndpoint& endpoint, bool on) {
  absl::MutexLock lock(&mu_);
  nodes_.at(endpoint.node_).blackhole = on;
}

absl::Status FakeNetwork::LoseAssociation(const FakeEndpoint& local, AssocId assoc) {
  absl::MutexLock lock(&mu_);
  Node& node = nodes_.at(local.node_);
  auto a = node.assocs.find(assoc);
  if (a == node.assocs.end() || a->second.ended) {
    return absl::NotFoundError(absl::StrCat("association ", assoc, " is not up"));
  }
  EndPeer(a->second, v1::EVENT_TYPE_ASSOC_LOST);
  Push(node, MakeEvent(v1::EVENT_TYPE_ASSOC_LOST, assoc));
  return absl::OkStatus();
}

absl::Status FakeNetwork::DropSilently(const FakeEndpoint& local, AssocId assoc,
                                       absl::Status error) {
  absl::MutexLock lock(&mu_);
  Node& node = nodes_.at(local.node_);
  auto a = node.assocs.find(assoc);
  if (a == node.assocs.end()) {
    return absl::NotFoundError(absl::StrCat("association ", assoc, " is not known"));
  }
  EndPeer(a->second, v1::EVENT_TYPE_ASSOC_LOST);
  a->second.dropped = error.ok() ? absl::NotFoundError("the association is gone") : error;
  std::erase_if(node.queue, [assoc](const Incoming& in) {
    const auto* e = std::get_if<v1::Event>(&in);
    return e != nullptr && e->assoc_id() == assoc;
  });
  return absl::OkStatus();
}

FakeEndpoint::~FakeEndpoint() {
  absl::MutexLock lock(&net_.mu_);
  net_.Detach(net_.nodes_.at(node_));
  net_.nodes_.erase(node_);
  close(event_fd_);
}

absl::StatusOr<AssocId> FakeEndpoint::Connect(const std::vector<std::string>& peer_addresses,
                                              uint16_t peer_port) {
  if (peer_addresses.empty()) return absl::InvalidArgumentError("no peer address given");
  if (peer_port == 0) return absl::InvalidArgumentError("peer port 0");
  absl::StatusOr<std::vector<SocketAddress>> peers = ParseAddressList(peer_addresses, peer_port);
  if (!peers.ok()) return peers.status();
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  if (!self.alive) return absl::UnavailableError("endpoint was killed");
  AssocId id = self.next_assoc++;
  FakeNetwork::Assoc& mine = self.assocs[id];
  for (const SocketAddress& want : *peers) {
    for (auto& [other_id, other] : net_.nodes_) {
      if (!other.alive || !other.options.listen || other.port != peer_port ||
          std::find(other.hosts.begin(), other.hosts.end(), want.Host()) == other.hosts.end()) {
        continue;
      }
      AssocId theirs_id = other.next_assoc++;
      FakeNetwork::Assoc& theirs = other.assocs[theirs_id];
      uint32_t streams = std::min(self.options.streams, other.options.streams);
      mine = {.peer_node = other_id, .peer_assoc = theirs_id, .streams = streams};
      theirs = {.peer_node = node_, .peer_assoc = id, .streams = streams};
      for (const std::string& h : other.hosts) mine.paths.push_back({PathAddress(h, other.port)});
      for (const std::string& h : self.hosts) theirs.paths.push_back({PathAddress(h, port_)});
      mine.primary = want.ToString();  // the stacks start on the first reachable address given
      theirs.primary = theirs.paths.front().address;
      for (auto [node, assoc] : {std::pair(&self, id), std::pair(&other, theirs_id)}) {
        v1::Event up = MakeEvent(v1::EVENT_TYPE_ASSOC_UP, assoc);
        up.set_streams_in(streams);
        up.set_streams_out(streams);
        net_.Push(*node, std::move(up));
      }
      return id;
    }
  }
  mine.ended = true;
  net_.Push(self, MakeEvent(v1::EVENT_TYPE_ASSOC_CANT_START, id));
  return id;
}

absl::Status FakeEndpoint::Send(AssocId assoc, const SendOptions& options,
                                absl::string_view data) {
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  if (data.size() > self.options.max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", data.size(),
                                                   " bytes exceeds the limit of ",
                                                   self.options.max_message_size, " bytes"));
  }
  if (data.empty()) return absl::InvalidArgumentError("empty message");
  auto it = self.assocs.find(assoc);
  if (it == self.assocs.end()) return UnknownAssoc(assoc);
  FakeNetwork::Assoc& a = it->second;
  if (!a.dropped.ok()) return a.dropped;
  if (a.ended) return absl::UnavailableError(absl::StrCat("association ", assoc, " ended"));
  if (options.stream >= a.streams) {
    return absl::InvalidArgumentError(absl::StrCat("stream ", options.stream, " out of range: ",
                                                   a.streams, " outbound streams"));
  }
  if (self.send_buffer_full) {
    return absl::UnavailableError(absl::StrCat("send buffer of association ", assoc, " is full"));
  }
  FakeNetwork::Path* named = nullptr;
  if (!options.path.empty()) {
    // "ip:port" or "ip", as StackEndpoint resolves it.
    absl::StatusOr<SocketAddress> bare = SocketAddress::Parse(options.path, 0);
    absl::StatusOr<SocketAddress> full = SocketAddress::ParseHostPort(options.path);
    for (FakeNetwork::Path& p : a.paths) {
      absl::StatusOr<SocketAddress> have = SocketAddress::ParseHostPort(p.address);
      if (have.ok() && ((bare.ok() && have->Host() == bare->Host()) || (full.ok() && *have == *full))) {
        named = &p;
      }
    }
    if (named == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("path ", options.path,
                                                     " is not a peer address of association ", assoc));
    }
  }
  if (self.blackhole) return absl::OkStatus();
  // The attribution PathTable makes for the real stacks; a named path while it is active.
  FakeNetwork::Path* path = nullptr;
  FakeNetwork::Path* primary = nullptr;
  for (FakeNetwork::Path& p : a.paths) {
    if (p.address == a.primary) primary = &p;
    if (path == nullptr && p.state == v1::PATH_STATE_ACTIVE) path = &p;
  }
  if (named != nullptr && named->state == v1::PATH_STATE_ACTIVE) {
    path = named;
  } else if (primary != nullptr && (primary->state == v1::PATH_STATE_ACTIVE || path == nullptr)) {
    path = primary;
  }
  if (path != nullptr) {
    path->bytes += data.size();
    ++path->messages;
  }
  Message m{.assoc = a.peer_assoc,
            .stream = options.stream,
            .ppid = options.ppid,
            .unordered = options.unordered,
            .data = std::string(data)};
  if (path != nullptr) {
    // A dark path, or a stream with an earlier message still held, holds it too.
    a.held.push_back({static_cast<size_t>(path - a.paths.data()), std::move(m)});
    net_.ReleaseHeld(a);
    return absl::OkStatus();
  }
  net_.Push(net_.nodes_.at(a.peer_node), std::move(m));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Incoming>> FakeEndpoint::Receive(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  while (self.queue.empty()) {
    if (self.ready.WaitWithDeadline(&net_.mu_, deadline) && self.queue.empty()) {
      return std::nullopt;
    }
  }
  Incoming in = std::move(self.queue.front());
  self.queue.pop_front();
  if (self.queue.empty()) {
    uint64_t count;
    (void)!read(event_fd_, &count, sizeof count);
  }
  if (const auto* e = std::get_if<v1::Event>(&in); e != nullptr && Ends(e->type())) {
    self.assocs.erase(e->assoc_id());
  }
  return std::optional<Incoming>(std::move(in));
}

absl::Status FakeEndpoint::SetPrimary(AssocId assoc, absl::string_view peer_address) {
  absl::StatusOr<SocketAddress> peer = SocketAddress::ParseHostPort(peer_address);
  absl::MutexLock lock(&net_.mu_);
  auto it = net_.nodes_.at(node_).assocs.find(assoc);
  if (it == net_.nodes_.at(node_).assocs.end()) return UnknownAssoc(assoc);
  if (!peer.ok()) return peer.status();
  for (const FakeNetwork::Path& p : it->second.paths) {
    if (p.address == peer->ToString()) {
      it->second.primary = p.address;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(peer_address, " is not an address of the peer of association ", assoc));
}

absl::Status FakeEndpoint::RequestHeartbeat(AssocId assoc, absl::string_view peer_address) {
  absl::StatusOr<SocketAddress> peer = SocketAddress::ParseHostPort(peer_address);
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  auto it = self.assocs.find(assoc);
  if (it == self.assocs.end()) return UnknownAssoc(assoc);
  if (!peer.ok()) return peer.status();
  FakeNetwork::Path* p = net_.FindPath(*this, assoc, peer->ToString());
  if (p == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(peer_address, " is not an address of the peer of association ", assoc));
  }
  ++p->heartbeats;
  if (!p->dark) {
    p->heartbeat_unanswered = false;
    return absl::OkStatus();
  }
  if (p->heartbeat_unanswered && p->state == v1::PATH_STATE_ACTIVE) {
    p->state = v1::PATH_STATE_POTENTIALLY_FAILED;
    v1::Event e = MakeEvent(v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED, assoc);
    e.set_address(p->address);
    net_.Push(self, std::move(e));
    net_.ReleaseHeld(it->second);
  }
  p->heartbeat_unanswered = true;
  return absl::OkStatus();
}

absl::StatusOr<v1::AssociationInfo> FakeEndpoint::GetAssociation(AssocId assoc) {
  absl::MutexLock lock(&net_.mu_);
  const FakeNetwork::Node& self = net_.nodes_.at(node_);
  auto it = self.assocs.find(assoc);
  if (it == self.assocs.end()) return UnknownAssoc(assoc);
  const FakeNetwork::Assoc& a = it->second;
  if (!a.dropped.ok()) {
    return absl::NotFoundError(absl::StrCat("association ", assoc, " is gone: the stack no "
                                            "longer has it"));
  }
  v1::AssociationInfo info;
  info.set_assoc_id(assoc);
  info.set_stack(stack());
  info.set_streams_in(a.streams);
  info.set_streams_out(a.streams);
  for (const std::string& h : self.hosts) info.add_local_addresses(PathAddress(h, port_));
  for (const FakeNetwork::Path& p : a.paths) {
    v1::PathInfo* out = info.add_paths();
    out->set_address(p.address);
    out->set_state(p.state);
    out->set_srtt_ms(p.srtt_ms);
    out->set_primary(p.address == a.primary);
    out->set_bytes_sent(p.bytes);
    out->set_messages_sent(p.messages);
  }
  return info;
}

std::vector<AssocId> FakeEndpoint::Associations() const {
  absl::MutexLock lock(&net_.mu_);
  std::vector<AssocId> out;
  for (const auto& [id, a] : net_.nodes_.at(node_).assocs) out.push_back(id);
  return out;
}

absl::Status FakeEndpoint::Shutdown(AssocId assoc) {
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  auto it = self.assocs.find(assoc);
  if (it == self.assocs.end()) return UnknownAssoc(assoc);
  if (!it->second.dropped.ok()) return it->second.dropped;
  if (it->second.ended) return absl::OkStatus();  // already ending; its event is queued
  // The peer hears of the shutdown after the messages already queued for it, then both
  // sides complete.
  net_.EndPeer(it->second, v1::EVENT_TYPE_PEER_SHUTDOWN);
  net_.Push(net_.nodes_.at(it->second.peer_node),
            MakeEvent(v1::EVENT_TYPE_SHUTDOWN_COMPLETE, it->second.peer_assoc));
  net_.Push(self, MakeEvent(v1::EVENT_TYPE_SHUTDOWN_COMPLETE, assoc));
  return absl::OkStatus();
}

absl::Status FakeEndpoint::Abort(AssocId assoc) {
  absl::MutexLock lock(&net_.mu_);
  FakeNetwork::Node& self = net_.nodes_.at(node_);
  auto it = self.assocs.find(assoc);
  if (it == self.assocs.end()) return UnknownAssoc(assoc);
  const bool dropped = !it->second.dropped.ok();
  net_.EndPeer(it->second, v1::EVENT_TYPE_ASSOC_LOST);
  self.assocs.erase(it);  // forgotten at once, as StackEndpoint::Abort does
  if (dropped) {
    return absl::NotFoundError(absl::StrCat("association ", assoc, " is gone"));
  }
  return absl::OkStatus();
}

}  // namespace smig::transport::testing
