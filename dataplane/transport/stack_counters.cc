#include "dataplane/transport/stack_counters.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "dataplane/transport/userland_endpoint.h"

namespace smig::transport {

StackCounters ParseKernelSctpSnmp(absl::string_view text) {
  StackCounters c;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    uint64_t v = 0;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &v)) continue;
    if (f[0] == "SctpT3RtxExpireds") c.t3_timeouts = v;
    if (f[0] == "SctpFastRetransmits") c.fast_retransmits = v;
    if (f[0] == "SctpT3Retransmits") c.retransmitted_chunks += v;
    if (f[0] == "SctpFastRetransmits") c.retransmitted_chunks += v;
  }
  return c;
}

absl::StatusOr<StackCounters> ReadStackCounters(v1::StackKind stack) {
  switch (stack) {
    case v1::STACK_KIND_USERLAND:
      return UserlandStackCounters();
    case v1::STACK_KIND_KERNEL: {
      std::ifstream in("/proc/net/sctp/snmp");
      if (!in) return absl::NotFoundError("/proc/net/sctp/snmp is missing (no kernel SCTP)");
      std::stringstream text;
      text << in.rdbuf();
      return ParseKernelSctpSnmp(text.str());
    }
    default:
      return absl::UnimplementedError("this stack exports no counters");
  }
}

}  // namespace smig::transport
