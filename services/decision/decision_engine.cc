#include "services/decision/decision_engine.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/inlined_vector.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::decision {

namespace {

using proximity::v1::ServerProximity;

constexpr absl::string_view kLabels[] = {"stay",       "migrate",  "dwell",       "no_candidate",
                                         "hysteresis", "capacity", "rate_limited"};
constexpr uint32_t kDefaultMaxMigrationsPerServer = 4;



absl::Duration DwellOf(const v1::Policy& p) { return FromProto(p.dwell()); }

std::string Cost(double c) { return absl::StrFormat("%.2f", c); }
std::string Percent(double fraction) { return absl::StrFormat("%.0f %%", fraction * 100); }
std::string Secs(absl::Duration d) { return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d)); }

// A server the vehicle reaches and has an RTT for: the only ones a cost can be given to.
bool Measured(const ServerProximity& s) { return s.reachable() && s.srtt_ms() > 0; }

// The candidate being judged, with what the reasons need to say about it.
struct Judged {
  const ServerProximity* server = nullptr;
  double cost = 0;
  bool measured = false;
  bool current = false;   // the server the session is on
  bool full = false;
  uint32_t sessions = 0;  // served there (the larger of the PMM's and the SMM's count)
  uint32_t arriving = 0;  // migrations in flight to it
  double load = 0;        // (sessions + arriving) / capacity
};

// Why a candidate is not eligible (or must wait), in words; "" when nothing holds it back.
std::string NoteOf(const Judged& j, const v1::Policy& p) {
  const ServerProximity& s = *j.server;
  if (!s.reachable()) return "unreachable";
  if (!j.measured) return "not measured: no RTT yet";
  if (j.full) {
    return absl::StrFormat("full: %d of %d sessions%s (max_load %g)", j.sessions, s.capacity(),
                           j.arriving > 0 ? absl::StrCat(" and ", j.arriving, " arriving") : "",
                           p.max_load());
  }
  if (!j.current && j.arriving >= p.max_migrations_per_server()) {
    return absl::StrFormat("busy: %d migrations in flight (at most %d)", j.arriving,
                           p.max_migrations_per_server());
  }
  return "";
}

}  // namespace

v1::Policy DefaultPolicy() {
  v1::Policy p;
  p.set_latency_weight(1);
  p.set_bandwidth_weight(0.2);
  p.set_load_weight(0.5);
  p.set_margin(0.2);
  p.mutable_dwell()->set_seconds(3);
  p.set_max_load(0.9);
  p.set_mode(v1::MODE_MANUAL);
  p.set_max_migrations_per_server(kDefaultMaxMigrationsPerServer);
  return p;
}

