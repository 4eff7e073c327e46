// Session keys for tests: a fixed key per name, and HELLOs signed as an edge of a given
// generation signs them (with generation 1's key ratcheted forward).
//
//   const std::string key = TestSessionKey("session-77");
//   engine.AdmitSession(77, key);
//   v1::Hello h = SignHello(key, 77, "edge-b", 2);
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/protocol/hello.h"

namespace smig::dataplane::testing {

// kSessionKeySize bytes made from `name` (repeated): different names, different keys.
inline std::string TestSessionKey(absl::string_view name) {
  std::string key;
  if (name.empty()) name = "k";
  while (key.size() < kSessionKeySize) key.append(name.data(), name.size());
  key.resize(kSessionKeySize);
  return key;
}

// An edge's HELLO of `generation`, `key` being the session's key of generation 1.
inline v1::Hello SignHello(const std::string& key, uint64_t session, absl::string_view server,
                           uint64_t generation) {
  return HelloAuthenticator::Create(RatchetSessionKey(key, 1, generation))
      ->Sign(session, server, generation);
}

}  // namespace smig::dataplane::testing
