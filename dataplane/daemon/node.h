// DataplaneNode: one data plane: its SCTP endpoint, its engine (EdgeEngine or
// VehicleEngine, by role) and the loop thread that drives them. The agent API's calls are
// posted to the loop and answered from it, so the engines stay single-threaded.
//
//   auto node = DataplaneNode::Start(std::move(deps));
//   absl::StatusOr<v1::Session> s = (*node)->OpenSession(request);   // any thread
//   (*node)->Stop(absl::Seconds(5));   // SIGTERM: sessions are released gracefully
//
// Lifetimes: the node owns the endpoint; Stop() (or the destructor) joins the loop.
#pragma once

#include <poll.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/edge/edge_engine.h"
#include "dataplane/media/sink.h"
#include "dataplane/vehicle/vehicle_engine.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/config.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace prometheus {
class Registry;
}

namespace smig::dataplane {

// Events for WatchEvents subscribers; bounded, the oldest are dropped when a reader lags.
class EventQueue {
 public:
  explicit EventQueue(uint64_t session_filter) : filter_(session_filter) {}
  void Push(const v1::AgentEvent& e);
  // Waits up to `timeout`; nullopt on timeout or after Close().
  std::optional<v1::AgentEvent> Pop(absl::Duration timeout);
  void Close();

 private:
  uint64_t filter_;
  absl::Mutex mu_;
  std::deque<v1::AgentEvent> events_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class DataplaneNode {
 public:
  using SinkFactory = std::function<absl::StatusOr<std::unique_ptr<media::Sink>>(const v1::Sink&)>;
  struct Deps {
    v1::DataplaneConfig config;
    std::unique_ptr<transport::Endpoint> endpoint;
    // Edge: where vehicles keep probe associations (may be null). Accepted and otherwise
    // ignored: SCTP's heartbeats on them are the measurement.
    std::unique_ptr<transport::Endpoint> probe_endpoint;
    std::string deployment_key;
    EdgeEngine::SourceFactory make_source;  // edge
    SinkFactory make_sink;                  // vehicle
    std::shared_ptr<prometheus::Registry> registry;  // may be null: no metrics
  };

  static absl::StatusOr<std::unique_ptr<DataplaneNode>> Start(Deps deps);
  ~DataplaneNode();

  absl::StatusOr<v1::Session> OpenSession(const v1::OpenSessionRequest& request);
  absl::StatusOr<v1::SessionState> ExportState(uint64_t session);
  absl::StatusOr<v1::Session> ImportState(const v1::SessionState& state);
  absl::StatusOr<v1::Session> ReleaseSession(uint64_t session);
  absl::StatusOr<v1::Session> GetSession(uint64_t session);
  std::vector<v1::Session> ListSessions();
  std::shared_ptr<EventQueue> Subscribe(uint64_t session_filter);
  void Unsubscribe(const std::shared_ptr<EventQueue>& q);

  // Vehicle: measures every listed server over a probe association to its probe port
  // (opened here on first use, re-opened when lost) and says which server serves now.
  proximity::v1::ProximityReport MeasureProximity(const std::vector<proximity::v1::Server>& servers);

  // Releases every session (edge), waits up to `grace` for graceful shutdowns, stops.
  void Stop(absl::Duration grace);
  v1::Role role() const { return config_.role(); }

 private:
  struct Metrics;
  explicit DataplaneNode(Deps deps);
  // Runs `fn` on the loop thread and waits for it.
  void OnLoop(std::function<void()> fn);
  void Loop();
  // Adds what the engines counted since the last call to the Prometheus series.
  void ExportMetrics(absl::Time now);
  void ExportPathMetrics();
  // Waits up to `wait` for the endpoint or (edge) a live source, then receives at most one.
  absl::StatusOr<std::optional<transport::Incoming>> Wait(absl::Duration wait);
  void CountPathEvent(const transport::v1::Event& e);
  void Publish(v1::AgentEvent e);
  v1::Session DescribeVehicle(uint64_t session) const;
  void Deliver(uint64_t session, uint32_t flow, absl::string_view data);

  v1::DataplaneConfig config_;
  std::unique_ptr<transport::Endpoint> endpoint_;
  std::unique_ptr<EdgeEngine> edge_;
  std::unique_ptr<VehicleEngine> vehicle_;
  SinkFactory make_sink_;
  std::map<std::pair<uint64_t, uint32_t>, std::unique_ptr<media::Sink>> sinks_;  // vehicle
  std::shared_ptr<prometheus::Registry> registry_;  // owns the series metrics_ points into
  std::unique_ptr<Metrics> metrics_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<EventQueue>> subscribers_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::thread loop_;
  std::vector<pollfd> poll_fds_;  // the loop's scratch
  std::unique_ptr<transport::Endpoint> probe_endpoint_;
  std::map<std::string, transport::AssocId> probes_;  // vehicle: server id -> probe
};

}  // namespace smig::dataplane
