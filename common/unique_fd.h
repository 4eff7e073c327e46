// UniqueFd: owns one file descriptor and closes it once.
//
//   UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
//   if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket");
//
// Owners hand the descriptor to poll loops by value (get()), so the ownership has to sit
// in exactly one place that cannot forget to close it.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace smig {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes the descriptor now; returns close()'s errno (0 on success) because for a file
  // it is the last chance to hear that buffered data did not reach the disk.
  int reset(int fd = -1) {
    int err = 0;
    if (fd_ >= 0 && ::close(fd_) != 0) err = errno;
    fd_ = fd;
    return err;
  }

 private:
  int fd_ = -1;
};

}  // namespace smig
