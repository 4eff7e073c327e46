// smigctl: the command line for smig's control plane (PMM, MDM, SMM). The parsing and
// rendering live in smigctl_lib; this file holds the flags, channels and RPCs. See --help.
//
//   smigctl servers
//   smigctl migrate 1 --to=edge-2 --watch
//   smigctl policy set --json='{"margin":0.3}' --mdm=10.0.0.5:7200
#include <unistd.h>

#include <deque>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/flags.h"
#include "common/grpc_client.h"
#include "common/grpc_status.h"
#include "common/replica_client.h"
#include "common/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "smig/decision/v1/decision.grpc.pb.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "tools/smigctl/command.h"
#include "tools/smigctl/render.h"

ABSL_FLAG(std::string, pmm, "", "PMM address (else $SMIG_PMM, else 127.0.0.1:7100)");
ABSL_FLAG(std::string, mdm, "",
          "MDM address (else $SMIG_MDM, else 127.0.0.1:7200); replicas: a,b (changes go to the "
          "leader)");
ABSL_FLAG(std::string, smm, "",
          "SMM address (else $SMIG_SMM, else 127.0.0.1:7300); replicas: a,b (changes go to the "
          "leader)");
ABSL_FLAG(std::string, output, "text", "text or json (protobuf JSON, one object per line)");
ABSL_FLAG(std::string, timeout, "5s", "Deadline of each call");
ABSL_FLAG(std::string, ca, "", "CA (PEM) to verify servers with; turns TLS on");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM) for mutual TLS");
ABSL_FLAG(std::string, key, "", "Client key (PEM) for mutual TLS");
ABSL_FLAG(std::string, server_name, "",
          "The name a server dialed by IP address must carry in its certificate");
ABSL_FLAG(std::string, session, "", "migrations, decisions: only this session");
ABSL_FLAG(std::string, limit, "", "decisions, sessions: at most this many");
ABSL_FLAG(std::string, vehicle, "", "sessions: only this vehicle's");
ABSL_FLAG(std::string, edge, "", "sessions: only those on (or moving to) this edge");
ABSL_FLAG(std::string, to, "", "migrate: the target edge id, or auto");
ABSL_FLAG(std::string, reason, "", "migrate, cancel: why (recorded by the SMM)");
ABSL_FLAG(std::string, request_id, "", "migrate: idempotency key");
ABSL_FLAG(bool, watch, false, "migrate: follow the migration until it ends");
ABSL_FLAG(std::string, json, "", "policy set: the policy as protobuf JSON");
ABSL_FLAG(std::string, file, "", "policy set: a file holding the policy as protobuf JSON");
ABSL_FLAG(std::string, redundancy, "",
          "session create: off, auto or always (two radio paths at once; default auto)");
ABSL_FLAG(std::string, vehicle_agent, "",
          "session create: the vehicle data plane's agent address, given the session's key");

namespace {

using namespace smig::smigctl;  // NOLINT: this file is the tool's only user of the library
namespace pmm = smig::proximity::v1;
namespace mdm = smig::decision::v1;
namespace smm = smig::migrator::v1;

int UsageError(const absl::Status& s) {
  std::cerr << "smigctl: " << s.message() << "\n\n" << Usage();
  return 2;
}

int Error(const absl::Status& s) {
  std::cerr << "smigctl: " << s.message() << "\n";
  return 2;
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--help" || a == "-help" || a == "-h") return true;
  }
  return false;
}

// abseil exits 1 on an unknown flag; smigctl promises 2 for every usage error.
absl::Status CheckKnownFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    name = name.substr(0, name.find('='));
    for (char& ch : name) ch = ch == '-' ? '_' : ch;
    if (name == "version") continue;  // smig::ParseFlags prints "smigctl <version>", exits 0
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    if (absl::StartsWith(name, "no") && absl::FindCommandLineFlag(name.substr(2)) != nullptr) {
      continue;  // --nowatch
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a.substr(0, a.find('='))));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFlagFile(const std::string& path, absl::string_view flag) {
  absl::StatusOr<std::string> text = smig::ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("--", flag, ": ", text.status().message()));
  }
  return text;
}

