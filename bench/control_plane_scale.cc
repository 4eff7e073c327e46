// smig-bench-control-plane: the PMM's report handling and the MDM's automatic loop at fleet
// scale, in one process pinned to one core. --vehicles cars (10,000) drive along a road of
// --edges edge servers (20, every one a candidate of every car) and each reports all of
// them every --period (100 ms) into the PMM's ProximityEngine; a watcher of every vehicle
// feeds the MDM's real AutoMigrator (automatic mode, tick = --period, one session per car
// listed by an in-process SMM that moves a session when asked), so every car is decided
// again every tick. The RTT to an edge grows with the distance, so cars change their
// nearest edge as they drive and migrations happen.
//
// One JSON line per second and a summary: reports and decisions per second against what
// the fleet asks for (vehicles / period), the PMM's CPU per round (the reporting thread's
// own CPU time: the engine's Report for every vehicle) and the longest round in wall time,
// the process's CPU in cores (at most 1: pinned), watch drops, migrations. It holds when
// every measured second carried >= 95 % of the reports and of the decisions the fleet asks
// for, and the watch dropped nothing; rounds that started late are counted (late_rounds:
// the PMM's Sweep of every vehicle each second shares the core), not judged. gRPC is not in the loop: this
// measures the logic the services run, not the transport.
//
//   smig-bench-control-plane --vehicles=10000 --edges=20 --period=100ms --seconds=20
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "services/decision/auto_migrator.h"
#include "services/proximity/proximity_engine.h"

ABSL_FLAG(int, vehicles, 10000, "Vehicles, one session each");
ABSL_FLAG(int, edges, 20, "Edge servers, every one a candidate of every vehicle");
ABSL_FLAG(absl::Duration, period, absl::Milliseconds(100),
          "Each vehicle reports, and the MDM decides every vehicle, this often");
ABSL_FLAG(int, seconds, 20, "Measured seconds (after --warmup)");
ABSL_FLAG(int, warmup, 3, "Seconds before measuring");
ABSL_FLAG(int, cpu, 1, "The core to pin the whole process to (-1: no pinning)");

namespace {

namespace mv1 = smig::migrator::v1;
namespace pv1 = smig::proximity::v1;
using smig::decision::AutoMigrator;
using smig::decision::ControlPlaneClients;
using smig::decision::DecisionEngine;
using smig::proximity::ProximityEngine;
using smig::proximity::ProximityWatch;

constexpr double kEdgeSpacingM = 500;

// The SMM and the PMM as the MDM sees them, in process: sessions in memory, Migrate moves
// one at once, proximity straight from the engine's watch.
class LocalClients final : public ControlPlaneClients {
 public:
  // Session i+1 of car-i starts on the edge nearest to it.
  LocalClients(ProximityEngine& pmm, const std::vector<double>& x) : pmm_(pmm) {
    for (size_t i = 0; i < x.size(); ++i) {
      mv1::Session& s = sessions_.emplace_back();
      s.set_session_id(i + 1);
      s.set_vehicle_id(absl::StrCat("car-", i));
      s.set_server_id(absl::StrCat("edge-", static_cast<int>(x[i] / kEdgeSpacingM)));
    }
    watch_ = pmm_.Watch("");
  }
  absl::StatusOr<std::vector<mv1::Session>> ListSessions() override {
    absl::MutexLock lock(&mu_);
    return sessions_;
  }
  absl::StatusOr<pv1::VehicleProximity> GetProximity(const std::string& v) override {
    return pmm_.Get(v);
  }
  absl::StatusOr<std::string> Migrate(uint64_t session_id, const std::string& target,
                                      const std::string&, const std::string&) override {
    absl::MutexLock lock(&mu_);
    sessions_.at(session_id - 1).set_server_id(target);
    return absl::StrCat("m-", ++migrations_);
  }
  absl::Status WatchProximity(
      const std::function<void(const pv1::VehicleProximity&)>& on_update) override {
    while (!cancelled_) {
      if (std::optional<pv1::VehicleProximity> p = watch_->Pop(absl::Milliseconds(50))) {
        on_update(*p);
      }
    }
    return absl::CancelledError("cancelled");
  }
  void CancelWatch() override { cancelled_ = true; }
  uint64_t migrations() {
    absl::MutexLock lock(&mu_);
    return migrations_;
  }
  uint64_t watch_drops() { return watch_->dropped(); }

