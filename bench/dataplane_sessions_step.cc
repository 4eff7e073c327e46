#include "bench/dataplane_sessions_step.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "dataplane/transport/endpoint.h"

namespace smig::bench::sessions {
namespace {

namespace v1 = dataplane::v1;

// ---- /proc

// utime + stime of a process or thread, in clock ticks; and its name.
struct Ticks {
  uint64_t ticks = 0;
  std::string comm;
};
std::optional<Ticks> ReadStat(const std::string& path) {
  const std::string s = Slurp(path);
  const size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(s.substr(close + 2), ' ', absl::SkipEmpty());
  uint64_t u = 0, st = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &u) || !absl::SimpleAtoi(f[12], &st)) {
    return std::nullopt;
  }
  return Ticks{u + st, s.substr(open + 1, close - open - 1)};
}

struct CpuSnapshot {
  absl::Time at;
  uint64_t edge = 0, vehicle = 0, self = 0;
  std::map<std::string, uint64_t> edge_threads;  // by thread name (summed)
  std::vector<std::pair<uint64_t, uint64_t>> cores;  // (busy, total) per core
};

CpuSnapshot TakeCpu(pid_t edge, const std::vector<pid_t>& vehicles) {
  CpuSnapshot c;
  c.at = absl::Now();
  if (auto t = ReadStat(absl::StrCat("/proc/", edge, "/stat"))) c.edge = t->ticks;
  for (pid_t v : vehicles) {
    if (auto t = ReadStat(absl::StrCat("/proc/", v, "/stat"))) c.vehicle += t->ticks;
  }
  if (auto t = ReadStat("/proc/self/stat")) c.self = t->ticks;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", edge, "/task"), ec)) {
    if (auto t = ReadStat(e.path().string() + "/stat")) c.edge_threads[t->comm] += t->ticks;
  }
  std::istringstream stat(Slurp("/proc/stat"));
  for (std::string line; std::getline(stat, line);) {
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] == ' ') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t total = 0, idle = 0;
    for (size_t i = 1; i < f.size() && i <= 8; ++i) {
      uint64_t v = 0;
      (void)absl::SimpleAtoi(f[i], &v);
      total += v;
      if (i == 4 || i == 5) idle += v;  // idle, iowait
    }
    c.cores.emplace_back(total - idle, total);
  }
  return c;
}

// Per-socket receive drops (the last column of /proc/<pid>/net/udp, which shows the
// namespace of <pid>), by local port.
std::map<uint16_t, uint64_t> UdpDrops(pid_t in_ns) {
  std::map<uint16_t, uint64_t> out;
  std::istringstream in(Slurp(absl::StrCat("/proc/", in_ns, "/net/udp")));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 13) continue;
    const size_t colon = f[1].find(':');
    uint32_t port = 0;
    uint64_t drops = 0;
    if (colon == std::string::npos || !absl::SimpleHexAtoi(f[1].substr(colon + 1), &port) ||
        !absl::SimpleAtoi(f.back(), &drops)) {
      continue;
    }
    out[static_cast<uint16_t>(port)] += drops;
  }
  return out;
}

// The sum of a Prometheus metric's samples (every label set) in /metrics text.
double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) sum += v;
  }
  return sum;
}

Latency Percentiles(std::vector<int64_t> v) {
  Latency l;
  l.samples = v.size();
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]) / 1e6; };
  l.p50 = at(0.5);
  l.p99 = at(0.99);
  l.max = at(1.0);
  return l;
}

}  // namespace

std::string Json(const Latency& l) {
  return absl::StrFormat(R"({"p50":%.3f,"p99":%.3f,"max":%.3f,"samples":%d})", l.p50, l.p99,
                         l.max, l.samples);
}

