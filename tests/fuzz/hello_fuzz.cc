// HELLO (dataplane/protocol/hello.h): the payload of a CONTROL frame, parsed as the
// ControlMessage it claims to be; a HELLO in it goes through HelloAuthenticator::Verify,
// as the vehicle does before anything else. A forged MAC must never verify; the same
// HELLO signed with its generation's session key must, and must stop verifying when any
// signed field changes or under the next generation's key.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_helpers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smig::dataplane;
  using smig::fuzz::Check;
  static const HelloAuthenticator auth = smig::fuzz::Auth();
  v1::ControlMessage m;
  if (!m.ParseFromArray(data, static_cast<int>(size)) || !m.has_hello()) return 0;
  const v1::Hello& hello = m.hello();
  absl::Status given = auth.Verify(hello);
  Check(!given.ok() || hello.mac().size() == 32, "only a 32-byte MAC verifies");
  if (hello.server_id().empty()) {
    Check(absl::IsInvalidArgument(given), "a HELLO without a server id is malformed");
    return 0;
  }
  v1::Hello good = smig::fuzz::Resign(hello);
  const uint64_t g = smig::fuzz::SigningGeneration(hello);
  const HelloAuthenticator signer = g == 1 ? auth : smig::fuzz::Auth(g);
  Check(signer.Verify(good).ok(), "a HELLO signed with the key verifies");
  Check(!smig::fuzz::Auth(g + 1).Verify(good).ok(), "the next generation's key fails");
  // Round trip through the wire, as it travels.
  v1::Hello parsed;
  Check(parsed.ParseFromString(good.SerializeAsString()), "a signed HELLO parses back");
  Check(signer.Verify(parsed).ok(), "a signed HELLO verifies after the wire");
  v1::Hello tampered = good;
  tampered.set_generation(good.generation() + 1);
  Check(!signer.Verify(tampered).ok(), "a changed generation fails");
  tampered = good;
  tampered.set_session_id(good.session_id() ^ 1);
  Check(!signer.Verify(tampered).ok(), "a changed session fails");
  tampered = good;
  tampered.set_server_id(good.server_id() + "x");
  Check(!signer.Verify(tampered).ok(), "a changed server id fails");
  return 0;
}
