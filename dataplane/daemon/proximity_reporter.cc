#include "dataplane/daemon/proximity_reporter.h"

#include <grpcpp/grpcpp.h>

#include "common/logging.h"
#include "common/proto_time.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "common/grpc_client.h"

namespace smig::dataplane {

namespace pv1 = ::smig::proximity::v1;

namespace {
constexpr absl::Duration kListEvery = absl::Seconds(2);
constexpr absl::Duration kRpcTimeout = absl::Seconds(1);
constexpr absl::Duration kDefaultInterval = absl::Milliseconds(500);
}  // namespace

ProximityReporter::ProximityReporter(NodeApi& node, v1::ProximityReporting config, Clock& clock)
    : node_(node), config_(std::move(config)), clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

ProximityReporter::~ProximityReporter() {
  stop_.store(true);
  thread_.join();
}

void ProximityReporter::Run() {
  const absl::Duration interval = FromProtoOr(config_.interval(), kDefaultInterval);
  absl::StatusOr<ClientCredentials> credentials = ClientCredentials::FromConfig(config_.client_tls());
  if (!credentials.ok()) {  // the daemon checked the config before it started
    LOG(ERROR) << "proximity reports off: " << credentials.status();
    return;
  }
  auto stub = pv1::Proximity::NewStub(credentials->Channel(config_.pmm_address()));
  std::vector<pv1::Server> servers;
  absl::Time next_list = absl::InfinitePast();
  std::unique_ptr<grpc::ClientContext> ctx;
  pv1::ReportProximityResponse response;
  std::unique_ptr<grpc::ClientWriter<pv1::ProximityReport>> stream;
  bool warned = false;
  for (absl::Time next = clock_.Now(); !stop_.load(); next += interval) {
    clock_.SleepUntil(next);
    if (clock_.Now() >= next_list) {
      grpc::ClientContext list_ctx;
      list_ctx.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));  // gRPC's: real
      pv1::ListServersResponse list;
      grpc::Status st = stub->ListServers(&list_ctx, pv1::ListServersRequest(), &list);
      if (st.ok()) {
        servers.assign(list.servers().begin(), list.servers().end());
        warned = false;
      } else if (!warned) {  // once per outage, not every interval
        LOG(WARNING) << "PMM " << config_.pmm_address() << " ListServers: " << st.error_message();
        warned = true;
      }
      next_list = clock_.Now() + kListEvery;
    }
    pv1::ProximityReport report = node_.MeasureProximity(servers);
    report.set_vehicle_id(config_.vehicle_id());
    if (!stream) {
      ctx = std::make_unique<grpc::ClientContext>();
      stream = stub->ReportProximity(ctx.get(), &response);
    }
    if (!stream->Write(report)) {  // the PMM went away: a new stream next time
      (void)stream->Finish();
      stream.reset();
    }
  }
  if (stream) {
    stream->WritesDone();
    (void)stream->Finish();
  }
}

}  // namespace smig::dataplane
