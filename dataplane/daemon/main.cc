// smig-dataplane: the data plane of an edge server or a vehicle. It tunnels media flows
// over multi-homed SCTP and serves the agent API (gRPC, with health and reflection) and
// /metrics. See docs/architecture.md. What differs by role (whether the endpoint listens,
// extra endpoints, companions such as the PMM reporter) comes from the role's registry
// entry (role_registry.h).
#include <csignal>

#include <prometheus/registry.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/server_main.h"
#include "common/status_macros.h"
#include "dataplane/daemon/agent_service.h"
#include "dataplane/daemon/companion.h"
#include "dataplane/daemon/node.h"
#include "dataplane/daemon/role_registry.h"
#include "dataplane/media/sink.h"
#include "dataplane/media/source.h"

ABSL_FLAG(std::string, role, "", "Override the config's role: edge or vehicle");
ABSL_FLAG(std::string, sctp_stack, "", "Override the config's SCTP stack: auto, kernel or userland");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long sessions get to shut down gracefully");

namespace {

namespace v1 = smig::dataplane::v1;
namespace dp = smig::dataplane;
namespace transport = smig::transport;

// The options of the node's endpoint, but whether it listens (the role's).
absl::StatusOr<transport::EndpointOptions> NodeEndpointOptions(const v1::DataplaneConfig& config) {
  if (config.sctp_port() > 65535 || config.udp_encaps_port() > 65535 ||
      config.remote_udp_encaps_port() > 65535) {
    return absl::InvalidArgumentError("a port in the config is above 65535");
  }
  transport::EndpointOptions eo;
  eo.local_addresses.assign(config.local_addresses().begin(), config.local_addresses().end());
  eo.port = static_cast<uint16_t>(config.sctp_port());
  eo.udp_encaps_port = static_cast<uint16_t>(config.udp_encaps_port());
  eo.remote_udp_encaps_port = static_cast<uint16_t>(config.remote_udp_encaps_port());
  eo.profile = config.has_failover() ? config.failover() : transport::FastFailoverProfile();
  return eo;
}

// Serves until SIGTERM/SIGINT; an error if the data plane cannot start.
absl::Status Serve(const v1::DataplaneConfig& loaded) {
  v1::DataplaneConfig config = loaded;
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
  SMIG_ASSIGN_OR_RETURN(transport::EndpointOptions eo, NodeEndpointOptions(config));
  SMIG_ASSIGN_OR_RETURN(const dp::RoleEntry* role, dp::GetRole(config.role()));

  dp::DataplaneNode::Deps deps;
  const dp::EndpointOpener open = [stack](const transport::EndpointOptions& options) {
    return transport::CreateEndpoint(stack, options);
  };
  eo.listen = role->listens;
  SMIG_ASSIGN_OR_RETURN(deps.endpoint, open(eo));
  if (role->open_endpoints != nullptr) {
    SMIG_RETURN_IF_ERROR(role->open_endpoints(config, eo, open, deps));
  }
  auto registry = std::make_shared<prometheus::Registry>();
  deps.config = config;
  deps.registry = registry;
  deps.make_source = [](const v1::FlowState& f, absl::Time now) {
    absl::Time anchor = f.has_checkpoint_due_at() ? smig::FromProto(f.checkpoint_due_at()) : now;
    return dp::media::MakeSource(f.source(), f.source_offset(), anchor);
  };
  deps.make_sink = [](const v1::Sink& s) { return dp::media::MakeSink(s); };
  SMIG_ASSIGN_OR_RETURN(std::unique_ptr<dp::DataplaneNode> node,
                        dp::DataplaneNode::Start(std::move(deps)));

  std::unique_ptr<dp::Companion> companions;
  if (role->start_companions != nullptr) {
    SMIG_ASSIGN_OR_RETURN(companions, role->start_companions(config, *node));
  }
  dp::AgentService agent(*node);
  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&agent}, registry));
  // Health NOT_SERVING, the companions stopped, the sessions released, then the server.
  smig::ServeUntilTerminated(
      smig::ReadyLabel{"role", role->name}, *server,
      [&] {
        companions.reset();
        node->Stop(absl::GetFlag(FLAGS_shutdown_grace));
      },
      absl::Seconds(1));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // A peer or player that goes away must cost an error code, never the process.
  std::signal(SIGPIPE, SIG_IGN);
  return smig::ServerMain<v1::DataplaneConfig>(argc, argv,
                                               "the smig data plane (edge or vehicle).\n"
                                               "  smig-dataplane --config=edge.json\n"
                                               "Flag names take dashes or underscores.",
                                               Serve);
}
