// One step of smig-bench-sessions: the edge serves N sessions that send for --window; what
// arrived and how late, what the processes cost (from /proc) and where datagrams were
// dropped, as one JSON line and one table row.
//
//   absl::StatusOr<StepResult> r = RunStep(setup, 40, step++);
//   std::cout << r->json << std::endl;
//   std::cerr << Row(*r) << std::endl;
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/dataplane_sessions_fleet.h"

namespace smig::bench::sessions {

struct Latency {
  double p50 = 0, p99 = 0, max = 0;  // ms
  size_t samples = 0;
};

std::string Json(const Latency& l);

struct StepResult {
  size_t sessions = 0;
  uint64_t sent = 0, received = 0, lost = 0, duplicates = 0, reordered = 0;
  size_t sessions_with_loss = 0;
  uint64_t relay_sent = 0, relay_lost = 0;
  double edge_cpu = 0, vehicle_cpu = 0, bench_cpu = 0;
  std::vector<double> core_busy;
  Latency smig, relay;
  std::string json;
};

absl::StatusOr<StepResult> RunStep(Setup& s, size_t n, uint16_t step);

// A table row for people, under RowHeading().
std::string Row(const StepResult& r);
std::string RowHeading();

}  // namespace smig::bench::sessions
