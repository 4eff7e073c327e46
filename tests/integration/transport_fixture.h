// The fixtures of the transport integration suite (transport_test.cc,
// transport_path_test.cc): the stack under test from $SMIG_TEST_STACK, and TwoHostTest,
// two network namespaces joined by two veth paths with smig-sctpcat as the peers.
#pragma once

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "dataplane/transport/endpoint.h"
#include "gtest/gtest.h"
#include "tests/integration/testbed.h"

namespace smig::transport::itest {

using testbed::TwoHostNet;

inline std::string StackName() {
  const char* s = std::getenv("SMIG_TEST_STACK");
  return s ? s : "userland";
}
inline StackChoice Stack() {
  return StackName() == "kernel" ? StackChoice::kKernel : StackChoice::kUserland;
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override { std::cout << "[stack] " << StackName() << "\n"; }
};

class TwoHostTest : public TransportTest {
 protected:
  void SetUp() override {
    TransportTest::SetUp();
    if (!testbed::CanCreateNamespaces()) GTEST_SKIP() << "needs root for network namespaces";
    absl::StatusOr<std::unique_ptr<TwoHostNet>> net = TwoHostNet::Create();
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = std::move(*net);
    dir_ = testbed::ScratchDir();
  }
  void TearDown() override {
    if (!HasFailure()) testbed::RemoveScratch(dir_);
  }

  std::vector<std::string> Cat(std::vector<std::string> args) const {
    args.insert(args.begin(), {SMIG_SCTPCAT, "--sctp-stack=" + StackName()});
    return args;
  }
  std::vector<std::string> Receiver() const {
    return net_->InB(Cat({"--listen", "--local=" + TwoHostNet::AddrB(1) + "," + TwoHostNet::AddrB(2),
                          "--port=5000", "--once", "--stats-interval=500ms"}));
  }
  std::vector<std::string> Sender(std::vector<std::string> extra) const {
    std::vector<std::string> a =
        Cat({"--local=" + TwoHostNet::AddrA(1) + "," + TwoHostNet::AddrA(2),
             "--peer=" + TwoHostNet::AddrB(1) + "," + TwoHostNet::AddrB(2), "--peer-port=5000"});
    a.insert(a.end(), extra.begin(), extra.end());
    return net_->InA(a);
  }
  std::string Out(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<TwoHostNet> net_;
  std::string dir_;
};

struct Window {
  uint64_t path1 = 0, path2 = 0;
};

// Per-path packets A sent during `d`; `pid` is any process in A.
inline Window Measure(pid_t pid, absl::Duration d) {
  uint64_t a1 = TwoHostNet::TxPackets(pid, 1).value_or(0);
  uint64_t a2 = TwoHostNet::TxPackets(pid, 2).value_or(0);
  absl::SleepFor(d);
  return {TwoHostNet::TxPackets(pid, 1).value_or(0) - a1, TwoHostNet::TxPackets(pid, 2).value_or(0) - a2};
}

}  // namespace smig::transport::itest
