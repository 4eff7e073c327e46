// DataplaneNode: one data plane: its SCTP endpoint, its role (EdgeRole, VehicleRole, ...,
// made by name from role_registry.h) and the loop thread that drives them. The agent
// API's calls are posted to the loop and answered from it, so the roles' engines stay
// single-threaded.
//
//   auto node = DataplaneNode::Start(std::move(deps));
//   absl::StatusOr<v1::Session> s = (*node)->OpenSession(request);   // any thread
//   std::shared_ptr<DataplaneNode::EventQueue> q = (*node)->Subscribe(/*session=*/0);
//   std::optional<v1::AgentEvent> e = q->Pop(absl::Milliseconds(200));
//   (*node)->Stop(absl::Seconds(5));   // SIGTERM: sessions are released gracefully
//
// SMM leader fencing: OpenSession, ImportState and ReleaseSession carry the fencing token
// of the SMM that sends them (0: unfenced). The node admits it through its FencingGate
// (fencing.h) on the loop thread, right before the role acts, so that admitting and
// acting are one step: a token older than the highest accepted is refused with
// FAILED_PRECONDITION and the role never sees the call.
//
// Lifetimes: the node owns the endpoint, the role and the metrics; Stop() (or the
// destructor) joins the loop. A subscriber's queue is shared: the node closes it at Stop.
#pragma once

#include <poll.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/blocking_queue.h"
#include "dataplane/daemon/companion.h"
#include "dataplane/daemon/fencing.h"
#include "dataplane/daemon/role.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/config.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace smig::dataplane {

class NodeMetrics;

class DataplaneNode : public NodeApi {  // NodeApi: for the role's companions
 public:
  using Deps = NodeDeps;  // role.h
  // Events for WatchEvents subscribers; bounded, the oldest are dropped when a reader lags.
  using EventQueue = BlockingQueue<v1::AgentEvent>;
  static constexpr size_t kMaxQueuedEvents = 1024;

  // INVALID_ARGUMENT for a role nobody registered or no endpoint; the role's error for a
  // config it cannot serve.
  static absl::StatusOr<std::unique_ptr<DataplaneNode>> Start(Deps deps);
  ~DataplaneNode() override;

  // Fenced by request.fencing_token().
  absl::StatusOr<v1::Session> OpenSession(const v1::OpenSessionRequest& request);
  absl::StatusOr<v1::SessionState> ExportState(uint64_t session);
  // Fenced by `fencing_token` (FencingGate::kUnfenced: not fenced).
  absl::StatusOr<v1::Session> ImportState(const v1::SessionState& state, uint64_t fencing_token);
  absl::StatusOr<v1::Session> ReleaseSession(uint64_t session, uint64_t fencing_token);
  absl::StatusOr<v1::Session> GetSession(uint64_t session);
  std::vector<v1::Session> ListSessions();
  // Every event of `session_filter`'s session, and those of no session (0: every event).
  std::shared_ptr<EventQueue> Subscribe(uint64_t session_filter);
  void Unsubscribe(const std::shared_ptr<EventQueue>& q);

  // Vehicle: measures every listed server over a probe association to its probe port
  // (opened here on first use, re-opened when lost) and says which server serves now.
  proximity::v1::ProximityReport MeasureProximity(
      const std::vector<proximity::v1::Server>& servers) override;

  // Releases every session (edge), waits up to `grace` for graceful shutdowns, stops.
  void Stop(absl::Duration grace);
  v1::Role role() const { return config_.role(); }
  // The highest fencing token accepted so far (0: none).
  uint64_t fencing_token() const { return fence_.highest(); }

 private:
  struct Subscriber {
    uint64_t session_filter;
    std::shared_ptr<EventQueue> queue;
  };

  explicit DataplaneNode(Deps& deps);  // takes config, endpoint and registry
  // Runs `fn` on the loop thread and waits for it.
  void OnLoop(std::function<void()> fn);
  // OnLoop for a call of the role that answers.
  template <typename T>
  T Ask(const std::function<T(Role&, absl::Time)>& call);
  void Loop();
  // Waits up to `wait` for the endpoint or what else the role wakes on, then receives at
  // most one message or event.
  absl::StatusOr<std::optional<transport::Incoming>> Wait(absl::Duration wait);
  // Stamps `e` and hands it to each subscriber whose filter it passes; any thread.
  void Publish(v1::AgentEvent e);
  // On the loop: admits `token` for agent method `method`, counting a refusal.
  absl::Status PassFence(const char* method, uint64_t token);
  absl::StatusOr<v1::Session> Import(const char* method, const v1::SessionState& state,
                                     uint64_t fencing_token);

  v1::DataplaneConfig config_;
  std::unique_ptr<transport::Endpoint> endpoint_;
  std::shared_ptr<prometheus::Registry> registry_;  // owns the series metrics_ points into
  std::unique_ptr<NodeMetrics> metrics_;            // null: no metrics
  std::unique_ptr<Role> role_;  // after metrics_ and endpoint_: destroyed before them
  FencingGate fence_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  std::vector<Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::thread loop_;
  std::vector<pollfd> poll_fds_;  // the loop's scratch
  absl::Time next_export_ = absl::InfinitePast();
};

}  // namespace smig::dataplane
