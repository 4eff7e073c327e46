#include "dataplane/edge/redundant_link.h"

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
  next_sample_ = absl::InfinitePast();
  Tick(now);
}

void RedundantLink::Detach() {
  assoc_.reset();
  redundancy_.Reset();
  plan_.reset();
}

void RedundantLink::OnEvent(const tv1::Event& e, absl::Time now) {
  if (!assoc_ || e.assoc_id() != *assoc_ || policy() == v1::REDUNDANCY_POLICY_OFF) return;
  redundancy_.OnEvent(e, now);
  Decide(now);  // a path that just failed must not get the next copy
}

void RedundantLink::Tick(absl::Time now) {
  if (!assoc_ || policy() == v1::REDUNDANCY_POLICY_OFF || now < next_sample_) return;
  next_sample_ = now + Redundancy::kSampleInterval;
  if (absl::StatusOr<tv1::AssociationInfo> info = endpoint_.GetAssociation(*assoc_); info.ok()) {
    redundancy_.OnSample(*info, now);
  }
  Decide(now);
}

void RedundantLink::Decide(absl::Time now) {
  const bool was = plan_.has_value();
  plan_ = redundancy_.Decide(now);
  if (plan_.has_value() && !was) {
    LOG(INFO) << "session " << session_ << ": two copies, on " << plan_->first << " and "
              << plan_->second << " (" << redundancy_.reason() << ")";
  } else if (!plan_.has_value() && was) {
    LOG(INFO) << "session " << session_ << ": one copy again (" << redundancy_.reason() << ")";
  }
}

absl::Status RedundantLink::SendData(uint32_t flow, absl::string_view frame,
                                     size_t payload_bytes) {
  if (!assoc_) return absl::FailedPreconditionError("no association");
  const uint16_t copy_stream = plan_ ? CopyStream(flow, streams_out_) : 0;
  transport::SendOptions first{.stream = static_cast<uint16_t>(DataStream(flow)),
                               .max_wait = absl::ZeroDuration()};
  if (copy_stream != 0) first.path = plan_->first;
  absl::Status st = endpoint_.Send(*assoc_, first, frame);
  if (absl::IsInvalidArgument(st) && !first.path.empty()) {
    first.path.clear();  // the stack no longer lists that path: its own choice then
    st = endpoint_.Send(*assoc_, first, frame);
  }
  if (!st.ok() || copy_stream == 0) return st;
  absl::Status copy = endpoint_.Send(
      *assoc_, {.stream = copy_stream, .path = plan_->second, .max_wait = absl::ZeroDuration()},
      frame);
  if (copy.ok()) {
    redundant_bytes_ += payload_bytes;
  } else {
    ++copies_dropped_;
    VLOG(1) << "session " << session_ << ": second copy not sent: " << copy;
  }
  return st;
}

}  // namespace smig::dataplane
