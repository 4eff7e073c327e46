// smig-linkemu's control protocol (tools/linkemu/link_model.h): every line a client writes
// to its control socket or stdin goes through ParseCommandLine, and its values through
// ParseDelay, ParseRate and ParseLossPercent. Checks that what parses is in range: no
// negative delay or jitter, loss within 0..1, link names valid.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_check.h"
#include "tools/linkemu/link_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smig::linkemu;
  using smig::fuzz::Check;
  const absl::string_view line(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<Command>> cmds = ParseCommandLine(line);
  if (cmds.ok()) {
    for (const Command& c : *cmds) {
      if (c.kind != Command::Kind::kLink) continue;
      const LinkCommand& l = c.link;
      Check(ValidName(l.name), "a link command names a valid link");
      Check(!l.delay || *l.delay >= absl::ZeroDuration(), "no negative delay");
      Check(!l.jitter || *l.jitter >= absl::ZeroDuration(), "no negative jitter");
      Check(!l.loss || (*l.loss >= 0 && *l.loss <= 1), "loss is a probability");
    }
  }
  if (absl::StatusOr<absl::Duration> d = ParseDelay(line); d.ok()) {
    Check(*d >= absl::ZeroDuration(), "ParseDelay is never negative");
  }
  (void)ParseRate(line);
  if (absl::StatusOr<double> loss = ParseLossPercent(line); loss.ok()) {
    Check(*loss >= 0 && *loss <= 1, "ParseLossPercent gives a probability");
  }
  return 0;
}
