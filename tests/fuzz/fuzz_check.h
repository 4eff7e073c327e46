// Check(): an invariant of the code under test broke, so libFuzzer records the input as a
// crash (abort, with the invariant named on stderr).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace smig::fuzz {

inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

}  // namespace smig::fuzz
