// Running code inside a named network namespace (`ip netns add NAME`, /run/netns/NAME).
// setns() changes the namespace of the calling thread only, so the work runs on a thread
// of its own; sockets it opens stay in that namespace after the thread ends.
//
//   smig::UniqueFd fd;
//   absl::Status s = smig::RunInNetns("veh", [&]() -> absl::Status {
//     fd = smig::UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
//     return fd.valid() ? absl::OkStatus() : absl::ErrnoToStatus(errno, "socket");
//   });
//
// A name is one of /run/netns (`ip netns add NAME`); one starting with '/' is a path to a
// namespace file itself (/proc/PID/ns/net). An empty name means "the namespace we are in":
// `fn` runs on the calling thread.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace smig {

// Moves the calling thread into namespace `name` for good (for threads that live there,
// such as a recorder's). NOT_FOUND if there is no such namespace.
absl::Status JoinNetns(const std::string& name);

// Runs `fn` in namespace `name` and returns its status, or the error of getting there.
absl::Status RunInNetns(const std::string& name, const std::function<absl::Status()>& fn);

}  // namespace smig
