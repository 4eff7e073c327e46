#include "dataplane/daemon/node.h"

#include <poll.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "dataplane/daemon/node_metrics.h"
#include "dataplane/daemon/role_registry.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

namespace {
constexpr absl::Duration kLoopWait = absl::Milliseconds(5);
constexpr absl::Duration kMetricsEvery = absl::Milliseconds(200);
constexpr absl::Duration kDrainPoll = absl::Milliseconds(10);
}  // namespace

DataplaneNode::DataplaneNode(Deps& deps)
    : config_(std::move(deps.config)),
      endpoint_(std::move(deps.endpoint)),
      registry_(std::move(deps.registry)) {}

absl::StatusOr<std::unique_ptr<DataplaneNode>> DataplaneNode::Start(Deps deps) {
  SMIG_ASSIGN_OR_RETURN(const RoleEntry* entry, GetRole(deps.config.role()));
  if (deps.endpoint == nullptr) return absl::InvalidArgumentError("no SCTP endpoint");
  std::unique_ptr<DataplaneNode> node(new DataplaneNode(deps));
  DataplaneNode* self = node.get();
  RoleEnv env{.config = node->config_,
              .endpoint = *node->endpoint_,
              .publish = [self](v1::AgentEvent e) { self->Publish(std::move(e)); }};
  SMIG_ASSIGN_OR_RETURN(node->role_, entry->make(std::move(env), deps));
  if (node->registry_) {
    node->metrics_ = std::make_unique<NodeMetrics>(*node->registry_, std::string(entry->name));
    node->role_->AttachMetrics(*node->metrics_);
  }
  node->loop_ = std::thread([self] { self->Loop(); });
  return node;
}

DataplaneNode::~DataplaneNode() { Stop(absl::ZeroDuration()); }

void DataplaneNode::Publish(v1::AgentEvent e) {
  *e.mutable_time() = ToProtoTimestamp(absl::Now());
  absl::MutexLock lock(&mu_);
  for (const Subscriber& s : subscribers_) {
    if (s.session_filter != 0 && e.session_id() != 0 && e.session_id() != s.session_filter) {
      continue;
    }
    s.queue->Push(e);
  }
}

std::shared_ptr<DataplaneNode::EventQueue> DataplaneNode::Subscribe(uint64_t session_filter) {
  auto q = std::make_shared<EventQueue>(kMaxQueuedEvents);
  absl::MutexLock lock(&mu_);
  subscribers_.push_back({session_filter, q});
  return q;
}

void DataplaneNode::Unsubscribe(const std::shared_ptr<EventQueue>& q) {
  absl::MutexLock lock(&mu_);
  std::erase_if(subscribers_, [&](const Subscriber& s) { return s.queue == q; });
}

