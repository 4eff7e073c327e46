// The wire frame decoder (dataplane/protocol/frame.h): every SCTP message an edge or a
// vehicle receives goes through DecodeFrame first. Checks that a rejected frame names its
// FrameError, and that an accepted one encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/protocol/frame.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smig::dataplane;
  using smig::fuzz::Check;
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  if (!f.ok()) {
    Check(FrameErrorOf(f.status()).has_value(), "a rejected frame has a FrameError");
    Check(!FrameErrorName(*FrameErrorOf(f.status())).empty(), "every FrameError has a name");
    return 0;
  }
  Check(f->payload.data() >= wire.data() &&
            f->payload.data() + f->payload.size() <= wire.data() + wire.size(),
        "the payload views into the input");
  const std::string again = EncodeFrame(f->header, f->payload);
  Check(again == wire, "an accepted frame encodes back to its bytes");
  char header[kFrameHeaderSize];
  EncodeFrameHeader(f->header, f->payload.size(), header);
  Check(absl::string_view(header, kFrameHeaderSize) == wire.substr(0, kFrameHeaderSize),
        "EncodeFrameHeader agrees with EncodeFrame");
  return 0;
}
