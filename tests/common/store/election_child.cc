// A replica for leader_election_test's kill -9 case: campaigns in an etcd election and, once
// it leads, prints "leading <revision>" and waits to be killed (or exits after 60 s).
//
//   election_child <etcd host:port> <election name> <replica id>
#include <cstdio>

#include "absl/time/clock.h"
#include "common/store/leader_election.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s ENDPOINT NAME ID\n", argv[0]);
    return 2;
  }
  auto election = smig::store::LeaderElection::Create(
      {.endpoints = {argv[1]}, .name = argv[2], .id = argv[3]});
  if (!election.ok()) {
    std::fprintf(stderr, "%s\n", election.status().ToString().c_str());
    return 2;
  }
  (*election)->Start();
  absl::StatusOr<smig::store::Leadership> term = (*election)->AwaitLeadership(absl::Seconds(30));
  if (!term.ok()) {
    std::fprintf(stderr, "%s\n", term.status().ToString().c_str());
    return 1;
  }
  std::printf("leading %lld\n", static_cast<long long>(term->revision));
  std::fflush(stdout);
  absl::SleepFor(absl::Seconds(60));
  return 0;
}
