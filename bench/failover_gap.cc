// Failover gap: one multi-homed association streams 1000 numbered messages/s between two
// network namespaces while its primary path is cut (link down or nft drop) and healed,
// --cuts times. For each cut it prints the largest delivery pause the receiver saw while
// the path was down (the failover gap) and after it healed (the switch back), one JSON
// object per line, then an aggregate line. The stack comes from --sctp-stack; for the
// kernel stack on a host without kernel SCTP run it through scripts/run-kernel-test.
#include <algorithm>
#include <iostream>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "tests/integration/testbed.h"

ABSL_FLAG(std::string, sctp_stack, "", "userland or kernel (default: $SMIG_TEST_STACK or userland)");
ABSL_FLAG(int, cuts, 10, "How many times to cut the primary path");
ABSL_FLAG(std::string, cut, "link_down", "How to cut: link_down or nft_drop");
ABSL_FLAG(absl::Duration, down, absl::Seconds(1), "How long each cut lasts");
ABSL_FLAG(absl::Duration, settle, absl::Milliseconds(2500), "Time between a heal and the next cut");

namespace {

using smig::testbed::TwoHostNet;

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// The largest listed stall that ended in [from, to); stalls under the threshold are not
// listed, so 0 means "under the 10 ms threshold".
double LargestStall(const smig::transport::v1::CatSummary& s, absl::Time from, absl::Time to) {
  double largest = 0;
  for (const auto& stall : s.stalls()) {
    absl::Time end = absl::UnixEpoch() + absl::Seconds(stall.end_unix_s());
    if (end >= from && end < to) largest = std::max(largest, stall.gap_ms());
  }
  return largest;
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv, "measures SCTP failover gaps over repeated primary-path cuts");
  std::string stack = absl::GetFlag(FLAGS_sctp_stack);
  if (stack.empty()) stack = std::getenv("SMIG_TEST_STACK") ? std::getenv("SMIG_TEST_STACK") : "userland";
  const std::string cut = absl::GetFlag(FLAGS_cut);
  if (cut != "link_down" && cut != "nft_drop") {
    return smig::Fail(absl::InvalidArgumentError("--cut must be link_down or nft_drop"));
  }
  const int cuts = absl::GetFlag(FLAGS_cuts);
  const absl::Duration down = absl::GetFlag(FLAGS_down), settle = absl::GetFlag(FLAGS_settle);
  if (!smig::testbed::CanCreateNamespaces()) {
    return smig::Fail(absl::PermissionDeniedError("needs root for network namespaces"));
  }
  absl::StatusOr<std::unique_ptr<TwoHostNet>> net = TwoHostNet::Create();
  if (!net.ok()) return smig::Fail(net.status());
  const std::string dir = smig::testbed::ScratchDir();
  const std::string cat = SMIG_SCTPCAT, stack_flag = "--sctp-stack=" + stack;

  auto rx = smig::testbed::Process::Start(
      (*net)->InB({cat, stack_flag, "--listen", "--port=5000", "--once",
                   "--local=" + TwoHostNet::AddrB(1) + "," + TwoHostNet::AddrB(2)}),
      dir + "/rx.json");
  if (!rx.ok()) return smig::Fail(rx.status());
  smig::testbed::AwaitFirstRecord(dir + "/rx.json");
  absl::Duration total = absl::Seconds(2) + cuts * (down + settle) + absl::Seconds(1);
  auto tx = smig::testbed::Process::Start(
      (*net)->InA({cat, stack_flag, "--local=" + TwoHostNet::AddrA(1) + "," + TwoHostNet::AddrA(2),
                   "--peer=" + TwoHostNet::AddrB(1) + "," + TwoHostNet::AddrB(2), "--peer-port=5000",
                   "--primary=" + TwoHostNet::AddrB(2) + ":5000", "--send=numbered", "--rate=1000",
                   "--size=200", "--duration=" + absl::FormatDuration(total)}),
      dir + "/tx.json");
  if (!tx.ok()) return smig::Fail(tx.status());
  absl::SleepFor(absl::Seconds(2));

  std::vector<std::pair<absl::Time, absl::Time>> windows;  // cut, heal
  for (int i = 0; i < cuts; ++i) {
    absl::Time cut_at = absl::Now();
    absl::Status s = cut == "link_down" ? (*net)->SetLink(2, false) : (*net)->SetDrop(2, true);
    if (!s.ok()) return smig::Fail(s);
    absl::SleepFor(down);
    s = cut == "link_down" ? (*net)->SetLink(2, true) : (*net)->SetDrop(2, false);
    if (!s.ok()) return smig::Fail(s);
    windows.emplace_back(cut_at, absl::Now());
    absl::SleepFor(settle);
  }
  absl::StatusOr<int> tx_rc = (*tx)->Wait(total + absl::Seconds(30));
  absl::StatusOr<int> rx_rc = (*rx)->Wait(absl::Seconds(15));
  if (!tx_rc.ok() || *tx_rc != 0) return smig::Fail(absl::InternalError("sender failed: " + (*tx)->Stderr()));
  if (!rx_rc.ok() || *rx_rc != 0) return smig::Fail(absl::InternalError("receiver failed: " + (*rx)->Stderr()));
  auto sent = smig::testbed::LastSummary(smig::testbed::ReadRecords(dir + "/tx.json"));
  auto got = smig::testbed::LastSummary(smig::testbed::ReadRecords(dir + "/rx.json"));
  if (!sent || !got) return smig::Fail(absl::InternalError("missing summaries"));

  std::vector<double> gaps, heal_gaps;
  for (size_t i = 0; i < windows.size(); ++i) {
    auto [cut_at, heal_at] = windows[i];
    double gap = LargestStall(*got, cut_at, heal_at);
    double heal_gap = LargestStall(*got, heal_at, heal_at + settle);
    gaps.push_back(gap);
    heal_gaps.push_back(heal_gap);
    std::cout << absl::StrCat("{\"bench\":\"failover_gap\",\"stack\":\"", stack, "\",\"cut\":\"", cut,
                              "\",\"index\":", i, ",\"gap_ms\":", gap, ",\"heal_gap_ms\":", heal_gap,
                              "}\n");
  }
  uint64_t lost = sent->messages_sent() - got->unique_received();
  std::cout << absl::StrCat(
      "{\"bench\":\"failover_gap_summary\",\"stack\":\"", stack, "\",\"cut\":\"", cut,
      "\",\"cuts\":", cuts, ",\"down_ms\":", absl::ToInt64Milliseconds(down),
      ",\"gap_ms_p50\":", Percentile(gaps, 0.5), ",\"gap_ms_max\":", Percentile(gaps, 1.0),
      ",\"heal_gap_ms_max\":", Percentile(heal_gaps, 1.0), ",\"max_gap_ms_overall\":",
      got->max_gap_ms(), ",\"messages_sent\":", sent->messages_sent(), ",\"lost\":", lost,
      ",\"duplicates\":", got->duplicates(), ",\"stall_threshold_ms\":10}\n");
  return lost == 0 && got->duplicates() == 0 ? 0 : 2;
}
