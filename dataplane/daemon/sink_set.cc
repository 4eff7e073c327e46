#include "dataplane/daemon/sink_set.h"

#include "absl/strings/str_cat.h"

namespace smig::dataplane {

SinkSet::SinkSet(const Configured& configured, SinkFactory make_sink,
                 std::function<void(v1::AgentEvent)> publish)
    : configured_(configured), make_sink_(std::move(make_sink)), publish_(std::move(publish)) {}

media::Sink* SinkSet::Find(uint64_t session, uint32_t flow) {
  auto key = std::make_pair(session, flow);
  if (auto it = sinks_.find(key); it != sinks_.end()) return it->second.get();
  std::unique_ptr<media::Sink> made;
  auto conf = configured_.find(flow);
  if (conf == configured_.end() || !make_sink_) {
    v1::AgentEvent e;
    e.set_session_id(session);
    e.set_error(absl::StrCat("no sink configured for flow ", flow, "; its data is discarded"));
    publish_(std::move(e));
  } else if (absl::StatusOr<std::unique_ptr<media::Sink>> sink = make_sink_(conf->second);
             sink.ok()) {
    made = std::move(*sink);
  } else {
    v1::AgentEvent e;
    e.set_session_id(session);
    e.set_error(absl::StrCat("flow ", flow, ": ", sink.status().ToString()));
    publish_(std::move(e));
  }
  return sinks_.emplace(key, std::move(made)).first->second.get();  // null: told once
}

absl::Status SinkSet::Deliver(uint64_t session, uint32_t flow, absl::string_view data) {
  media::Sink* sink = Find(session, flow);
  return sink == nullptr ? absl::OkStatus() : sink->Write(data);
}

void SinkSet::CloseAll() {
  for (auto& [key, sink] : sinks_) {
    if (sink) (void)sink->Close();
  }
}

}  // namespace smig::dataplane