 private:
  ProximityEngine& pmm_;
  std::shared_ptr<ProximityWatch> watch_;
  std::atomic<bool> cancelled_ = false;
  absl::Mutex mu_;
  std::vector<mv1::Session> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t migrations_ ABSL_GUARDED_BY(mu_) = 0;
};

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "The PMM's report handling and the MDM's loop for a fleet, on one core.");
  const int n = absl::GetFlag(FLAGS_vehicles);
  const int edges = absl::GetFlag(FLAGS_edges);
  const absl::Duration period = absl::GetFlag(FLAGS_period);
  if (n <= 0 || edges <= 0 || period <= absl::ZeroDuration()) {
    std::cerr << "smig-bench-control-plane: --vehicles, --edges and --period must be > 0\n";
    return 2;
  }
  if (const int cpu = absl::GetFlag(FLAGS_cpu); cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::cerr << "smig-bench-control-plane: cannot pin to core " << cpu << "\n";
      return 1;
    }
  }

  std::vector<pv1::Server> servers;
  for (int j = 0; j < edges; ++j) {
    pv1::Server& s = servers.emplace_back();
    s.set_id(absl::StrCat("edge-", j));
    s.set_agent_address(absl::StrCat("10.0.", j / 250, ".", j % 250 + 1, ":7400"));
    s.set_capacity(2 * n / edges + 10);
  }
  auto pmm = ProximityEngine::Create({.static_servers = servers,
                                      .watch_queue_limit = static_cast<size_t>(n)});
  if (!pmm.ok()) return smig::Fail(pmm.status());
  // Cars on a road past the edges, each at its own speed (10-30 m/s), both ways.
  std::mt19937 rng(1);
  const double road = kEdgeSpacingM * edges;
  std::vector<double> x(n), v(n);
  for (int i = 0; i < n; ++i) {
    x[i] = std::uniform_real_distribution<double>(0, road - 1)(rng);
    v[i] = std::uniform_real_distribution<double>(10, 30)(rng) * (i % 2 ? 1 : -1);
  }
  LocalClients clients(**pmm, x);
  DecisionEngine mdm;
  smig::decision::v1::Policy policy = smig::decision::DefaultPolicy();
  policy.set_mode(smig::decision::v1::MODE_AUTOMATIC);
  if (absl::Status s = mdm.UpdatePolicy(policy).status(); !s.ok()) return smig::Fail(s);
  AutoMigrator loop(mdm, clients, {.tick = period});
  loop.Start();
  std::vector<pv1::ProximityReport> reports(n);
  for (int i = 0; i < n; ++i) {
    reports[i].set_vehicle_id(absl::StrCat("car-", i));
    for (int j = 0; j < edges; ++j) {
      pv1::Measurement* m = reports[i].add_measurements();
      m->set_server_id(absl::StrCat("edge-", j));
      m->set_reachable(true);
      m->set_bandwidth_bps(20e6);
    }
  }

  const int warmup = absl::GetFlag(FLAGS_warmup), seconds = absl::GetFlag(FLAGS_seconds);
  const double want_per_s = n / absl::ToDoubleSeconds(period);
  absl::Time next = absl::Now();
  absl::Time second_start = next, measure_start;
  double cpu_at_second = CpuSeconds(), cpu_at_start = 0;
  uint64_t decided_at_second = 0, reports_in_second = 0, decided_at_start = 0;
  uint64_t reports_total = 0, late_rounds = 0, rounds = 0, migrations_at_start = 0;
  absl::Duration pmm_time, pmm_max;
  double worst_decisions = 1e18, worst_reports = 1e18;
  for (int s = 0; s < warmup + seconds;) {
    const absl::Time round_start = absl::Now();
    const double round_cpu = ThreadCpuSeconds();
    for (int i = 0; i < n; ++i) {
      x[i] += v[i] * absl::ToDoubleSeconds(period);
      if (x[i] < 0 || x[i] > road) v[i] = -v[i];
      for (int j = 0; j < edges; ++j) {
        const double d = std::abs(x[i] - (j + 0.5) * kEdgeSpacingM);
        reports[i].mutable_measurements(j)->set_srtt_ms(4 + d / 100);  // 1 ms per 100 m
      }
      reports[i].set_serving_server_id(absl::StrCat("edge-", i % edges));
      if (absl::Status st = (*pmm)->Report(reports[i]); !st.ok()) return smig::Fail(st);
    }
    const absl::Duration took = absl::Now() - round_start;
    const absl::Duration cpu_took = absl::Seconds(ThreadCpuSeconds() - round_cpu);
    reports_in_second += n;
    if (s >= warmup) {
      pmm_time += cpu_took;
      pmm_max = std::max(pmm_max, took);
      ++rounds;
      reports_total += n;
    }
    next += period;
    if (absl::Now() > next) {
      if (s >= warmup) ++late_rounds;
      next = absl::Now();  // behind: go on at once, without a burst to catch up
    }
    absl::SleepFor(next - absl::Now());
    if (absl::Now() - second_start >= absl::Seconds(1)) {
      (*pmm)->Sweep();  // as the PMM's main does every second
      const absl::Time now = absl::Now();
      const double dt = absl::ToDoubleSeconds(now - second_start);
      const double cpu = CpuSeconds();
      const double decisions = (loop.decided() - decided_at_second) / dt;
      std::cout << absl::StrFormat(
                       "{\"second\":%d,\"phase\":\"%s\",\"reports_per_s\":%.0f,"
                       "\"decisions_per_s\":%.0f,\"wanted_per_s\":%.0f,\"cores\":%.3f,"
                       "\"passes\":%d,\"migrations\":%d,\"watch_drops\":%d}",
                       s, s < warmup ? "warmup" : "measured", reports_in_second / dt,
                       decisions, want_per_s, (cpu - cpu_at_second) / dt, loop.passes(),
                       clients.migrations(), clients.watch_drops())
                << std::endl;
      if (s >= warmup) {
        worst_decisions = std::min(worst_decisions, decisions);
        worst_reports = std::min(worst_reports, reports_in_second / dt);
      }
      ++s;
      if (s == warmup) {
        measure_start = now;
        cpu_at_start = cpu;
        decided_at_start = loop.decided();
        migrations_at_start = clients.migrations();
      }
      second_start = now;
      cpu_at_second = cpu;
      decided_at_second = loop.decided();
      reports_in_second = 0;
    }
  }
  const double dt = absl::ToDoubleSeconds(absl::Now() - measure_start);
  const double cores = (CpuSeconds() - cpu_at_start) / dt;
  const double decisions = (loop.decided() - decided_at_start) / dt;
  loop.Stop();
  const bool holds = worst_reports >= 0.95 * want_per_s &&
                     worst_decisions >= 0.95 * want_per_s && clients.watch_drops() == 0;
  std::cout << absl::StrFormat(
                   "{\"summary\":true,\"vehicles\":%d,\"edges\":%d,\"period_ms\":%.0f,"
                   "\"seconds\":%.1f,\"reports_per_s\":%.0f,\"decisions_per_s\":%.0f,"
                   "\"worst_second_reports_per_s\":%.0f,\"worst_second_decisions_per_s\":%.0f,"
                   "\"wanted_per_s\":%.0f,"
                   "\"cores\":%.3f,\"pmm_cpu_ms_per_round\":%.1f,\"round_ms_max\":%.1f,"
                   "\"late_rounds\":%d,\"migrations\":%d,\"watch_drops\":%d,\"holds\":%s}",
                   n, edges, absl::ToDoubleMilliseconds(period), dt, reports_total / dt,
                   decisions, worst_reports, worst_decisions, want_per_s, cores,
                   rounds ? absl::ToDoubleMilliseconds(pmm_time) / rounds : 0.0,
                   absl::ToDoubleMilliseconds(pmm_max), late_rounds,
                   clients.migrations() - migrations_at_start, clients.watch_drops(),
                   holds ? "true" : "false")
            << std::endl;
  return 0;
}
