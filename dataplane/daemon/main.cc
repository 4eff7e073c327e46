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
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "common/server_config.h"
#include "common/status_macros.h"
#include "dataplane/daemon/agent_service.h"
#include "dataplane/daemon/node.h"
#include "dataplane/daemon/proximity_reporter.h"
#include "dataplane/daemon/role_registry.h"
#include "dataplane/media/sink.h"
#include "dataplane/media/source.h"

ABSL_FLAG(std::string, role, "", "Override the config's role: edge or vehicle");
ABSL_FLAG(std::string, sctp_stack, "", "Override the config's SCTP stack: auto, kernel or userland");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long sessions get to shut down gracefully");

namespace {

namespace v1 = smig::dataplane::v1;

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

namespace dp = smig::dataplane;
namespace transport = smig::transport;

struct Endpoints {
  std::unique_ptr<transport::Endpoint> main;
  std::unique_ptr<transport::Endpoint> probe;  // edge with a probe_port only
};

absl::StatusOr<Endpoints> OpenEndpoints(const v1::DataplaneConfig& config,
                                        transport::StackChoice stack) {
  if (config.sctp_port() > 65535 || config.udp_encaps_port() > 65535 ||
      config.remote_udp_encaps_port() > 65535) {
    return absl::InvalidArgumentError("a port in the config is above 65535");
  }
  transport::EndpointOptions eo;
  eo.local_addresses.assign(config.local_addresses().begin(), config.local_addresses().end());
  eo.port = static_cast<uint16_t>(config.sctp_port());
  eo.udp_encaps_port = static_cast<uint16_t>(config.udp_encaps_port());
  eo.remote_udp_encaps_port = static_cast<uint16_t>(config.remote_udp_encaps_port());
  eo.listen = config.role() == v1::ROLE_VEHICLE;
  eo.profile = config.has_failover() ? config.failover() : transport::FastFailoverProfile();
  Endpoints out;
  SMIG_ASSIGN_OR_RETURN(out.main, transport::CreateEndpoint(stack, eo));
  if (config.role() == v1::ROLE_EDGE && config.probe_port() != 0) {
    if (config.probe_port() > 65535) return absl::InvalidArgumentError("probe_port is above 65535");
    transport::EndpointOptions po = eo;
    po.port = static_cast<uint16_t>(config.probe_port());
    po.listen = true;
    SMIG_ASSIGN_OR_RETURN(out.probe, transport::CreateEndpoint(stack, po));
  }
  return out;
}

// Runs until SIGTERM/SIGINT; an error if the data plane cannot start.
absl::Status Run() {
  SMIG_ASSIGN_OR_RETURN(v1::DataplaneConfig config, smig::LoadServerConfig<v1::DataplaneConfig>());
  if (std::string r = absl::GetFlag(FLAGS_role); !r.empty()) {
    const dp::RoleEntry* named = dp::FindRoleNamed(r);
    if (named == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--role=", r, ": use ", dp::RoleNameList()));
    }
    config.set_role(named->id);
  }
  if (!absl::GetFlag(FLAGS_sctp_stack).empty()) config.set_sctp_stack(absl::GetFlag(FLAGS_sctp_stack));
  SMIG_ASSIGN_OR_RETURN(
      transport::StackChoice stack,
      transport::ParseStackChoice(config.sctp_stack().empty() ? "auto" : config.sctp_stack()));
  SMIG_ASSIGN_OR_RETURN(std::string key, ReadKey(config.deployment_key_file()));
  SMIG_ASSIGN_OR_RETURN(Endpoints endpoints, OpenEndpoints(config, stack));

  auto registry = std::make_shared<prometheus::Registry>();
  dp::DataplaneNode::Deps deps;
  deps.config = config;
  deps.endpoint = std::move(endpoints.main);
  deps.probe_endpoint = std::move(endpoints.probe);
  deps.deployment_key = key;
  deps.registry = registry;
  deps.make_source = [](const v1::FlowState& f, absl::Time now) {
    absl::Time anchor = f.has_checkpoint_due_at() ? smig::FromProto(f.checkpoint_due_at()) : now;
    return dp::media::MakeSource(f.source(), f.source_offset(), anchor);
  };
  deps.make_sink = [](const v1::Sink& s) { return dp::media::MakeSink(s); };
  SMIG_ASSIGN_OR_RETURN(std::unique_ptr<dp::DataplaneNode> node,
                        dp::DataplaneNode::Start(std::move(deps)));

  std::unique_ptr<dp::ProximityReporter> reporter;
  if (config.role() == v1::ROLE_VEHICLE && !config.proximity().pmm_address().empty()) {
    if (config.proximity().vehicle_id().empty()) {
      return absl::InvalidArgumentError("proximity reporting needs proximity.vehicle_id");
    }
    reporter = std::make_unique<dp::ProximityReporter>(*node, config.proximity());
  }
  dp::AgentService agent(*node);
  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&agent}, registry));
  std::cout << "{\"role\":\"" << dp::FindRole(config.role())->name
            << "\",\"grpc_port\":" << server->grpc_port()
            << ",\"metrics_port\":" << server->metrics_port() << "}" << std::endl;

  int sig = smig::WaitForTerminationSignal();
  std::cerr << "smig-dataplane: signal " << sig << ": releasing sessions\n";
  server->SetServing("", false);
  reporter.reset();
  node->Stop(absl::GetFlag(FLAGS_shutdown_grace));
  server->Shutdown(absl::Seconds(1));
  return absl::OkStatus();
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
  if (absl::Status s = Run(); !s.ok()) return Fail(s);
  return 0;
}
