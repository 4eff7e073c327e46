// StackCounters: what the SCTP stack of this process (usrsctp) or network namespace
// (kernel) counts about loss recovery: retransmission timeouts and retransmitted chunks. They tell a spurious timeout (a T3 with nothing lost) from a loss,
// and show where a gap came from. Both stacks count for all associations together.
//
//   absl::StatusOr<StackCounters> c = ReadStackCounters(v1::STACK_KIND_USERLAND);
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/transport/endpoint.h"

namespace smig::transport {

struct StackCounters {
  uint64_t t3_timeouts = 0;           // retransmission (T3-rtx) timer expiries
  uint64_t fast_retransmits = 0;      // DATA chunks fast-retransmitted
  uint64_t retransmitted_chunks = 0;  // DATA chunks sent again, by either means
};

// The stack's counters; UNIMPLEMENTED for a stack that exports none, NOT_FOUND when the
// kernel's SNMP file is missing (no SCTP module).
absl::StatusOr<StackCounters> ReadStackCounters(v1::StackKind stack);

// Parses Linux's /proc/net/sctp/snmp text ("SctpT3RtxExpireds   12" lines).
StackCounters ParseKernelSctpSnmp(absl::string_view text);

}  // namespace smig::transport
