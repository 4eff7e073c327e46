#include "common/netns.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(NetnsTest, EmptyNameRunsHereOnTheCallingThread) {
  const std::thread::id me = std::this_thread::get_id();
  std::thread::id ran_on;
  EXPECT_TRUE(RunInNetns("", [&] {
                ran_on = std::this_thread::get_id();
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(ran_on, me);
  EXPECT_EQ(RunInNetns("", [] { return absl::DataLossError("x"); }), absl::DataLossError("x"));
}

TEST(NetnsTest, UnknownNamespaceIsNotFoundAndTheWorkDoesNotRun) {
  bool ran = false;
  absl::Status s = RunInNetns("smig-no-such-namespace-xyz", [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("smig-no-such-namespace-xyz"), absl::string_view::npos);
  EXPECT_FALSE(ran);
}

TEST(NetnsTest, APathNamesTheNamespaceFileItself) {
  // Our own namespace by path: the work runs (on another thread) and sees no error.
  std::thread::id ran_on;
  EXPECT_TRUE(RunInNetns("/proc/self/ns/net", [&] {
                ran_on = std::this_thread::get_id();
                return absl::OkStatus();
              }).ok());
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(RunInNetns("/nonexistent/ns", [] { return absl::OkStatus(); }).code(),
            absl::StatusCode::kNotFound);
}

TEST(UniqueFdTest, ClosesOnceAndMoves) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    UniqueFd a(fds[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), fds[0]);
  }
  EXPECT_EQ(close(fds[0]), -1);  // already closed by b
  UniqueFd w(fds[1]);
  EXPECT_EQ(w.reset(), 0);
  EXPECT_FALSE(w.valid());
}

}  // namespace
}  // namespace smig