absl::Status ValidatePolicy(const v1::Policy& p) {
  // `!(x >= 0)` rather than `x < 0`, so that NaN is rejected too.
  for (auto [name, w] : {std::pair{"latency_weight", p.latency_weight()},
                         std::pair{"bandwidth_weight", p.bandwidth_weight()},
                         std::pair{"load_weight", p.load_weight()}}) {
    if (!(w >= 0) || std::isinf(w)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 0, got ", w));
    }
  }
  if (p.latency_weight() + p.bandwidth_weight() + p.load_weight() == 0) {
    return absl::InvalidArgumentError(
        "latency_weight, bandwidth_weight and load_weight are all 0: one must be positive");
  }
  if (!(p.margin() >= 0 && p.margin() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("margin must be in [0, 1), got ", p.margin()));
  }
  if (p.dwell().seconds() < 0 || p.dwell().nanos() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dwell must be >= 0, got ", absl::FormatDuration(DwellOf(p))));
  }
  if (!(p.max_load() > 0 && p.max_load() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_load must be in (0, 1], got ", p.max_load()));
  }
  if (p.mode() != v1::MODE_MANUAL && p.mode() != v1::MODE_AUTOMATIC) {
    return absl::InvalidArgumentError(absl::StrCat("mode must be MODE_MANUAL or MODE_AUTOMATIC, got ",
                                                   v1::Mode_Name(p.mode())));
  }
  return absl::OkStatus();
}

DecisionEngine::DecisionEngine(prometheus::Registry* registry, size_t history)
    : history_size_(history == 0 ? 1 : history),
      id_prefix_([] {
        absl::BitGen gen;
        return absl::StrFormat("%08x", absl::Uniform<uint32_t>(gen));
      }()),
      policy_(DefaultPolicy()) {
  if (registry == nullptr) return;
  auto& family = prometheus::BuildCounter()
                     .Name("smig_decisions_total")
                     .Help("MDM decisions taken, by outcome (stay, migrate, dwell, no_candidate, "
                           "hysteresis: stayed inside the margin, capacity: stayed because the "
                           "better server was full, rate_limited: the dwell ran out but the "
                           "target had max_migrations_per_server in flight)")
                     .Register(*registry);
  // Every label value exists from the start, so dashboards and rates see zeros, not gaps.
  for (absl::string_view l : kLabels) counters_[l] = &family.Add({{"outcome", std::string(l)}});
}

v1::Policy DecisionEngine::policy() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

absl::StatusOr<v1::Policy> NormalizePolicy(v1::Policy p) {
  if (!p.has_dwell()) *p.mutable_dwell() = DefaultPolicy().dwell();
  if (p.mode() == v1::MODE_UNSPECIFIED) p.set_mode(v1::MODE_MANUAL);
  if (p.max_migrations_per_server() == 0) {
    p.set_max_migrations_per_server(kDefaultMaxMigrationsPerServer);
  }
  SMIG_RETURN_IF_ERROR(ValidatePolicy(p));
  return p;
}

absl::StatusOr<v1::Policy> DecisionEngine::UpdatePolicy(v1::Policy policy) {
  SMIG_ASSIGN_OR_RETURN(v1::Policy p, NormalizePolicy(std::move(policy)));
  absl::MutexLock lock(&mu_);
  policy_ = p;
  return policy_;
}

v1::DecisionRecord DecisionEngine::Decide(uint64_t session_id, absl::string_view vehicle_id,
                                          absl::string_view current_server_id,
                                          const proximity::v1::VehicleProximity& proximity,
                                          absl::Time now, DecideOptions options) {
  absl::MutexLock lock(&mu_);
  const v1::Policy& p = policy_;
  v1::DecisionRecord r;
  r.set_session_id(session_id);
  r.set_vehicle_id(std::string(vehicle_id));
  r.set_current_server_id(std::string(current_server_id));
  *r.mutable_decided_at() = ToProtoTimestamp(now);

  // Costs are relative to the best measured server, so they are comparable across vehicles
  // and the margin means the same thing at 5 ms and at 50 ms.
  double best_srtt = std::numeric_limits<double>::infinity();
  double best_bw = 0;
  bool every_bw_known = true;
  for (const ServerProximity& s : proximity.servers()) {
    if (!Measured(s)) continue;
    best_srtt = std::min(best_srtt, s.srtt_ms());
    if (s.bandwidth_bps() > 0) {
      best_bw = std::max(best_bw, s.bandwidth_bps());
    } else {
      every_bw_known = false;
    }
  }
  // A server without an estimate would skip the term and so look up to bandwidth_weight
  // cheaper than one with it: the term counts only when every server has an estimate.
  const bool use_bw = every_bw_known && best_bw > 0;

  absl::InlinedVector<Judged, 32> judged;
  judged.reserve(proximity.servers_size());
  const Judged* current = nullptr;
  const Occupancy* occupancy = options.occupancy;
  for (const ServerProximity& s : proximity.servers()) {
    Judged j{.server = &s, .measured = Measured(s)};
    // The PMM's count may predate migrations the SMM has finished or started: the larger
    // of the two, and every session on its way in.
    j.sessions = s.sessions();
    if (occupancy != nullptr && s.capacity() > 0) {
      if (auto it = occupancy->servers.find(s.server_id()); it != occupancy->servers.end()) {
        j.sessions = std::max(j.sessions, it->second.serving);
        j.arriving = it->second.arriving;
      }
    }
    j.current = s.server_id() == current_server_id;
    const uint32_t taken = j.sessions + j.arriving;
    if (s.capacity() > 0) j.load = static_cast<double>(taken) / s.capacity();
    if (j.measured) {
      j.cost = p.latency_weight() * s.srtt_ms() / best_srtt + p.load_weight() * j.load;
      if (use_bw) j.cost += p.bandwidth_weight() * best_bw / s.bandwidth_bps();
      // A candidate is full when this session would take it over max_load; the current
      // server (which counts it already) when nothing more fits.
      const double limit = p.max_load() * s.capacity();
      j.full = s.capacity() > 0 && (j.current ? taken >= limit : taken + 1 > limit);
    }
    judged.push_back(j);
  }
  for (const Judged& j : judged) {
    if (j.current) current = &j;
  }
  const bool current_ok = current != nullptr && current->measured;
  const double threshold = current_ok ? current->cost * (1 - p.margin())
                                      : std::numeric_limits<double>::infinity();

  // The cheapest eligible server other than the current one, and the cheapest full one that
  // would have beaten it (so a STAY can say that capacity, not distance, kept the session).
  const Judged* best = nullptr;
  const Judged* best_full = nullptr;
  for (const Judged& j : judged) {
    if (&j == current || !j.measured) continue;
    const Judged*& slot = j.full ? best_full : best;
    if (slot == nullptr || j.cost < slot->cost) slot = &j;
  }
  if (best_full != nullptr &&
      !(best_full->cost < threshold && (best == nullptr || best_full->cost < best->cost))) {
    best_full = nullptr;
  }

  // First what to do (outcome, label, target, the dwell), then, only for a record that is
  // kept or handed back whole, why in words: the loop decides every vehicle every tick and
  // keeps only changes, and formatting reasons it then drops would cost more than deciding.
  enum class Why { kOnlyCurrent, kNothingEligible, kInsideMargin, kCheapest, kBetter };
  Why why;
  absl::string_view label;
  std::string winner;
  absl::Time since = now;
  if (best == nullptr) {
    why = current_ok && !current->full ? Why::kOnlyCurrent : Why::kNothingEligible;
    r.set_outcome(why == Why::kOnlyCurrent ? v1::OUTCOME_STAY : v1::OUTCOME_NO_CANDIDATE);
    label = why == Why::kOnlyCurrent ? "stay" : "no_candidate";
    if (!options.peek) dwell_.erase(session_id);
  } else if (current_ok && !(best->cost < threshold)) {
    why = best->cost < current->cost ? Why::kInsideMargin : Why::kCheapest;
    r.set_outcome(v1::OUTCOME_STAY);
    label = why == Why::kInsideMargin ? "hysteresis" : "stay";
    if (!options.peek) dwell_.erase(session_id);
  } else {
    why = Why::kBetter;
    winner = best->server->server_id();
    r.set_target_server_id(winner);
    // The same winner, over the same current server, must hold for the whole dwell time.
    auto it = dwell_.find(session_id);
    const bool same_dwell = it != dwell_.end() && it->second.candidate == winner &&
                            it->second.current == current_server_id;
    if (same_dwell) since = it->second.since;
    *r.mutable_dwell_started_at() = ToProtoTimestamp(since);
    const bool dwell_over = now - since >= DwellOf(p);
    // A winner whose dwell is over waits only for a free migration slot at the target.
    const bool rate_limited = dwell_over && best->arriving >= p.max_migrations_per_server();
    r.set_outcome(dwell_over && !rate_limited ? v1::OUTCOME_MIGRATE : v1::OUTCOME_DWELL);
    label = rate_limited ? "rate_limited" : dwell_over ? "migrate" : "dwell";
    // The SMM moves the session on a MIGRATE, and whatever happens next starts a new dwell;
    // unless nobody acts on it (observe): then the dwell, and its start, stay. Otherwise the
    // dwell runs on (written only when it starts: most passes find it there).
    if (options.peek) {
    } else if (r.outcome() == v1::OUTCOME_MIGRATE && !options.observe) {
      dwell_.erase(session_id);
    } else if (!same_dwell) {
      dwell_[session_id] = Dwell{std::string(current_server_id), winner, since};
    }
  }
  // A STAY because the better server was full is counted as "capacity".
  if (r.outcome() == v1::OUTCOME_STAY && best_full != nullptr) label = "capacity";

  auto explain = [&] {
    auto add = [&r](std::string reason) { r.add_reasons(std::move(reason)); };
    auto current_state = [&]() -> std::string {
      if (current == nullptr) return "is not in the PMM's view of the vehicle";
      if (!current->server->reachable()) return "is unreachable";
      return "has no RTT measured";
    };
    switch (why) {
      case Why::kOnlyCurrent:
        add(absl::StrCat(current_server_id, " (current) costs ", Cost(current->cost),
                         "; no other server is eligible"));
        break;
      case Why::kNothingEligible:
        add(absl::StrCat(current_server_id, " (current) ",
                         current_ok ? NoteOf(*current, p) : current_state(),
                         " and no other server is reachable with room; the session stays"));
        break;
      case Why::kInsideMargin:
        add(absl::StrCat(best->server->server_id(), " costs ", Cost(best->cost), " vs ",
                         current_server_id, " ", Cost(current->cost), ": ",
                         Percent(1 - best->cost / current->cost), " better, inside the ",
                         Percent(p.margin()), " margin"));
        break;
      case Why::kCheapest:
        add(absl::StrCat(current_server_id, " (current) is the cheapest at ", Cost(current->cost),
                         "; next ", best->server->server_id(), " ", Cost(best->cost)));
        break;
      case Why::kBetter:
        if (current_ok) {
          add(absl::StrCat(winner, " costs ", Cost(best->cost), " vs ", current_server_id, " ",
                           Cost(current->cost), ": ",
                           current->cost > 0 ? Percent(1 - best->cost / current->cost) : "0 %",
                           " better, over the ", Percent(p.margin()), " margin"));
        } else {
          add(absl::StrCat(current_server_id, " (current) ", current_state(), "; ", winner,
                           " is the best eligible server at ", Cost(best->cost)));
        }
        break;
    }
    // Why a cheaper server was passed over: it is full (the session stays, or spreads to
    // the next best).
    if (best_full != nullptr && why != Why::kNothingEligible) {
      add(absl::StrCat(best_full->server->server_id(), " would cost ", Cost(best_full->cost),
                       " but is ", NoteOf(*best_full, p)));
    }
    if (why != Why::kBetter) return;
    const absl::Duration waited = now - since;
    const absl::Duration dwell = DwellOf(p);
    if (label == "rate_limited") {
      add(absl::StrCat("rate limited: ", winner, " has ", best->arriving,
                       " migrations in flight (at most ", p.max_migrations_per_server(),
                       " per server); the session moves once one ends"));
    } else if (r.outcome() == v1::OUTCOME_MIGRATE) {
      add(absl::StrCat(winner, " has been the best for ", Secs(waited), " (dwell ",
                       absl::StrFormat("%g s", absl::ToDoubleSeconds(dwell)), ")"));
    } else {
      add(absl::StrCat("waiting for dwell: ", absl::StrFormat("%.1f", absl::ToDoubleSeconds(waited)),
                       " s of ", absl::StrFormat("%g s", absl::ToDoubleSeconds(dwell))));
    }
  };

  if (options.observe) return r;
  bool keep = !options.record_only_changes || r.outcome() == v1::OUTCOME_MIGRATE;
  auto fill_candidates = [&] {
    for (const Judged& j : judged) {
      const ServerProximity& s = *j.server;
      v1::Candidate* c = r.add_candidates();
      c->set_server_id(s.server_id());
      c->set_srtt_ms(s.srtt_ms());
      c->set_bandwidth_bps(s.bandwidth_bps());
      c->set_arriving(j.arriving);
      c->set_load(j.load);
      if (j.measured) {
        c->set_cost(j.cost);
        c->set_eligible(!j.full);
      }
      c->set_note(NoteOf(j, p));
    }
  };
  if (!keep) {
    auto last = last_.find(session_id);
    keep = last == last_.end() || last->second.outcome != r.outcome() ||
           last->second.current != r.current_server_id() ||
           last->second.target != r.target_server_id();
  }
  if (keep) {
    r.set_id(absl::StrCat(id_prefix_, "-", next_id_++));  // kept records only: ids stay dense
    explain();
    fill_candidates();
    last_[session_id] = Last{r.outcome(), r.current_server_id(), r.target_server_id()};
    Record(r, label);
  }
  return r;
}

void DecisionEngine::Record(const v1::DecisionRecord& record, absl::string_view label) {
  history_.push_front(record);
  if (history_.size() > history_size_) history_.pop_back();
  if (auto it = counters_.find(label); it != counters_.end()) it->second->Increment();
}

absl::Status DecisionEngine::SetMigrationId(absl::string_view decision_id,
                                            absl::string_view migration_id) {
  absl::MutexLock lock(&mu_);
  for (v1::DecisionRecord& r : history_) {
    if (r.id() == decision_id) {
      r.set_migration_id(std::string(migration_id));
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("decision ", decision_id, " is no longer kept"));
}

std::vector<v1::DecisionRecord> DecisionEngine::ListDecisions(uint64_t session_id,
                                                              uint32_t limit) const {
  if (limit == 0) limit = 50;
  std::vector<v1::DecisionRecord> out;
  absl::MutexLock lock(&mu_);
  for (const v1::DecisionRecord& r : history_) {
    if (out.size() >= limit) break;
    if (session_id == 0 || r.session_id() == session_id) out.push_back(r);
  }
  return out;
}

void DecisionEngine::RetainSessions(const absl::flat_hash_set<uint64_t>& live) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(dwell_, [&](const auto& kv) { return !live.contains(kv.first); });
  absl::erase_if(last_, [&](const auto& kv) { return !live.contains(kv.first); });
}

}  // namespace smig::decision
