// SinkSet: a vehicle's players. Each (session, flow) gets its own media::Sink, made on the
// flow's first payload from the config's sink for that flow id; a flow without one (or
// whose sink cannot be made) is told once as an agent event and its data is discarded.
//
//   SinkSet sinks(config.sinks(), make_sink, publish);
//   absl::Status s = sinks.Deliver(session, flow, payload);  // an error: the sink's Write's
//   sinks.CloseAll();                                          // when the loop stops
//
// Ownership: owns the sinks. `configured` (the node's config) outlives it. Not
// thread-safe: the node's loop (the VehicleEngine's deliver callback) calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/media/sink.h"
#include "google/protobuf/map.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/session.pb.h"

namespace smig::dataplane {

// Makes the sink of one flow from its configured v1::Sink (media::MakeSink, or a test's).
using SinkFactory =
    std::function<absl::StatusOr<std::unique_ptr<media::Sink>>(const v1::Sink& sink)>;

class SinkSet {
 public:
  using Configured = google::protobuf::Map<uint32_t, v1::Sink>;  // flow id -> sink

  SinkSet(const Configured& configured, SinkFactory make_sink,
          std::function<void(v1::AgentEvent)> publish);

  // Writes one in-order payload to the flow's sink (made first if need be). OK when the
  // flow has no sink (its data is discarded); the Write's error otherwise.
  absl::Status Deliver(uint64_t session, uint32_t flow, absl::string_view data);
  // Closes every sink (idempotent).
  void CloseAll();

 private:
  // The flow's sink, made on first use; null when it has none.
  media::Sink* Find(uint64_t session, uint32_t flow);

  const Configured& configured_;
  SinkFactory make_sink_;
  std::function<void(v1::AgentEvent)> publish_;
  std::map<std::pair<uint64_t, uint32_t>, std::unique_ptr<media::Sink>> sinks_;
};

}  // namespace smig::dataplane
