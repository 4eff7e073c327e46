// A real, single-member etcd for tests: free loopback ports, a temporary data directory,
// and etcd's fast-failure timings (--heartbeat-interval=50 --election-timeout=500, so that a
// lease may have a TTL of 1 s; see common/store/leader_election.h).
//
//   absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
//   ASSERT_TRUE(etcd.ok()) << etcd.status();    // fails, saying why, if etcd is missing
//   auto store = EtcdStore::Create({.endpoints = {(*etcd)->endpoint()}});
//   (*etcd)->Kill();        // SIGKILL: a crash
//   (*etcd)->Restart();     // the same data directory and ports; returns once it answers
//
// The destructor kills etcd and deletes the directory. etcd also dies with the thread that
// started it (PR_SET_PDEATHSIG), so a crashed test leaves no etcd behind; start it from the
// test's main thread. Its log is in log_path() (the data directory's sibling).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace smig::store::testing {

class EtcdProcess {
 public:
  static constexpr char kDefaultBinary[] = "/usr/bin/etcd";

  // FAILED_PRECONDITION (asking for scripts/install-deps) if `binary` is missing;
  // DEADLINE_EXCEEDED (with the log's tail) if etcd does not answer within `timeout`.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      const std::string& binary = kDefaultBinary, absl::Duration timeout = absl::Seconds(15));
  ~EtcdProcess();

  // host:port of the client URL.
  std::string endpoint() const;
  const std::string& log_path() const { return log_path_; }
  bool running() const { return pid_ > 0; }

  // SIGKILL, and waits until it is gone.
  absl::Status Kill();
  // Starts it again (killing it first if it runs) on the same data and ports; returns once
  // it answers.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(15));

 private:
  EtcdProcess() = default;
  absl::Status Spawn();
  absl::Status AwaitReady(absl::Duration timeout);
  std::string LogTail() const;

  std::string binary_;
  std::string dir_;  // holds data/ and etcd.log
  std::string log_path_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace smig::store::testing
