#include "bench/dataplane_sessions_fleet.h"

#include "dataplane/protocol/hello.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/netns.h"
#include "common/status_macros.h"
#include "dataplane/protocol/hello.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace smig::bench::sessions {
namespace {

namespace v1 = dataplane::v1;
using testbed::Process;

// A call's status as an absl::Status, its message led by the call's name.
absl::Status RpcStatus(const grpc::Status& s, const std::string& call) {
  absl::Status st = FromGrpcStatus(s);
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat(call, ": ", st.message()));
}

absl::StatusOr<Daemon> StartDaemon(const std::vector<std::string>& argv, const std::string& ns,
                                   const std::string& dir, const std::string& name) {
  Daemon d;
  d.ns = ns;
  const std::string log = dir + "/" + name + ".log";
  SMIG_ASSIGN_OR_RETURN(d.process, Process::Start(argv, log));
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  for (;;) {
    std::string out = Slurp(log);
    if (size_t nl = out.find('\n'); nl != std::string::npos) {
      google::protobuf::Struct s;
      if (!google::protobuf::util::JsonStringToMessage(out.substr(0, nl), &s).ok() ||
          !s.fields().contains("metrics_port")) {
        return absl::InternalError(absl::StrCat(name, " printed ", out));
      }
      d.metrics_port = static_cast<int>(s.fields().at("metrics_port").number_value());
      break;
    }
    if (absl::Now() > deadline || g_stop.load()) {
      return absl::DeadlineExceededError(
          absl::StrCat(name, " did not start: ", Slurp(log + ".err")));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  d.stub = v1::DataplaneAgent::NewStub(grpc::CreateChannel(
      absl::StrCat("unix:", dir, "/", name, ".sock"), grpc::InsecureChannelCredentials()));
  return d;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

std::vector<std::string> InNs(const std::string& ns, int cpu, const std::string& config) {
  return {"ip", "netns", "exec", ns, "taskset", "-c", std::to_string(cpu), SMIG_DATAPLANE,
          "--config=" + config};
}

// Starts the vehicle of slot k (its own namespace, the vehicles' core).
absl::Status StartVehicle(Setup& s, size_t k) {
  SMIG_ASSIGN_OR_RETURN(const std::string ns, s.fleet->Slot(k));
  const std::string name = absl::StrCat("vehicle", k);
  SMIG_RETURN_IF_ERROR(WriteFile(
      absl::StrCat(s.dir, "/", name, ".json"),
      absl::StrCat(R"({"role":"ROLE_VEHICLE","local_addresses":[")", Fleet::Address(k),
                   R"("],"sctp_port":)", kVehicleSctpPort, R"(,"sctp_stack":")", s.opt.sctp_stack,
                   R"(","grpc_address":"unix:)", s.dir, "/", name,
                   R"(.sock","metrics_address":"off","sinks":{"0":{"udp":"10.78.0.1:)",
                   kReceiverPort, R"("}}})")));
  SMIG_ASSIGN_OR_RETURN(
      Daemon d,
      StartDaemon(InNs(ns, s.opt.other_cpu, absl::StrCat(s.dir, "/", name, ".json")), ns, s.dir,
                  name));
  if (s.vehicles.size() <= k) s.vehicles.resize(k + 1);
  s.vehicles[k].daemon = std::move(d);
  return absl::OkStatus();
}

}  // namespace

std::string Daemon::Metrics() const {
  std::string text;
  (void)RunInNetns(ns, [&] {
    text = testbed::HttpGet(metrics_port, "/metrics");
    return absl::OkStatus();
  });
  return text;
}

void StopDaemon(Daemon& d) {
  if (!d.process) return;
  d.process->Kill(SIGTERM);
  (void)d.process->Wait(absl::Seconds(8));  // SIGKILL after that
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Create() {
  std::unique_ptr<Fleet> f(new Fleet(absl::StrCat("smigb", getpid())));
  f->edge_ns_ = f->tag_ + "e";
  const std::string& e = f->edge_ns_;
  SMIG_RETURN_IF_ERROR(f->AddNs(e));
  SMIG_RETURN_IF_ERROR(testbed::Sh(absl::StrCat("ip -n ", e, " link add vbr type bridge && ip -n ",
                                                e, " addr add 10.78.0.1/16 dev vbr && ip -n ", e,
                                                " link set vbr up"))
                           .status());
  return f;
}

Fleet::~Fleet() {
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    (void)testbed::Sh("ip netns del " + *it);
  }
}

absl::StatusOr<std::string> Fleet::Slot(size_t k) {
  const std::string ns = absl::StrCat(tag_, "v", k);
  if (std::find(namespaces_.begin(), namespaces_.end(), ns) != namespaces_.end()) return ns;
  SMIG_RETURN_IF_ERROR(AddNs(ns));
  const std::string port = absl::StrCat("vb", k);
  SMIG_RETURN_IF_ERROR(
      testbed::Sh(absl::StrCat("ip link add eth0 netns ", ns, " type veth peer name ", port,
                               " netns ", edge_ns_, " && ip -n ", edge_ns_, " link set ", port,
                               " master vbr up && ip -n ", ns, " addr add ", Address(k),
                               "/16 dev eth0 && ip -n ", ns, " link set eth0 up"))
          .status());
  return ns;
}

std::string Fleet::Address(size_t k) {
  return absl::StrCat("10.78.", 1 + k / 200, ".", 2 + k % 200);
}

absl::Status Fleet::AddNs(const std::string& ns) {
  SMIG_RETURN_IF_ERROR(testbed::Sh(absl::StrCat("ip netns add ", ns)).status());
  namespaces_.push_back(ns);
  return testbed::Sh(absl::StrCat("ip -n ", ns, " link set lo up")).status();
}

Setup::~Setup() {
  relay.reset();
  receiver.reset();
  // SIGTERM to everyone first, so the daemons shut down side by side.
  if (edge.process) edge.process->Kill(SIGTERM);
  for (Vehicle& v : vehicles) {
    if (v.daemon.process) v.daemon.process->Kill(SIGTERM);
  }
  StopDaemon(edge);
  for (Vehicle& v : vehicles) StopDaemon(v.daemon);
  edge.process.reset();
  vehicles.clear();
  fleet.reset();  // deletes the namespaces
}

absl::StatusOr<std::unique_ptr<Setup>> Build(const Options& options) {
  auto s = std::make_unique<Setup>();
  s->opt = options;
  SMIG_ASSIGN_OR_RETURN(s->fleet, Fleet::Create());
  s->dir = testbed::ScratchDir() + "/sessions";
  std::filesystem::create_directories(s->dir);
  // max_sessions: far above what the ramp reaches, so the edge's own cap never decides.
  SMIG_RETURN_IF_ERROR(WriteFile(
      s->dir + "/edge.json",
      absl::StrCat(R"({"role":"ROLE_EDGE","server_id":"edge-bench","local_addresses":["10.78.0.1"],)",
                   R"("sctp_stack":")", options.sctp_stack, R"(",)",
                   R"("max_sessions":60000,"grpc_address":"unix:)", s->dir,
                   R"(/edge.sock","metrics_address":"127.0.0.1:0"})")));
  const std::string ns = s->fleet->edge_ns();
  SMIG_ASSIGN_OR_RETURN(
      s->edge, StartDaemon(InNs(ns, options.edge_cpu, s->dir + "/edge.json"), ns, s->dir, "edge"));
  // `ip netns exec` and taskset exec (no fork), so the pid is the daemon's.
  const std::string comm = Slurp(absl::StrCat("/proc/", s->edge.process->pid(), "/comm"));
  if (comm.rfind("smig-dataplane", 0) != 0) {
    return absl::InternalError(absl::StrCat("pid ", s->edge.process->pid(), " is \"", comm,
                                            "\", not smig-dataplane"));
  }
  SMIG_ASSIGN_OR_RETURN(s->receiver, Receiver::Start(ns, options.other_cpu));
  SMIG_ASSIGN_OR_RETURN(const std::string relay_ns, s->fleet->Slot(kRelaySlot));
  SMIG_ASSIGN_OR_RETURN(s->relay, Relay::Start(relay_ns, Fleet::Address(kRelaySlot),
                                               Ipv4("10.78.0.1", kReceiverPort), options.edge_cpu));
  SMIG_ASSIGN_OR_RETURN(s->gen, UdpSocket(ns, "", 0, 0));
  return s;
}

absl::Status SetSessions(Setup& s, size_t n) {
  while (s.open.size() > n) {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(s.open.back());
    v1::ReleaseSessionResponse resp;
    // A failed release is a finding, not the end of the run: reported, and the session is
    // no longer counted (the edge may still hold it).
    if (auto st = RpcStatus(s.edge.stub->ReleaseSession(&ctx, req, &resp), "ReleaseSession");
        !st.ok()) {
      std::cout << absl::StrCat(R"({"bench":"sessions_release_error","session":)", s.open.back(),
                                R"(,"error":")", absl::StrReplaceAll(st.ToString(), {{"\"", "'"}}),
                                R"("})")
                << std::endl;
    }
    s.open.pop_back();
  }
  while (s.open.size() < n) {
    const size_t k = s.open.size();
    if (k < s.vehicles.size() && s.vehicles[k].daemon.process) {
      // A released session's vehicle: wait for the graceful shutdown, then restart it.
      StopDaemon(s.vehicles[k].daemon);
      s.vehicles[k].daemon.process.reset();
    }
    SMIG_RETURN_IF_ERROR(StartVehicle(s, k));
    const uint64_t id = s.next_id++;
    if (kIngestBase + id > 65535) return absl::OutOfRangeError("out of UDP ports for sessions");
    v1::OpenSessionRequest req;
    req.set_session_id(id);
    req.set_session_key(dataplane::MintSessionKey());
    {  // the vehicle first: it accepts the session's edge only with its key
      v1::OpenSessionRequest admit;
      admit.set_session_id(id);
      admit.set_session_key(req.session_key());
      grpc::ClientContext ctx;
      v1::Session out;
      SMIG_RETURN_IF_ERROR(
          RpcStatus(s.vehicles[k].daemon.stub->OpenSession(&ctx, admit, &out), "OpenSession"));
    }
    req.add_vehicle_addresses(Fleet::Address(k));
    req.set_vehicle_port(kVehicleSctpPort);
    v1::FlowState* f = req.add_flows();
    f->set_flow_id(0);
    f->mutable_source()->set_udp_listen(absl::StrCat("127.0.0.1:", kIngestBase + id));
    f->set_bitrate_bps(static_cast<uint32_t>(s.opt.bitrate));
    grpc::ClientContext ctx;
    v1::Session out;
    SMIG_RETURN_IF_ERROR(RpcStatus(s.edge.stub->OpenSession(&ctx, req, &out), "OpenSession"));
    s.open.push_back(id);
    s.vehicles[k].session = id;
    if (g_stop.load()) return Stopped();
  }
  // Vehicles beyond n: stopped once their session is gone.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    grpc::ClientContext ctx;
    v1::ListSessionsResponse list;
    SMIG_RETURN_IF_ERROR(
        RpcStatus(s.edge.stub->ListSessions(&ctx, v1::ListSessionsRequest(), &list), "ListSessions"));
    size_t serving = 0;
    for (const v1::Session& x : list.sessions()) serving += x.phase() == v1::SESSION_PHASE_SERVING;
    if (serving >= n && static_cast<size_t>(list.sessions_size()) >= n) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "after 60 s the edge serves ", serving, " of ", n, " sessions (", list.sessions_size(),
          " listed)"));
    }
    if (!Sleep(absl::Milliseconds(100))) return Stopped();
  }
  for (size_t k = n; k < s.vehicles.size(); ++k) {
    if (s.vehicles[k].daemon.process) {
      StopDaemon(s.vehicles[k].daemon);
      s.vehicles[k].daemon.process.reset();
    }
  }
  return absl::OkStatus();
}

}  // namespace smig::bench::sessions
