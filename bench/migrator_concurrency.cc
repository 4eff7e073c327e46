// smig-bench-migrations: N concurrent migrations through the SMM's gRPC API (a real
// MigratorService on a GrpcServer) against fake data-plane agents whose vehicle confirms
// the target after --confirm-after. Reports each migration's time from Migrate to DONE
// (p50/p99/max, as the SMM records it) and the throughput, as JSON lines.
//
//   smig-bench-migrations --migrations=200 --confirm-after=20ms --client-threads=8
#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "services/migrator/migrator_service.h"
#include "tests/fakes/fake_agents.h"

ABSL_FLAG(int, migrations, 200, "Concurrent migrations (one session each)");
ABSL_FLAG(absl::Duration, confirm_after, absl::Milliseconds(20),
          "How long each fake vehicle takes to confirm the target's stream");
ABSL_FLAG(int, client_threads, 8, "Threads calling Migrate");
ABSL_FLAG(int, rounds, 3, "Rounds (each migrates every session once more)");

namespace {
namespace v1 = smig::migrator::v1;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(v.size() * p / 100))];
}
}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv, "N concurrent migrations through the SMM (fake agents).");
  const int n = absl::GetFlag(FLAGS_migrations);
  smig::migrator::testing::FakeCluster cluster;
  cluster.Add("edge-1").set_confirm_after(absl::GetFlag(FLAGS_confirm_after));
  cluster.Add("edge-2").set_confirm_after(absl::GetFlag(FLAGS_confirm_after));
  auto registry = std::make_shared<prometheus::Registry>();
  smig::migrator::MigratorEngine engine(cluster, nullptr, {}, registry.get());
  smig::migrator::MigratorService service(engine);
  absl::StatusOr<std::unique_ptr<smig::GrpcServer>> server =
      smig::GrpcServer::Start({.metrics_address = ""}, {&service}, registry);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 2;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Migrator::NewStub(channel);
  for (int s = 1; s <= n; ++s) {
    grpc::ClientContext ctx;
    v1::CreateSessionRequest req;
    req.set_session_id(s);
    req.set_vehicle_id(absl::StrCat("car-", s));
    req.set_server_id("edge-1");
    req.add_flows();
    v1::Session out;
    if (!stub->CreateSession(&ctx, req, &out).ok()) return 2;
  }
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    const std::string to = round % 2 == 0 ? "edge-2" : "edge-1";
    std::vector<std::string> ids(n);
    absl::Time start = absl::Now();
    std::vector<std::thread> clients;
    const int threads = absl::GetFlag(FLAGS_client_threads);
    for (int t = 0; t < threads; ++t) {
      clients.emplace_back([&, t] {
        auto my = v1::Migrator::NewStub(channel);
        for (int s = 1 + t; s <= n; s += threads) {
          grpc::ClientContext ctx;
          v1::MigrateRequest req;
          req.set_session_id(s);
          req.set_target_server_id(to);
          v1::Migration m;
          if (my->Migrate(&ctx, req, &m).ok()) ids[s - 1] = m.id();
        }
      });
    }
    for (auto& c : clients) c.join();
    absl::Duration all_started = absl::Now() - start;
    // Wait for every migration to end, then read the SMM's own durations.
    std::vector<double> ms;
    int done = 0, failed = 0;
    for (const std::string& id : ids) {
      if (id.empty()) {
        ++failed;
        continue;
      }
      v1::Migration m;
      for (absl::Time end = absl::Now() + absl::Seconds(60); absl::Now() < end;) {
        grpc::ClientContext ctx;
        v1::GetMigrationRequest req;
        req.set_migration_id(id);
        if (stub->GetMigration(&ctx, req, &m).ok() &&
            (m.phase() == v1::PHASE_DONE || m.phase() == v1::PHASE_ROLLED_BACK)) {
          break;
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
      if (m.phase() == v1::PHASE_DONE) {
        ++done;
        ms.push_back(absl::ToDoubleMilliseconds(smig::FromProto(m.duration())));
      } else {
        ++failed;
      }
    }
    absl::Duration elapsed = absl::Now() - start;
    std::cout << absl::StrFormat(
        "{\"round\":%d,\"migrations\":%d,\"done\":%d,\"failed\":%d,\"confirm_after_ms\":%.1f,"
        "\"started_all_ms\":%.1f,\"elapsed_ms\":%.1f,\"per_second\":%.1f,"
        "\"duration_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
        round, n, done, failed, absl::ToDoubleMilliseconds(absl::GetFlag(FLAGS_confirm_after)),
        absl::ToDoubleMilliseconds(all_started), absl::ToDoubleMilliseconds(elapsed),
        done / absl::ToDoubleSeconds(elapsed), Percentile(ms, 50), Percentile(ms, 99),
        Percentile(ms, 100));
  }
  return 0;
}
