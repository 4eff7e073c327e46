// smig-bench-decision: MDM decisions per second. One Decide over 3, 10 and 50 candidate
// servers, as Evaluate takes it (every decision kept in the history) and as the background
// loop takes it (only changes kept). Google Benchmark; items_per_second = decisions/s.
//
//   smig-bench-decision --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <iostream>
#include <string_view>

#include "common/flags.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/decision/decision_engine.h"

namespace {

using smig::decision::DecideOptions;
using smig::decision::DecisionEngine;

// `n` servers with room, bandwidth and load; the current one (edge-0) is the best, so
// every decision compares them all and the outcome is STAY.
smig::proximity::v1::VehicleProximity Servers(int n) {
  smig::proximity::v1::VehicleProximity p;
  p.set_vehicle_id("car-1");
  for (int i = 0; i < n; ++i) {
    auto* s = p.add_servers();
    s->set_server_id(absl::StrCat("edge-", i));
    s->set_reachable(true);
    s->set_srtt_ms(5 + i);
    s->set_bandwidth_bps(20e6 - i * 1e5);
    s->set_sessions(i % 7);
    s->set_capacity(100);
  }
  return p;
}

void Run(benchmark::State& state, DecideOptions options) {
  DecisionEngine engine;
  const smig::proximity::v1::VehicleProximity p = Servers(static_cast<int>(state.range(0)));
  absl::Time now = absl::Now();
  uint64_t session = 0;
  for (auto _ : state) {
    now += absl::Milliseconds(1);
    auto d = engine.Decide(session++ % 1000 + 1, "car-1", "edge-0", p, now, options);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DecideRecorded(benchmark::State& state) { Run(state, {}); }
void BM_DecideLoop(benchmark::State& state) { Run(state, {.record_only_changes = true}); }

BENCHMARK(BM_DecideRecorded)->Arg(3)->Arg(10)->Arg(50);
BENCHMARK(BM_DecideLoop)->Arg(3)->Arg(10)->Arg(50);

}  // namespace

// Google Benchmark's own command line (--help lists its flags), plus --version like every
// smig binary.
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--version") {
      std::cout << "smig-bench-decision " << smig::Version() << "\n";
      return 0;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