// The TLS flags, read as the services read their client_tls (common/grpc_client.h).
absl::StatusOr<smig::ClientCredentials> Credentials() {
  smig::common::v1::ClientTlsConfig tls;
  tls.set_ca_file(absl::GetFlag(FLAGS_ca));
  tls.set_cert_file(absl::GetFlag(FLAGS_cert));
  tls.set_key_file(absl::GetFlag(FLAGS_key));
  tls.set_server_name(absl::GetFlag(FLAGS_server_name));
  absl::StatusOr<smig::ClientCredentials> c = smig::ClientCredentials::FromConfig(tls);
  if (!c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat("--ca/--cert/--key/--server-name: ",
                                                        c.status().message()));
  }
  return c;
}

// Runs one command against the one service it needs.
class Ctl {
 public:
  Ctl(Command command, std::string service, std::string address,
      smig::ClientCredentials credentials)
      : c_(std::move(command)),
        service_(std::move(service)),
        address_(std::move(address)),
        credentials_(std::move(credentials)),
        replicas_(service_, smig::SplitAddresses(address_), credentials_) {}

  int Run() {
    const absl::Time now = absl::Now();
    switch (c_.verb) {
      case Verb::kServers: {
        pmm::ListServersResponse r;
        if (!Call("ListServers", &pmm::Proximity::Stub::ListServers, {}, r)) return 2;
        return Print(r, RenderServers(r, now));
      }
      case Verb::kProximity: {
        pmm::GetProximityRequest q;
        q.set_vehicle_id(c_.vehicle_id);
        pmm::VehicleProximity r;
        if (!Call("GetProximity", &pmm::Proximity::Stub::GetProximity, q, r)) return 2;
        return Print(r, RenderProximity(r));
      }
      case Verb::kSessions: {
        smm::ListSessionsRequest q;
        q.set_vehicle_id(c_.vehicle);
        q.set_server_id(c_.edge);
        q.set_limit(c_.limit);
        smm::ListSessionsResponse r;
        if (!Call("ListSessions", &smm::Migrator::Stub::ListSessions, q, r)) return 2;
        return Print(r, RenderSessions(r));
      }
      case Verb::kMigrations: {
        smm::ListMigrationsRequest q;
        q.set_session_id(c_.session_id);
        smm::ListMigrationsResponse r;
        if (!Call("ListMigrations", &smm::Migrator::Stub::ListMigrations, q, r)) return 2;
        return Print(r, RenderMigrations(r, now));
      }
      case Verb::kMigration: {
        smm::GetMigrationRequest q;
        q.set_migration_id(c_.migration_id);
        smm::Migration r;
        if (!Call("GetMigration", &smm::Migrator::Stub::GetMigration, q, r)) return 2;
        return Print(r, RenderMigration(r, now));
      }
      case Verb::kMigrate: {
        smm::Migration r;
        if (!Call("Migrate", &smm::Migrator::Stub::Migrate, BuildMigrateRequest(c_), r)) {
          return 2;
        }
        if (c_.watch) return Watch(r.id(), &r);
        return Print(r, ProgressLine(r, now) + "\n");
      }
      case Verb::kWatch:
        return Watch(c_.migration_id, nullptr);
      case Verb::kCancel: {
        smm::CancelMigrationRequest q;
        q.set_migration_id(c_.migration_id);
        q.set_reason(c_.reason);
        smm::Migration r;
        if (!Call("CancelMigration", &smm::Migrator::Stub::CancelMigration, q, r)) {
          return 2;
        }
        return Print(r, RenderMigration(r, now));
      }
      case Verb::kDecisions: {
        mdm::ListDecisionsRequest q;
        q.set_session_id(c_.session_id);
        q.set_limit(c_.limit);
        mdm::ListDecisionsResponse r;
        if (!Call("ListDecisions", &mdm::Decision::Stub::ListDecisions, q, r)) return 2;
        return Print(r, RenderDecisions(r, now));
      }
      case Verb::kEvaluate: {
        mdm::EvaluateRequest q;
        q.set_session_id(c_.session_id);
        mdm::DecisionRecord r;
        if (!Call("Evaluate", &mdm::Decision::Stub::Evaluate, q, r)) return 2;
        return Print(r, RenderDecision(r));
      }
      case Verb::kPolicy: {
        mdm::Policy r;
        if (!Call("GetPolicy", &mdm::Decision::Stub::GetPolicy, {}, r)) return 2;
        return Print(r, RenderPolicy(r));
      }
      case Verb::kPolicySet: {
        absl::StatusOr<std::string> json = JsonArgument();
        if (!json.ok()) return Error(json.status());
        mdm::Policy current;
        if (!Call("GetPolicy", &mdm::Decision::Stub::GetPolicy, {}, current)) return 2;
        absl::StatusOr<mdm::Policy> policy =
            ParsePolicyJson(*json, c_.file.empty() ? "--json" : c_.file, current);
        if (!policy.ok()) return Error(policy.status());
        mdm::UpdatePolicyRequest q;
        *q.mutable_policy() = *policy;
        mdm::Policy r;
        if (!Call("UpdatePolicy", &mdm::Decision::Stub::UpdatePolicy, q, r)) return 2;
        return Print(r, RenderPolicy(r));
      }
      case Verb::kCreateSession: {
        absl::StatusOr<std::string> json = JsonArgument();
        if (!json.ok()) return Error(json.status());
        absl::StatusOr<smm::CreateSessionRequest> q =
            ParseCreateSessionJson(*json, c_.file.empty() ? "--json" : c_.file, c_.redundancy);
        if (!q.ok()) return Error(q.status());
        smm::Session r;
        if (!Call("CreateSession", &smm::Migrator::Stub::CreateSession, *q, r)) return 2;
        if (!c_.vehicle_agent.empty()) {
          if (absl::Status given = GiveKey(r); !given.ok()) {
            std::cerr << "smigctl: session " << r.session_id() << " is open at "
                      << r.server_id() << ", but its vehicle was not given its key: "
                      << given.message() << "\n";
            return 2;
          }
          r.clear_session_key();  // handed over: printed nowhere
        } else if (c_.output == Output::kText) {
          std::cerr << "smigctl: note: the vehicle accepts the session's edges only once it "
                       "has the session's key: give --vehicle-agent, or take session_key from "
                       "--output=json to its agent's OpenSession\n";
        }
        smm::ListSessionsResponse one;
        *one.add_sessions() = r;
        return Print(r, RenderSessions(one));
      }
      case Verb::kHealth: {
        grpc::health::v1::HealthCheckResponse r;
        if (!Call("Check", &grpc::health::v1::Health::Stub::Check, {}, r)) return 2;
        Print(r, absl::StrCat(grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.status()),
                              "\n"));
        return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
      }
      case Verb::kHelp:
        break;
    }
    return 2;
  }

 private:
  // --json as given, or the contents of --file.
  absl::StatusOr<std::string> JsonArgument() {
    if (c_.file.empty()) return c_.json;
    return ReadFlagFile(c_.file, "file");
  }

  // The vehicle's OpenSession with the session's id and key (its agent API).
  absl::Status GiveKey(const smm::Session& created) {
    smig::dataplane::v1::DataplaneAgent::Stub stub(credentials_.Channel(c_.vehicle_agent));
    smig::dataplane::v1::OpenSessionRequest q;
    q.set_session_id(created.session_id());
    q.set_session_key(created.session_key());
    smig::dataplane::v1::Session answer;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + c_.timeout));
    grpc::Status s = stub.OpenSession(&ctx, q, &answer);
    if (s.ok()) return absl::OkStatus();
    return absl::Status(smig::FromGrpcStatus(s).code(),
                        absl::StrCat("OpenSession at --vehicle-agent=", c_.vehicle_agent, ": ",
                                     s.error_message()));
  }

  // Changes go to the leader of a replicated service, reads to any replica that answers
  // (smig::ReplicaClient; with one address, one call as before).
  static bool Changes(absl::string_view method) {
    return method == "Migrate" || method == "CancelMigration" || method == "CreateSession" ||
           method == "UpdatePolicy";
  }

  template <typename Stub, typename Request, typename Response>
  bool Call(absl::string_view method,
            grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
            const Request& request, Response& response) {
    bool answered = false;
    auto attempt = [&](const std::shared_ptr<grpc::Channel>& ch, const std::string&) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + c_.timeout));
      Stub stub(ch);
      response.Clear();
      grpc::Status s = (stub.*rpc)(&ctx, request, &response);
      answered = !smig::AnsweredBy(ctx).empty();
      return s;
    };
    grpc::Status s = Changes(method) ? replicas_.CallLeader(attempt) : replicas_.CallAny(attempt);
    if (!s.ok()) Report(method, answered, s);
    return s.ok();
  }

  // `answered`: whether a server answered the failed call (its trailing metadata said so).
  void Report(absl::string_view method, bool answered, const grpc::Status& s) {
    const ErrorOrigin origin = answered ? ErrorOrigin::kServer : ErrorOrigin::kNoAnswer;
    std::cerr << FormatRpcError(method, service_, address_, smig::FromGrpcStatus(s), origin)
              << "\n";
  }

  int Print(const google::protobuf::Message& m, const std::string& text) {
    std::cout << (c_.output == Output::kJson ? ToJson(m) + "\n" : text) << std::flush;
    return 0;
  }

  // Follows a migration to its end. `started` is Migrate's answer, if there was one.
  // Output: JSON, one object per phase; on a TTY one line rewritten in place (ticking
  // even between phases, so the user sees it is alive); otherwise a line per phase.
  int Watch(const std::string& id, const smm::Migration* started) {
    const bool tty = c_.output == Output::kText && isatty(STDOUT_FILENO) == 1;
    smm::Migration last;
    bool have = false;
    auto emit = [&](const smm::Migration& m) {
      if (have && m.phase() == last.phase()) {
        last = m;
        return;
      }
      last = m;
      have = true;
      if (c_.output == Output::kJson) {
        std::cout << ToJson(m) << "\n" << std::flush;
      } else if (!tty) {
        std::cout << ProgressLine(m, absl::Now()) << "\n" << std::flush;
      }
    };
    auto redraw = [&] {
      if (tty && have) std::cout << "\r" << ProgressLine(last, absl::Now()) << "\x1b[K" << std::flush;
    };
    if (started != nullptr) emit(*started);

    if (!have || !IsFinished(last.phase())) {
      // No deadline: a migration lasts as long as its overlap takes. An unreachable
      // server still fails at once (the call does not wait for the channel to be ready).
      // Any replica answers a watch; one that goes away mid-stream hands over to another.
      grpc::Status status;
      bool answered = false;
      status = replicas_.CallAny([&](const std::shared_ptr<grpc::Channel>& ch,
                                     const std::string&) {
        grpc::ClientContext ctx;
        smm::WatchMigrationRequest q;
        q.set_migration_id(id);
        smm::Migrator::Stub stub(ch);
        std::unique_ptr<grpc::ClientReader<smm::Migration>> reader = stub.WatchMigration(&ctx, q);

        // Read on a thread so that a TTY's line can tick while the stream is quiet.
        absl::Mutex mu;
        std::deque<smm::Migration> queue;
        bool ended = false;
        bool wake = false;
        grpc::Status st;
        std::thread pump([&] {
          smm::Migration m;
          while (reader->Read(&m)) {
            absl::MutexLock l(&mu);
            queue.push_back(m);
            wake = true;
          }
          grpc::Status s = reader->Finish();
          absl::MutexLock l(&mu);
          st = s;
          ended = wake = true;
        });
        for (bool done = false; !done;) {
          std::deque<smm::Migration> batch;
          {
            absl::MutexLock l(&mu);
            mu.AwaitWithTimeout(absl::Condition(&wake),
                                tty ? absl::Milliseconds(100) : absl::InfiniteDuration());
            batch.swap(queue);
            wake = false;
            done = ended;
          }
          for (const smm::Migration& m : batch) emit(m);
          redraw();
        }
        pump.join();
        answered = !smig::AnsweredBy(ctx).empty();
        if (have && IsFinished(last.phase())) return grpc::Status::OK;
        return st;
      });
      if (tty && have) std::cout << "\n";
      if (!status.ok() && !(have && IsFinished(last.phase()))) {
        Report("WatchMigration", answered, status);
        return 2;
      }
    } else {
      redraw();
      if (tty) std::cout << "\n";
    }

    if (!have || !IsFinished(last.phase())) {
      std::cerr << "smigctl: WatchMigration: the stream ended before migration " << id
                << " did\n";
      return 2;
    }
    if (last.phase() == smm::PHASE_ROLLED_BACK) {
      std::cerr << "smigctl: migration " << last.id() << " rolled back: "
                << (last.rollback_reason().empty() ? "(no reason given)" : last.rollback_reason())
                << "\n";
    }
    return ExitCode(last);
  }

  Command c_;
  std::string service_;
  std::string address_;
  smig::ClientCredentials credentials_;
  smig::ReplicaClient replicas_;  // the command's service: one address, or its replicas
};

}  // namespace

