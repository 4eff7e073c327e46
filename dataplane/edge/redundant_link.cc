#include "dataplane/edge/redundant_link.h"

#include <algorithm>

#include "common/logging.h"
#include "dataplane/protocol/frame.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

RedundantLink::RedundantLink(transport::Endpoint& endpoint, uint64_t session,
                             v1::RedundancyPolicy policy)
    : endpoint_(endpoint), session_(session), redundancy_(policy) {}

void RedundantLink::Attach(transport::AssocId assoc, uint32_t streams_out, absl::Time now) {
  assoc_ = assoc;
  streams_out_ = streams_out;
  redundancy_.Reset();
  lane_path_ = {};
  probe_due_.clear();
  recent_.clear();
  now_ = now;
  next_sample_ = absl::InfinitePast();
  Tick(now);
}

void RedundantLink::Detach() {
  assoc_.reset();
  redundancy_.Reset();
  plan_.reset();
  lane_path_ = {};
  probe_due_.clear();
  recent_.clear();
}

void RedundantLink::OnEvent(const tv1::Event& e, absl::Time now) {
  if (!assoc_ || e.assoc_id() != *assoc_ || policy() == v1::REDUNDANCY_POLICY_OFF) return;
  now_ = std::max(now_, now);
  redundancy_.OnEvent(e, now);
  Decide(now);  // a path that just failed must not get the next copy
}

void RedundantLink::Tick(absl::Time now) {
  now_ = std::max(now_, now);
  if (!assoc_ || policy() == v1::REDUNDANCY_POLICY_OFF || now < next_sample_) return;
  next_sample_ = now + Redundancy::kSampleInterval;
  absl::StatusOr<tv1::AssociationInfo> info = endpoint_.GetAssociation(*assoc_);
  if (info.ok()) redundancy_.OnSample(*info, now);
  Decide(now);
  if (plan_ && info.ok()) Probe(*info, now);
}

void RedundantLink::Probe(const tv1::AssociationInfo& info, absl::Time now) {
  for (const tv1::PathInfo& p : info.paths()) {
    if (p.address() != plan_->first && p.address() != plan_->second) continue;
    absl::Time& due = probe_due_[p.address()];
    if (now < due) continue;
    // One RTO for the answer: an earlier second heartbeat would count a live path's error.
    due = now + std::max(Redundancy::kSampleInterval, absl::Milliseconds(p.rto_ms()));
    if (absl::Status st = endpoint_.RequestHeartbeat(*assoc_, p.address()); !st.ok()) {
      VLOG(1) << "session " << session_ << ": no heartbeat to " << p.address() << ": " << st;
    }
  }
}

void RedundantLink::Decide(absl::Time now) {
  const bool was = plan_.has_value();
  plan_ = redundancy_.Decide(now);
  if (plan_.has_value() && !was) {
    LOG(INFO) << "session " << session_ << ": two copies, on " << plan_->first << " and "
              << plan_->second << " (" << redundancy_.reason() << ")";
    CatchUp();
  } else if (!plan_.has_value() && was) {
    LOG(INFO) << "session " << session_ << ": one copy again (" << redundancy_.reason() << ")";
  }
}

absl::Status RedundantLink::Send(uint16_t stream, const std::string& path,
                                 absl::string_view frame) {
  absl::Status st = endpoint_.Send(
      *assoc_, {.stream = stream, .path = path, .max_wait = absl::ZeroDuration()}, frame);
  if (absl::IsInvalidArgument(st) && !path.empty()) {
    // The stack no longer lists that path: its own choice then.
    st = endpoint_.Send(*assoc_, {.stream = stream, .max_wait = absl::ZeroDuration()}, frame);
  }
  return st;
}

int RedundantLink::SingleLane() const {
  const std::optional<std::string> carrying = redundancy_.carrying();
  for (int lane : {0, 1}) {
    if (carrying && lane_path_[lane] == *carrying) return lane;
  }
  for (int lane : {0, 1}) {
    if (!lane_path_[lane].empty() && redundancy_.active(lane_path_[lane])) return lane;
  }
  return 0;
}