void DataplaneNode::OnLoop(std::function<void()> fn) {
  if (stop_.load()) {
    fn();  // the loop is gone: nothing else touches the role any more
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back([fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
  }
  f.wait();
}

template <typename T>
T DataplaneNode::Ask(const std::function<T(Role&, absl::Time)>& call) {
  std::optional<T> out;
  OnLoop([&] { out.emplace(call(*role_, absl::Now())); });
  return std::move(*out);
}

void DataplaneNode::Loop() {
  while (!stop_.load()) {
    std::deque<std::function<void()>> posted;
    {
      absl::MutexLock lock(&mu_);
      posted.swap(posted_);
    }
    for (auto& fn : posted) fn();
    absl::Time now = absl::Now();
    absl::StatusOr<std::optional<transport::Incoming>> in =
        Wait(std::min(role_->NextWait(now), kLoopWait));
    now = absl::Now();
    if (in.ok() && in->has_value()) {
      if (const auto* ev = std::get_if<tv1::Event>(&**in)) {
        // Rare (association and path changes) and what an operator reads first.
        LOG(INFO) << "association " << ev->assoc_id() << ": " << tv1::EventType_Name(ev->type())
                  << (ev->address().empty() ? "" : " ") << ev->address()
                  << (ev->error() != 0 ? absl::StrCat(" (error ", ev->error(), ")") : "");
        if (metrics_ && ev->type() == tv1::EVENT_TYPE_ASSOC_UP) {
          if (absl::StatusOr<tv1::AssociationInfo> info = endpoint_->GetAssociation(ev->assoc_id());
              info.ok()) {
            metrics_->OnAssociationUp(*info);
          }
        }
        if (metrics_) {
          metrics_->CountPathEvent(*ev, [this](transport::AssocId a) { return role_->Carries(a); });
        }
        v1::AgentEvent e;
        *e.mutable_transport() = *ev;
        Publish(std::move(e));
      }
    }
    role_->Handle(in, now);
    role_->Pump(now);
    if (metrics_ && now >= next_export_) {
      next_export_ = now + kMetricsEvery;
      role_->ExportMetrics();
      metrics_->ExportStack(endpoint_->stack());
    }
  }
}

absl::StatusOr<std::optional<transport::Incoming>> DataplaneNode::Wait(absl::Duration wait) {
  poll_fds_.clear();
  role_->AddWakeFds(poll_fds_);
  if (poll_fds_.empty()) return endpoint_->Receive(wait);  // nothing else to wait for
  poll_fds_.push_back({endpoint_->wait_fd(), POLLIN, 0});
  int ms = static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  (void)poll(poll_fds_.data(), poll_fds_.size(), ms);
  role_->AfterWait();
  return endpoint_->Receive(absl::ZeroDuration());
}

absl::StatusOr<v1::Session> DataplaneNode::OpenSession(const v1::OpenSessionRequest& r) {
  if (r.session_id() == 0) return absl::InvalidArgumentError("session_id 0 is reserved");
  return Ask<absl::StatusOr<v1::Session>>(
      [&](Role& role, absl::Time now) -> absl::StatusOr<v1::Session> {
        SMIG_RETURN_IF_ERROR(PassFence("OpenSession", r.fencing_token()));
        return role.OpenSession(r, now);
      });
}

absl::StatusOr<v1::Session> DataplaneNode::ImportState(const v1::SessionState& state,
                                                       uint64_t fencing_token) {
  return Import("ImportState", state, fencing_token);
}

absl::StatusOr<v1::Session> DataplaneNode::Import(const char* method,
                                                  const v1::SessionState& state,
                                                  uint64_t fencing_token) {
  return Ask<absl::StatusOr<v1::Session>>(
      [&](Role& role, absl::Time now) -> absl::StatusOr<v1::Session> {
        SMIG_RETURN_IF_ERROR(PassFence(method, fencing_token));
        return role.ImportState(state, now);
      });
}

absl::Status DataplaneNode::PassFence(const char* method, uint64_t token) {
  absl::Status admitted = fence_.Admit(token);
  if (!admitted.ok()) {
    LOG(WARNING) << method << " refused: " << admitted.message();
    if (metrics_) metrics_->fenced_requests.Add({{"method", method}}).Increment();
    return admitted;
  }
  if (metrics_) metrics_->fencing_token.Set(static_cast<double>(fence_.highest()));
  return absl::OkStatus();
}

absl::StatusOr<v1::SessionState> DataplaneNode::ExportState(uint64_t session) {
  return Ask<absl::StatusOr<v1::SessionState>>(
      [&](Role& role, absl::Time now) { return role.ExportState(session, now); });
}

absl::StatusOr<v1::Session> DataplaneNode::ReleaseSession(uint64_t session,
                                                          uint64_t fencing_token) {
  return Ask<absl::StatusOr<v1::Session>>(
      [&](Role& role, absl::Time) -> absl::StatusOr<v1::Session> {
        SMIG_RETURN_IF_ERROR(PassFence("ReleaseSession", fencing_token));
        return role.ReleaseSession(session);
      });
}

absl::StatusOr<v1::Session> DataplaneNode::GetSession(uint64_t session) {
  return Ask<absl::StatusOr<v1::Session>>(
      [&](Role& role, absl::Time) { return role.GetSession(session); });
}

std::vector<v1::Session> DataplaneNode::ListSessions() {
  return Ask<std::vector<v1::Session>>([](Role& role, absl::Time) { return role.ListSessions(); });
}

proximity::v1::ProximityReport DataplaneNode::MeasureProximity(
    const std::vector<proximity::v1::Server>& servers) {
  return Ask<proximity::v1::ProximityReport>(
      [&](Role& role, absl::Time now) { return role.MeasureProximity(servers, now); });
}

void DataplaneNode::Stop(absl::Duration grace) {
  if (!loop_.joinable()) return;
  if (grace > absl::ZeroDuration()) {
    OnLoop([&] { role_->ReleaseAll(); });
    absl::Time deadline = absl::Now() + grace;
    while (absl::Now() < deadline) {
      bool drained = false;
      OnLoop([&] { drained = role_->Drained(); });
      if (drained) break;
      absl::SleepFor(kDrainPoll);
    }
  }
  stop_.store(true);
  loop_.join();
  role_->Close();
  absl::MutexLock lock(&mu_);
  for (const Subscriber& s : subscribers_) s.queue->Close();
}

}  // namespace smig::dataplane