int main(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::cout << Usage();
    return 0;
  }
  if (absl::Status s = CheckKnownFlags(argc, argv); !s.ok()) return UsageError(s);
  std::vector<char*> positional = smig::ParseFlags(argc, argv, Usage());

  FlagValues f;
  f.output = absl::GetFlag(FLAGS_output);
  f.timeout = absl::GetFlag(FLAGS_timeout);
  f.session = absl::GetFlag(FLAGS_session);
  f.limit = absl::GetFlag(FLAGS_limit);
  f.vehicle = absl::GetFlag(FLAGS_vehicle);
  f.edge = absl::GetFlag(FLAGS_edge);
  f.to = absl::GetFlag(FLAGS_to);
  f.reason = absl::GetFlag(FLAGS_reason);
  f.request_id = absl::GetFlag(FLAGS_request_id);
  f.watch = absl::GetFlag(FLAGS_watch);
  f.json = absl::GetFlag(FLAGS_json);
  f.file = absl::GetFlag(FLAGS_file);
  f.redundancy = absl::GetFlag(FLAGS_redundancy);
  f.vehicle_agent = absl::GetFlag(FLAGS_vehicle_agent);
  absl::StatusOr<Command> command =
      ParseCommand(std::vector<std::string>(positional.begin() + 1, positional.end()), f);
  if (!command.ok()) return UsageError(command.status());
  if (command->verb == Verb::kHelp) {
    std::cout << Usage();
    return 0;
  }

  std::string service, address;
  switch (ServiceOf(command->verb)) {
    case Service::kPmm:
      service = "PMM";
      address = ResolveAddress(absl::GetFlag(FLAGS_pmm), std::getenv("SMIG_PMM"), "127.0.0.1:7100");
      break;
    case Service::kMdm:
      service = "MDM";
      address = ResolveAddress(absl::GetFlag(FLAGS_mdm), std::getenv("SMIG_MDM"), "127.0.0.1:7200");
      break;
    case Service::kSmm:
      service = "SMM";
      address = ResolveAddress(absl::GetFlag(FLAGS_smm), std::getenv("SMIG_SMM"), "127.0.0.1:7300");
      break;
    case Service::kAny:
      service = "server";
      address = command->address;
      break;
    case Service::kNone:
      return 2;
  }
  absl::StatusOr<smig::ClientCredentials> creds = Credentials();
  if (!creds.ok()) return Error(creds.status());
  Ctl ctl(*std::move(command), service, address, *std::move(creds));
  return ctl.Run();
}
