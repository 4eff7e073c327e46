// The engine tests' loop step: hand an engine (EdgeEngine or VehicleEngine) what its fake
// endpoint received, as the daemon's loop does, up to `max` messages (the last call gets
// the empty answer too, as in the loop).
#pragma once

#include "absl/time/time.h"
#include "tests/fakes/fake_endpoint.h"

namespace smig::dataplane::testing {

template <typename Engine>
void Deliver(Engine& engine, transport::testing::FakeEndpoint& ep, absl::Time now, int max) {
  for (int i = 0; i < max; ++i) {
    auto in = ep.Receive(absl::ZeroDuration());
    const bool more = in.ok() && in->has_value();
    engine.Handle(in, now);
    if (!more) break;
  }
}

}  // namespace smig::dataplane::testing