std::array<std::string, 2> RedundantLink::PlanLanes() const {
  const bool swap = lane_path_[0] == plan_->second || lane_path_[1] == plan_->first;
  return swap ? std::array<std::string, 2>{plan_->second, plan_->first}
              : std::array<std::string, 2>{plan_->first, plan_->second};
}

void RedundantLink::Remember(uint32_t flow, absl::string_view frame, size_t payload_bytes,
                             int lane) {
  while (!recent_.empty() && now_ - recent_.front().at > kCatchUpMax) {
    spare_.push_back(std::move(recent_.front().frame));
    recent_.pop_front();
  }
  Sent s{.at = now_, .flow = flow, .payload_bytes = payload_bytes, .path = lane_path_[lane]};
  if (!spare_.empty()) {  // a forgotten frame's buffer: no allocation per frame
    s.frame = std::move(spare_.back());
    spare_.pop_back();
  }
  s.frame.assign(frame.data(), frame.size());
  recent_.push_back(std::move(s));
}

void RedundantLink::CatchUp() {
  const std::array<std::string, 2> lanes = PlanLanes();
  uint64_t frames = 0, bytes = 0;
  // Newest first: the frames sent since the path went bad are the newest, and the other
  // path's window, idle until now, opens from its initial size (three or four frames
  // per round trip): those the vehicle lacks go in its first rounds.
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
    const Sent& s = *it;
    // What went on that path within its RTO and a sample may not be acknowledged yet.
    const absl::Duration window =
        std::min(kCatchUpMax, redundancy_.rto(s.path) + Redundancy::kSampleInterval);
    if (now_ - s.at > window) continue;
    const int other = s.path == lanes[1] ? 0 : 1;  // the lane on the other path
    const uint16_t stream = other == 0 ? static_cast<uint16_t>(DataStream(s.flow))
                                       : CopyStream(s.flow, streams_out_);
    if (!Send(stream, lanes[other], s.frame).ok()) {
      ++copies_dropped_;
      continue;
    }
    ++frames;
    bytes += s.payload_bytes;
  }
  for (Sent& s : recent_) spare_.push_back(std::move(s.frame));
  recent_.clear();
  lane_path_ = lanes;
  redundant_bytes_ += bytes;
  frames_caught_up_ += frames;
  if (frames > 0) {
    LOG(INFO) << "session " << session_ << ": caught up: " << frames << " frames (" << bytes
              << " bytes) that went once lately sent again, on the other path";
  }
}

absl::Status RedundantLink::SendData(uint32_t flow, absl::string_view frame,
                                     size_t payload_bytes) {
  if (!assoc_) return absl::FailedPreconditionError("no association");
  const std::array<uint16_t, 2> streams = {static_cast<uint16_t>(DataStream(flow)),
                                           CopyStream(flow, streams_out_)};
  if (streams[1] == 0) return Send(streams[0], "", frame);  // no copy stream: once
  if (!plan_) {
    const int lane = SingleLane();
    absl::Status st = Send(streams[lane], "", frame);
    if (st.ok()) {
      if (std::optional<std::string> carrying = redundancy_.carrying()) lane_path_[lane] = *carrying;
      if (policy() != v1::REDUNDANCY_POLICY_OFF) Remember(flow, frame, payload_bytes, lane);
    }
    return st;
  }
  // Each lane stays on the path it had, so that no copy queues behind another path's.
  const std::array<std::string, 2> paths = PlanLanes();
  absl::Status st = Send(streams[0], paths[0], frame);
  if (!st.ok()) return st;
  absl::Status copy = Send(streams[1], paths[1], frame);
  lane_path_ = paths;
  if (copy.ok()) {
    redundant_bytes_ += payload_bytes;
  } else {
    ++copies_dropped_;
    VLOG(1) << "session " << session_ << ": second copy not sent: " << copy;
  }
  return st;
}

}  // namespace smig::dataplane