absl::StatusOr<StepResult> RunStep(Setup& s, size_t n, uint16_t step) {
  SMIG_RETURN_IF_ERROR(SetSessions(s, n));
  if (!Sleep(absl::Milliseconds(500))) return Stopped();
  std::vector<Target> targets;
  for (uint64_t id : s.open) {
    targets.push_back({Ipv4("127.0.0.1", static_cast<uint16_t>(kIngestBase + id)), kPathSmig,
                       static_cast<uint32_t>(id)});
  }
  // The relay stream sits in the middle of the round, not next to one session's datagram.
  targets.insert(targets.begin() + static_cast<ptrdiff_t>(targets.size() / 2),
                 Target{Ipv4(Fleet::Address(kRelaySlot), kRelayPort), kPathRelay, 0});
  s.receiver->SetStep(step);

  const pid_t edge_pid = s.edge.process->pid();
  std::vector<pid_t> vehicle_pids;
  for (size_t k = 0; k < n; ++k) vehicle_pids.push_back(s.vehicles[k].daemon.process->pid());
  // Receive-buffer drops of the usrsctp UDP sockets of every vehicle (each its namespace).
  auto vehicle_drops = [&] {
    uint64_t d = 0;
    for (pid_t v : vehicle_pids) {
      auto m = UdpDrops(v);
      d += m[transport::kDefaultUdpEncapsPort];
    }
    return d;
  };
  auto drops_edge0 = UdpDrops(edge_pid);
  const uint64_t drops_vehicle0 = vehicle_drops();
  const std::string edge_m0 = s.edge.Metrics();
  const CpuSnapshot cpu0 = TakeCpu(edge_pid, vehicle_pids);
  GenResult gen;
  std::thread gen_thread([&] {
    (void)PinThisThread(s.opt.other_cpu);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    gen = Generate(s.gen.get(), targets, step, s.opt.bitrate,
                   static_cast<size_t>(s.opt.datagram), s.opt.window);
  });
  gen_thread.join();
  const CpuSnapshot cpu1 = TakeCpu(edge_pid, vehicle_pids);
  if (g_stop.load()) return Stopped();
  StepRx rx = s.receiver->Drain(s.opt.drain);
  auto drops_edge1 = UdpDrops(edge_pid);
  const uint64_t drops_vehicle1 = vehicle_drops();
  const std::string edge_m1 = s.edge.Metrics();

  StepResult r;
  r.sessions = n;
  for (size_t k = 0; k < targets.size(); ++k) {
    if (targets[k].path == kPathRelay) {
      r.relay_sent = gen.sent[k];
      r.relay_lost = gen.sent[k] - std::min(gen.sent[k], rx.relay.unique);
      continue;
    }
    const SessionRx& got = rx.sessions[targets[k].session];
    r.sent += gen.sent[k];
    r.received += got.unique;
    const uint64_t lost = gen.sent[k] - std::min(gen.sent[k], got.unique);
    r.lost += lost;
    r.sessions_with_loss += lost > 0;
    r.duplicates += got.duplicates;
    r.reordered += got.reordered;
  }
  const double secs = absl::ToDoubleSeconds(cpu1.at - cpu0.at);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto cores = [&](uint64_t a, uint64_t b) { return static_cast<double>(b - a) / hz / secs; };
  r.edge_cpu = cores(cpu0.edge, cpu1.edge);
  r.vehicle_cpu = cores(cpu0.vehicle, cpu1.vehicle);
  r.bench_cpu = cores(cpu0.self, cpu1.self);
  for (size_t c = 0; c < cpu1.cores.size() && c < cpu0.cores.size(); ++c) {
    const double total = static_cast<double>(cpu1.cores[c].second - cpu0.cores[c].second);
    r.core_busy.push_back(total > 0 ? static_cast<double>(cpu1.cores[c].first - cpu0.cores[c].first) / total : 0);
  }
  std::vector<std::string> threads;
  for (const auto& [name, t1] : cpu1.edge_threads) {
    auto it = cpu0.edge_threads.find(name);
    const double c = cores(it == cpu0.edge_threads.end() ? 0 : it->second, t1);
    if (c >= 0.005) threads.push_back(absl::StrFormat(R"("%s":%.3f)", name, c));
  }
  // Receive-buffer drops by socket: the edge's ingest sockets, the stacks' UDP
  // encapsulation sockets (SCTP retransmits those), the receiver.
  auto delta = [](const std::map<uint16_t, uint64_t>& a, const std::map<uint16_t, uint64_t>& b,
                  auto pred) {
    uint64_t d = 0;
    for (const auto& [port, v] : b) {
      if (!pred(port)) continue;
      auto it = a.find(port);
      d += v - std::min(v, it == a.end() ? 0 : it->second);
    }
    return d;
  };
  auto is_ingest = [](uint16_t p) { return p >= kIngestBase; };
  const uint64_t ingest_drops = delta(drops_edge0, drops_edge1, is_ingest);
  const uint64_t receiver_drops =
      delta(drops_edge0, drops_edge1, [](uint16_t p) { return p == kReceiverPort; });
  const uint64_t edge_encaps_drops = delta(drops_edge0, drops_edge1, [](uint16_t p) {
    return p == transport::kDefaultUdpEncapsPort;
  });
  const uint64_t vehicle_encaps_drops = drops_vehicle1 - std::min(drops_vehicle0, drops_vehicle1);
  auto mdelta = [](const std::string& a, const std::string& b, const std::string& name) {
    return MetricSum(b, name) - MetricSum(a, name);
  };
  // Where a lossy session's datagrams stopped: the edge's and the vehicle's view of the
  // first few such sessions.
  std::vector<std::string> diag;
  for (size_t k = 0; k < n && diag.size() < 4; ++k) {
    const uint64_t id = s.open[k];
    size_t t = 0;
    while (t < targets.size() && !(targets[t].path == kPathSmig && targets[t].session == id)) ++t;
    if (t == targets.size() || rx.sessions[static_cast<uint32_t>(id)].unique >= gen.sent[t]) continue;
    v1::GetSessionRequest req;
    req.set_session_id(id);
    v1::Session e, v;
    grpc::ClientContext c1, c2;
    c1.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    (void)s.edge.stub->GetSession(&c1, req, &e);
    (void)s.vehicles[k].daemon.stub->GetSession(&c2, req, &v);
    auto flow = [](const v1::Session& x) {
      return x.flows_size() == 0
                 ? std::string("null")
                 : absl::StrCat(R"({"next_sequence":)", x.flows(0).next_sequence(), R"(,"frames":)",
                                x.flows(0).frames(), R"(,"buffered":)", x.flows(0).buffered_frames(),
                                "}");
    };
    diag.push_back(absl::StrCat(R"({"session":)", id, R"(,"received":)",
                                rx.sessions[static_cast<uint32_t>(id)].unique, R"(,"sent":)",
                                gen.sent[t], R"(,"edge_phase":)", e.phase(), R"(,"edge_flow":)",
                                flow(e), R"(,"vehicle_generation":)", v.generation(),
                                R"(,"vehicle_flow":)", flow(v), R"(,"edge_associations":)",
                                e.associations_size(), R"(,"vehicle_associations":)",
                                v.associations_size(), "}"));
  }
  r.smig = Percentiles(std::move(rx.latency_ns[kPathSmig]));
  r.relay = Percentiles(std::move(rx.latency_ns[kPathRelay]));
  r.json = absl::StrCat(
      R"({"bench":"sessions","stack":")",
      s.opt.sctp_stack, R"(","sessions":)", n,
      absl::StrFormat(R"(,"seconds":%.2f,"mbit_per_s_offered":%.1f)",
                      absl::ToDoubleSeconds(gen.end - gen.start),
                      static_cast<double>(r.sent) * s.opt.datagram * 8 / 1e6 /
                          absl::ToDoubleSeconds(gen.end - gen.start)),
      R"(,"sent":)", r.sent, R"(,"received":)", r.received, R"(,"lost":)", r.lost,
      R"(,"sessions_with_loss":)", r.sessions_with_loss, R"(,"duplicates":)", r.duplicates,
      R"(,"reordered":)", r.reordered, R"(,"foreign":)", rx.foreign,
      absl::StrFormat(R"(,"edge_cpu":%.3f,"vehicle_cpu":%.3f,"bench_cpu":%.3f)", r.edge_cpu,
                      r.vehicle_cpu, r.bench_cpu),
      R"(,"core_busy":[)",
      absl::StrJoin(r.core_busy, ",", [](std::string* o, double v) { absl::StrAppendFormat(o, "%.3f", v); }),
      absl::StrFormat(R"(],"edge_core_others":%.3f)",
                      static_cast<size_t>(s.opt.edge_cpu) < r.core_busy.size()
                          ? std::max(0.0, r.core_busy[s.opt.edge_cpu] - r.edge_cpu)
                          : 0.0),
      R"(,"edge_threads":{)", absl::StrJoin(threads, ","), "}",
      R"(,"drops":{"edge_ingest":)", ingest_drops, R"(,"edge_sctp_udp":)", edge_encaps_drops,
      R"(,"vehicle_sctp_udp":)", vehicle_encaps_drops, R"(,"receiver":)", receiver_drops, "}",
      absl::StrFormat(R"(,"edge_send_errors":%.0f,"edge_send_deferrals":%.0f)",
                      mdelta(edge_m0, edge_m1, "smig_send_errors_total"),
                      mdelta(edge_m0, edge_m1, "smig_send_deferrals_total")),
      absl::StrFormat(R"(,"generator_max_lag_ms":%.2f)", absl::ToDoubleMilliseconds(gen.max_lag)),
      R"(,"latency_ms":{"smig":)", Json(r.smig), R"(,"relay":)", Json(r.relay),
      R"(},"relay_sent":)", r.relay_sent, R"(,"relay_lost":)", r.relay_lost,
      R"(,"lossy_sessions":[)", absl::StrJoin(diag, ","), "]}");
  return r;
}

std::string Row(const StepResult& r) {
  return absl::StrFormat("%8d %10d %8d %6d %8.1f%% %8.1f%% %s/%s  %9.3f %9.3f %9.3f | %7.3f %7.3f %7.3f",
                         r.sessions, r.sent, r.lost, r.duplicates, 100 * r.edge_cpu,
                         100 * r.vehicle_cpu,
                         r.core_busy.size() > 0 ? absl::StrFormat("%.0f%%", 100 * r.core_busy[0]) : "-",
                         r.core_busy.size() > 1 ? absl::StrFormat("%.0f%%", 100 * r.core_busy[1]) : "-",
                         r.smig.p50, r.smig.p99, r.smig.max, r.relay.p50, r.relay.p99,
                         r.relay.max);
}

std::string RowHeading() {
  return "sessions    sent      lost   dups  edge cpu  veh. cpu core0/1  "
         "smig p50  smig p99  smig max | relay p50/p99/max (ms)";
}

}  // namespace smig::bench::sessions
