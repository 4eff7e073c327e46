#include "common/netns.h"

#include <fcntl.h>
#include <sched.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace smig {

absl::Status JoinNetns(const std::string& name) {
  const std::string path = name.starts_with('/') ? name : absl::StrCat("/run/netns/", name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat("no network namespace ", name))
                           : absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  if (setns(fd.get(), CLONE_NEWNET) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("join network namespace ", name));
  }
  return absl::OkStatus();
}

absl::Status RunInNetns(const std::string& name, const std::function<absl::Status()>& fn) {
  if (name.empty()) return fn();
  absl::Status status;
  std::thread t([&] {
    status = JoinNetns(name);
    if (status.ok()) status = fn();
  });
  t.join();
  return status;
}

}  // namespace smig
