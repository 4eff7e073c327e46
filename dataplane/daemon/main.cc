// smig-dataplane: the data plane of an edge server or a vehicle. It tunnels media flows
// over multi-homed SCTP and serves the agent API (gRPC, with health and reflection) and
// /metrics. See docs/architecture.md.
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include <prometheus/registry.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/server_config.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "dataplane/daemon/agent_service.h"
#include "dataplane/daemon/node.h"
#include "dataplane/daemon/proximity_reporter.h"
#include "dataplane/media/sink.h"
#include "dataplane/media/source.h"
#include "google/protobuf/util/time_util.h"

ABSL_FLAG(std::string, role, "", "Override the config's role: edge or vehicle");
ABSL_FLAG(std::string, sctp_stack, "", "Override the config's SCTP stack: auto, kernel or userland");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long sessions get to shut down gracefully");

namespace {

namespace v1 = smig::dataplane::v1;
using google::protobuf::util::TimeUtil;

int Fail(const absl::Status& s) {
  std::cerr << "smig-dataplane: " << s << "\n";
  return 2;
}

absl::StatusOr<std::string> ReadKey(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("deployment_key_file is required");
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read deployment key ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "the smig data plane (edge or vehicle).\n"
                   "  smig-dataplane --config=edge.json\n"
                   "Flag names take dashes or underscores.");
  smig::BlockTerminationSignals();  // before any thread starts, so they inherit it
  // A peer or player that goes away must cost an error code, never the process.
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<v1::DataplaneConfig> loaded = smig::LoadServerConfig<v1::DataplaneConfig>();
  if (!loaded.ok()) return Fail(loaded.status());
  v1::DataplaneConfig& config = *loaded;
  if (std::string r = absl::GetFlag(FLAGS_role); !r.empty()) {
    if (r != "edge" && r != "vehicle") {
      return Fail(absl::InvalidArgumentError(absl::StrCat("--role=", r, ": use edge or vehicle")));
    }
    config.set_role(r == "edge" ? v1::ROLE_EDGE : v1::ROLE_VEHICLE);
  }
  if (!absl::GetFlag(FLAGS_sctp_stack).empty()) config.set_sctp_stack(absl::GetFlag(FLAGS_sctp_stack));

  absl::StatusOr<smig::transport::StackChoice> stack =
      smig::transport::ParseStackChoice(config.sctp_stack().empty() ? "auto" : config.sctp_stack());
  if (!stack.ok()) return Fail(stack.status());
  absl::StatusOr<std::string> key = ReadKey(config.deployment_key_file());
  if (!key.ok()) return Fail(key.status());
  if (config.sctp_port() > 65535 || config.udp_encaps_port() > 65535 ||
      config.remote_udp_encaps_port() > 65535) {
    return Fail(absl::InvalidArgumentError("a port in the config is above 65535"));
  }

  smig::transport::EndpointOptions eo;
  eo.local_addresses.assign(config.local_addresses().begin(), config.local_addresses().end());
  eo.port = static_cast<uint16_t>(config.sctp_port());
  eo.udp_encaps_port = static_cast<uint16_t>(config.udp_encaps_port());
  eo.remote_udp_encaps_port = static_cast<uint16_t>(config.remote_udp_encaps_port());
  eo.listen = config.role() == v1::ROLE_VEHICLE;
  eo.profile = config.has_failover() ? config.failover() : smig::transport::FastFailoverProfile();
  absl::StatusOr<std::unique_ptr<smig::transport::Endpoint>> endpoint =
      smig::transport::CreateEndpoint(*stack, eo);
  if (!endpoint.ok()) return Fail(endpoint.status());
  std::unique_ptr<smig::transport::Endpoint> probe_endpoint;
  if (config.role() == v1::ROLE_EDGE && config.probe_port() != 0) {
    if (config.probe_port() > 65535) {
      return Fail(absl::InvalidArgumentError("probe_port is above 65535"));
    }
    smig::transport::EndpointOptions po = eo;
    po.port = static_cast<uint16_t>(config.probe_port());
    po.listen = true;
    absl::StatusOr<std::unique_ptr<smig::transport::Endpoint>> p =
        smig::transport::CreateEndpoint(*stack, po);
    if (!p.ok()) return Fail(p.status());
    probe_endpoint = std::move(*p);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  smig::dataplane::DataplaneNode::Deps deps;
  deps.config = config;
  deps.endpoint = std::move(*endpoint);
  deps.probe_endpoint = std::move(probe_endpoint);
  deps.deployment_key = *key;
  deps.registry = registry;
  deps.make_source = [](const v1::FlowState& f, absl::Time now) {
    absl::Time anchor = now;
    if (f.has_checkpoint_due_at()) {
      anchor = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(f.checkpoint_due_at()));
    }
    return smig::dataplane::media::MakeSource(f.source(), f.source_offset(), anchor);
  };
  deps.make_sink = [](const v1::Sink& s) { return smig::dataplane::media::MakeSink(s); };
  absl::StatusOr<std::unique_ptr<smig::dataplane::DataplaneNode>> node =
      smig::dataplane::DataplaneNode::Start(std::move(deps));
  if (!node.ok()) return Fail(node.status());

  std::unique_ptr<smig::dataplane::ProximityReporter> reporter;
  if (config.role() == v1::ROLE_VEHICLE && !config.proximity().pmm_address().empty()) {
    if (config.proximity().vehicle_id().empty()) {
      return Fail(absl::InvalidArgumentError("proximity reporting needs proximity.vehicle_id"));
    }
    reporter = std::make_unique<smig::dataplane::ProximityReporter>(**node, config.proximity());
  }
  smig::dataplane::AgentService agent(**node);
  absl::StatusOr<std::unique_ptr<smig::GrpcServer>> server =
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&agent}, registry);
  if (!server.ok()) return Fail(server.status());
  std::cout << "{\"role\":\"" << (config.role() == v1::ROLE_EDGE ? "edge" : "vehicle")
            << "\",\"grpc_port\":" << (*server)->grpc_port()
            << ",\"metrics_port\":" << (*server)->metrics_port() << "}" << std::endl;

  int sig = smig::WaitForTerminationSignal();
  std::cerr << "smig-dataplane: signal " << sig << ": releasing sessions\n";
  (*server)->SetServing("", false);
  reporter.reset();
  (*node)->Stop(absl::GetFlag(FLAGS_shutdown_grace));
  (*server)->Shutdown(absl::Seconds(1));
  return 0;
}
