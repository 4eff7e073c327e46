#include "dataplane/transport/path_table.h"

namespace smig::transport {

void PathTable::AddPending(uint32_t assoc) {
  absl::MutexLock lock(&mu_);
  assocs_.try_emplace(assoc);
}

void PathTable::OnUp(uint32_t assoc, uint32_t streams_out, const std::vector<std::string>& paths,
                     const std::string& primary) {
  absl::MutexLock lock(&mu_);
  Assoc& a = assocs_[assoc];
  a.up = true;
  a.streams_out = streams_out;
  a.primary = primary;
  for (const std::string& p : paths) a.paths.try_emplace(p);
}

void PathTable::OnEvent(const v1::Event& event) {
  absl::MutexLock lock(&mu_);
  auto it = assocs_.find(event.assoc_id());
  switch (event.type()) {
    case v1::EVENT_TYPE_ASSOC_LOST:
    case v1::EVENT_TYPE_ASSOC_CANT_START:
    case v1::EVENT_TYPE_SHUTDOWN_COMPLETE:
      if (it != assocs_.end()) assocs_.erase(it);
      return;
    default:
      break;
  }
  if (it == assocs_.end()) return;
  Assoc& a = it->second;
  switch (event.type()) {
    case v1::EVENT_TYPE_PATH_AVAILABLE:
    case v1::EVENT_TYPE_PATH_ADDED:
      a.paths[event.address()].state = v1::PATH_STATE_ACTIVE;
      break;
    case v1::EVENT_TYPE_PATH_UNREACHABLE:
      a.paths[event.address()].state = v1::PATH_STATE_INACTIVE;
      break;
    case v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED:
      a.paths[event.address()].state = v1::PATH_STATE_POTENTIALLY_FAILED;
      break;
    case v1::EVENT_TYPE_PATH_REMOVED:
      a.paths.erase(event.address());
      break;
    case v1::EVENT_TYPE_PRIMARY_CHANGED:
      a.primary = event.address();
      break;
    case v1::EVENT_TYPE_ASSOC_RESTART:
      a.streams_out = event.streams_out();
      break;
    default:
      break;
  }
}

void PathTable::SetPrimary(uint32_t assoc, const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = assocs_.find(assoc);
  if (it != assocs_.end()) it->second.primary = address;
}

bool PathTable::Contains(uint32_t assoc) const {
  absl::MutexLock lock(&mu_);
  return assocs_.contains(assoc);
}

uint32_t PathTable::StreamsOut(uint32_t assoc) const {
  absl::MutexLock lock(&mu_);
  auto it = assocs_.find(assoc);
  return it == assocs_.end() ? 0 : it->second.streams_out;
}

std::vector<uint32_t> PathTable::Associations() const {
  absl::MutexLock lock(&mu_);
  std::vector<uint32_t> out;
  for (const auto& [id, a] : assocs_) out.push_back(id);
  return out;
}

PathTable::Path* PathTable::SendingPath(Assoc& a) {
  auto primary = a.paths.find(a.primary);
  if (primary != a.paths.end() && primary->second.state == v1::PATH_STATE_ACTIVE) {
    return &primary->second;
  }
  for (auto& [address, path] : a.paths) {
    if (path.state == v1::PATH_STATE_ACTIVE) return &path;
  }
  return primary == a.paths.end() ? nullptr : &primary->second;
}

std::vector<std::string> PathTable::Paths(uint32_t assoc) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  auto it = assocs_.find(assoc);
  if (it == assocs_.end()) return out;
  for (const auto& [address, path] : it->second.paths) out.push_back(address);
  return out;
}

bool PathTable::RecordSend(uint32_t assoc, size_t bytes, const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto it = assocs_.find(assoc);
  if (it == assocs_.end()) return false;
  Path* p = nullptr;
  if (!path.empty()) {
    auto named = it->second.paths.find(path);
    if (named != it->second.paths.end() && named->second.state == v1::PATH_STATE_ACTIVE) {
      p = &named->second;
    }
  }
  if (p == nullptr) p = SendingPath(it->second);
  if (p != nullptr) {
    p->bytes += bytes;
    ++p->messages;
  }
  return true;
}

void PathTable::FillCounters(v1::AssociationInfo& info) const {
  absl::MutexLock lock(&mu_);
  auto it = assocs_.find(info.assoc_id());
  if (it == assocs_.end()) return;
  for (v1::PathInfo& p : *info.mutable_paths()) {
    auto path = it->second.paths.find(p.address());
    if (path == it->second.paths.end()) continue;
    p.set_bytes_sent(path->second.bytes);
    p.set_messages_sent(path->second.messages);
  }
}

}  // namespace smig::transport
