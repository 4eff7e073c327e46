#include "tools/smigctl/render.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "tools/smigctl/command.h"
#include "google/protobuf/util/json_util.h"

namespace smig::smigctl {
namespace {

using migrator::v1::Migration;

// "PHASE_OVERLAPPING" -> "OVERLAPPING"; the zero value (unset) shows as "-".
std::string EnumLabel(const std::string& name, absl::string_view prefix) {
  absl::string_view s = absl::StripPrefix(name, prefix);
  return s == "UNSPECIFIED" || s.empty() ? "-" : std::string(s);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Or(const std::string& s, absl::string_view fallback = "-") {
  return s.empty() ? std::string(fallback) : s;
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.3f s", absl::ToDoubleSeconds(d)); }

// UTC so that output reads the same on every machine (and in tests).
std::string When(const google::protobuf::Timestamp& t, bool has) {
  if (!has) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProto(t), absl::UTCTimeZone());
}

std::string Relative(absl::Time t, absl::Time now) {
  absl::Duration d = t - now;
  if (d >= absl::ZeroDuration()) return absl::StrFormat("in %.1f s", absl::ToDoubleSeconds(d));
  return absl::StrFormat("%.1f s ago", absl::ToDoubleSeconds(-d));
}

std::string Number(double v) { return absl::StrFormat("%g", v); }
std::string Millis(double ms) { return ms > 0 ? absl::StrFormat("%.1f", ms) : "-"; }

std::string Bandwidth(double bps) {
  if (bps <= 0) return "-";
  if (bps >= 1e9) return absl::StrFormat("%.1f Gbit/s", bps / 1e9);
  if (bps >= 1e6) return absl::StrFormat("%.1f Mbit/s", bps / 1e6);
  return absl::StrFormat("%.0f kbit/s", bps / 1e3);
}

std::string Load(uint32_t sessions, uint32_t capacity) {
  return absl::StrCat(sessions, "/", capacity == 0 ? std::string("-") : absl::StrCat(capacity));
}

// "10.77.1.1:5000* ACTIVE 12.1ms, 10.77.2.1:5000 PF"; '*' marks the primary path.
std::string Paths(const google::protobuf::RepeatedPtrField<transport::v1::PathInfo>& paths) {
  std::vector<std::string> out;
  for (const transport::v1::PathInfo& p : paths) {
    std::string state = EnumLabel(transport::v1::PathState_Name(p.state()), "PATH_STATE_");
    if (state == "POTENTIALLY_FAILED") state = "PF";
    std::string s = absl::StrCat(p.address(), p.primary() ? "* " : " ", state);
    if (p.srtt_ms() > 0) absl::StrAppend(&s, " ", Millis(p.srtt_ms()), "ms");
    out.push_back(std::move(s));
  }
  return out.empty() ? "-" : absl::StrJoin(out, ", ");
}

std::string PhaseLabel(migrator::v1::Phase p) {
  return EnumLabel(migrator::v1::Phase_Name(p), "PHASE_");
}

std::string FromTo(const std::string& from, const std::string& to) {
  // An auto target is known only once the SMM has asked the PMM.
  return absl::StrCat(Or(from, "?"), " -> ", Or(to, "(auto)"));
}

// The final duration once ended, else time running so far.
absl::Duration Elapsed(const Migration& m, absl::Time now) {
  if (m.has_duration()) return FromProto(m.duration());
  if (!m.has_started_at()) return absl::ZeroDuration();
  absl::Time end = m.has_finished_at() ? FromProto(m.finished_at()) : now;
  return std::max(absl::ZeroDuration(), end - FromProto(m.started_at()));
}

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    // A cell left empty at the end would leave padding behind.
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string RenderServers(const proximity::v1::ListServersResponse& response, absl::Time now) {
  Table t({"ID", "AGENT", "SCTP ADDRESSES", "PORT", "SESSIONS", "SOURCE", "EXPIRES"});
  for (const proximity::v1::Server& s : response.servers()) {
    t.AddRow({s.id(), Or(s.agent_address()), Or(absl::StrJoin(s.sctp_addresses(), ",")),
              s.sctp_port() == 0 ? "-" : absl::StrCat(s.sctp_port()),
              Load(s.sessions(), s.capacity()),
              Lower(EnumLabel(proximity::v1::ServerSource_Name(s.source()), "SERVER_SOURCE_")),
              s.has_expires_at() ? Relative(FromProto(s.expires_at()), now) : "never"});
  }
  return t.Render();
}

std::string RenderProximity(const proximity::v1::VehicleProximity& p) {
  std::string out = absl::StrCat("vehicle ", p.vehicle_id(), "  target ", Or(p.target_server_id()),
                                 "  updated ", When(p.updated_at(), p.has_updated_at()), "\n");
  Table t({"SERVER", "ROLE", "REACHABLE", "SRTT MS", "HOPS", "BANDWIDTH", "LOAD", "PATHS"});
  for (const proximity::v1::ServerProximity& s : p.servers()) {
    t.AddRow({s.server_id(), EnumLabel(proximity::v1::Role_Name(s.role()), "ROLE_"),
              s.reachable() ? "yes" : "no", Millis(s.srtt_ms()),
              s.hops() == 0 ? "-" : absl::StrCat(s.hops()), Bandwidth(s.bandwidth_bps()),
              Load(s.sessions(), s.capacity()), Paths(s.paths())});
  }
  return out + t.Render();
}

std::string RenderSessions(const migrator::v1::ListSessionsResponse& response) {
  Table t({"SESSION", "VEHICLE", "SERVER", "GENERATION", "REDUNDANCY", "MIGRATION"});
  for (const migrator::v1::Session& s : response.sessions()) {
    std::string migration = Or(s.migration_id());
    if (!s.migration_to_server_id().empty()) {
      absl::StrAppend(&migration, " -> ", s.migration_to_server_id());
    }
    t.AddRow({absl::StrCat(s.session_id()), Or(s.vehicle_id()), Or(s.server_id()),
              absl::StrCat(s.generation()), RedundancyLabel(s.redundancy()), migration});
  }
  std::string out = t.Render();
  if (response.matched() > static_cast<uint32_t>(response.sessions_size())) {
    absl::StrAppend(&out, "(", response.sessions_size(), " of ", response.matched(),
                    " matching sessions; --limit lists more)\n");
  }
  return out;
}

std::string RenderMigrations(const migrator::v1::ListMigrationsResponse& response,
                             absl::Time now) {
  Table t({"ID", "SESSION", "FROM -> TO", "TRIGGER", "PHASE", "DURATION", "ROLLBACK REASON"});
  for (const Migration& m : response.migrations()) {
    t.AddRow({m.id(), absl::StrCat(m.session_id()), FromTo(m.from_server_id(), m.to_server_id()),
              Lower(EnumLabel(migrator::v1::Trigger_Name(m.trigger()), "TRIGGER_")),
              PhaseLabel(m.phase()), Seconds(Elapsed(m, now)), m.rollback_reason()});
  }
  return t.Render();
}

std::string RenderMigration(const Migration& m, absl::Time now) {
  Table kv({});
  kv.AddRow({"id", m.id()});
  kv.AddRow({"session", absl::StrCat(m.session_id())});
  kv.AddRow({"from -> to", FromTo(m.from_server_id(), m.to_server_id())});
  kv.AddRow({"trigger", Lower(EnumLabel(migrator::v1::Trigger_Name(m.trigger()), "TRIGGER_"))});
  kv.AddRow({"reason", Or(m.reason())});
  kv.AddRow({"request id", Or(m.request_id())});
  kv.AddRow({"phase", PhaseLabel(m.phase())});
  if (!m.rollback_reason().empty()) kv.AddRow({"rollback reason", m.rollback_reason()});
  kv.AddRow({"generation", absl::StrCat(m.generation())});
  kv.AddRow({"started", When(m.started_at(), m.has_started_at())});
  kv.AddRow({"finished", When(m.finished_at(), m.has_finished_at())});
  kv.AddRow({"duration", Seconds(Elapsed(m, now))});
  std::string out = kv.Render();
  if (m.history().empty()) return out;

  Table h({"PHASE", "AT", "+TIME", "NOTE"});
  for (const migrator::v1::PhaseChange& c : m.history()) {
    std::string offset = "-";
    if (c.has_at() && m.has_started_at()) {
      offset = Seconds(FromProto(c.at()) - FromProto(m.started_at()));
    }
    h.AddRow({PhaseLabel(c.phase()), When(c.at(), c.has_at()), offset, c.note()});
  }
  return absl::StrCat(out, "\n", h.Render());
}

std::string RenderDecisions(const decision::v1::ListDecisionsResponse& response, absl::Time now) {
  Table t({"ID", "SESSION", "OUTCOME", "CURRENT -> TARGET", "DECIDED", "MIGRATION", "REASONS"});
  for (const decision::v1::DecisionRecord& d : response.decisions()) {
    t.AddRow({d.id(), absl::StrCat(d.session_id()),
              EnumLabel(decision::v1::Outcome_Name(d.outcome()), "OUTCOME_"),
              absl::StrCat(Or(d.current_server_id()), " -> ", Or(d.target_server_id())),
              d.has_decided_at() ? Relative(FromProto(d.decided_at()), now) : "-",
              Or(d.migration_id()), absl::StrJoin(d.reasons(), "; ")});
  }
  return t.Render();
}

std::string RenderDecision(const decision::v1::DecisionRecord& d) {
  Table kv({});
  kv.AddRow({"id", Or(d.id())});
  kv.AddRow({"session", absl::StrCat(d.session_id())});
  kv.AddRow({"vehicle", Or(d.vehicle_id())});
  kv.AddRow({"outcome", EnumLabel(decision::v1::Outcome_Name(d.outcome()), "OUTCOME_")});
  kv.AddRow({"current -> target",
             absl::StrCat(Or(d.current_server_id()), " -> ", Or(d.target_server_id()))});
  kv.AddRow({"decided", When(d.decided_at(), d.has_decided_at())});
  if (!d.migration_id().empty()) kv.AddRow({"migration", d.migration_id()});
  std::string out = kv.Render();

  if (!d.candidates().empty()) {
    Table c({"CANDIDATE", "COST", "SRTT MS", "BANDWIDTH", "LOAD", "ELIGIBLE", "NOTE"});
    for (const decision::v1::Candidate& x : d.candidates()) {
      c.AddRow({x.server_id(), absl::StrFormat("%.3f", x.cost()), Millis(x.srtt_ms()),
                Bandwidth(x.bandwidth_bps()), absl::StrFormat("%.0f%%", x.load() * 100),
                x.eligible() ? "yes" : "no", x.note()});
    }
    absl::StrAppend(&out, "\n", c.Render());
  }
  if (!d.reasons().empty()) {
    absl::StrAppend(&out, "\nreasons:\n");
    for (const std::string& r : d.reasons()) absl::StrAppend(&out, "  - ", r, "\n");
  }
  return out;
}

std::string RenderPolicy(const decision::v1::Policy& p) {
  Table kv({});
  kv.AddRow({"latency_weight", Number(p.latency_weight())});
  kv.AddRow({"bandwidth_weight", Number(p.bandwidth_weight())});
  kv.AddRow({"load_weight", Number(p.load_weight())});
  kv.AddRow({"margin", Number(p.margin())});
  kv.AddRow({"dwell", absl::FormatDuration(FromProto(p.dwell()))});
  kv.AddRow({"max_load", Number(p.max_load())});
  kv.AddRow({"mode", EnumLabel(decision::v1::Mode_Name(p.mode()), "MODE_")});
  return kv.Render();
}

std::string ProgressLine(const Migration& m, absl::Time now) {
  std::string line = absl::StrCat(m.id(), "  session ", m.session_id(), "  ",
                                   FromTo(m.from_server_id(), m.to_server_id()), "  ",
                                   PhaseLabel(m.phase()), "  ", Seconds(Elapsed(m, now)));
  if (!m.rollback_reason().empty()) absl::StrAppend(&line, "  ", m.rollback_reason());
  return line;
}

bool IsFinished(migrator::v1::Phase phase) {
  return phase == migrator::v1::PHASE_DONE || phase == migrator::v1::PHASE_ROLLED_BACK;
}

int ExitCode(const Migration& m) {
  switch (m.phase()) {
    case migrator::v1::PHASE_DONE:
      return 0;
    case migrator::v1::PHASE_ROLLED_BACK:
      return 1;
    default:
      return 2;
  }
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  // Printing a well-formed message cannot fail; an empty object beats a crash if it does.
  if (!google::protobuf::util::MessageToJsonString(message, &out, o).ok()) return "{}";
  return out;
}

std::string FormatRpcError(absl::string_view method, absl::string_view service,
                           absl::string_view address, const absl::Status& status,
                           ErrorOrigin origin) {
  std::string message(status.message());
  // gRPC's own text ("failed to connect to all addresses") does not say which server
  // the user pointed us at, or how to point elsewhere. A server's own message needs
  // neither: the server was reached, and it says what failed behind it.
  if (origin == ErrorOrigin::kNoAnswer) {
    if (absl::IsUnavailable(status)) {
      // `health ADDRESS` names its server itself: no flag to point elsewhere.
      const std::string flag = service == "server"
                                   ? ""
                                   : absl::StrCat(" (--", Lower(std::string(service)), "=ADDR)");
      message = absl::StrCat("cannot reach the ", service, " at ", address, flag, ": ", message);
    } else if (absl::IsDeadlineExceeded(status)) {
      message = absl::StrCat("no answer from the ", service, " at ", address,
                             " within --timeout: ", message);
    }
  }
  std::string line =
      absl::StrCat("smigctl: ", method, ": ", absl::StatusCodeToString(status.code()));
  if (!message.empty()) absl::StrAppend(&line, ": ", message);
  return line;
}

}  // namespace smig::smigctl
