// PathTable: what an endpoint knows about its associations between stack queries: which
// exist, their stream counts, each path's last reported state, the primary, and per-path
// send counters.
//
// No SCTP stack exports per-path byte counters, so RecordSend() attributes each message to
// the path the stack uses for new data as far as events tell: the primary while it is not
// reported unreachable or potentially failed, else the first path reported available.
// usrsctp reports no potentially-failed state, so on that stack the attribution moves only
// when the stack declares the primary unreachable. A message sent to a named path
// (SendOptions::path) counts on that path while it is reported active; on a path reported
// down it counts like an unnamed one (the kernel moves such data to an active path).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/synchronization/mutex.h"
#include "smig/transport/v1/transport.pb.h"

namespace smig::transport {

class PathTable {
 public:
  // An association that was started locally and is not up yet.
  void AddPending(uint32_t assoc);
  // The association is up with these peer addresses ("ip:port") and primary.
  void OnUp(uint32_t assoc, uint32_t streams_out, const std::vector<std::string>& paths,
            const std::string& primary);
  // Applies a path or association event (state changes, primary changes, endings).
  void OnEvent(const v1::Event& event);
  void SetPrimary(uint32_t assoc, const std::string& address);

  bool Contains(uint32_t assoc) const;
  // Outbound streams of an up association; 0 while pending or unknown.
  uint32_t StreamsOut(uint32_t assoc) const;
  std::vector<uint32_t> Associations() const;

  // The peer addresses ("ip:port") of an association, in address order; empty while it is
  // pending or unknown.
  std::vector<std::string> Paths(uint32_t assoc) const;

  // Attributes one sent message, to `path` ("ip:port") when the sender named one; false if
  // the association is unknown.
  bool RecordSend(uint32_t assoc, size_t bytes, const std::string& path = "");
  // Copies the counters into `info`'s paths (matched by address).
  void FillCounters(v1::AssociationInfo& info) const;

 private:
  struct Path {
    v1::PathState state = v1::PATH_STATE_ACTIVE;
    uint64_t bytes = 0;
    uint64_t messages = 0;
  };
  struct Assoc {
    bool up = false;
    uint32_t streams_out = 0;
    std::string primary;
    absl::btree_map<std::string, Path> paths;  // ordered: deterministic fallback choice
  };
  static Path* SendingPath(Assoc& a);

  mutable absl::Mutex mu_;
  absl::btree_map<uint32_t, Assoc> assocs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace smig::transport
