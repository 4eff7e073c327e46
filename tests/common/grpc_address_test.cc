#include "common/grpc_address.h"

#include <gtest/gtest.h>

namespace smig {
namespace {

TEST(GrpcAddressTest, TheHostOfEveryFormAClientOrServerIsGiven) {
  EXPECT_EQ(GrpcHost("smig-proximity:7100"), "smig-proximity");
  EXPECT_EQ(GrpcHost("10.0.0.7:7400"), "10.0.0.7");
  EXPECT_EQ(GrpcHost("[fd00::7]:7400"), "fd00::7");
  EXPECT_EQ(GrpcHost("dns:///smig-migrator-replicas:7300"), "smig-migrator-replicas");
  EXPECT_EQ(GrpcHost("dns://10.96.0.10:53/smig-migrator:7300"), "smig-migrator");
  EXPECT_EQ(GrpcHost("dns:smig-decision:7200"), "smig-decision");
  EXPECT_EQ(GrpcHost("ipv4:10.0.0.7:7400,10.0.0.8:7400"), "10.0.0.7");
  EXPECT_EQ(GrpcHost("ipv6:[::1]:7400"), "::1");
  EXPECT_EQ(GrpcHost("::1"), "::1");
  EXPECT_EQ(GrpcHost("unix:/run/smig/pmm.sock"), "");
}

TEST(GrpcAddressTest, OnlyUnixSocketsAndLoopbackAreLocal) {
  for (const char* local : {"unix:/run/smig/pmm.sock", "unix-abstract:smig", "127.0.0.1:0",
                            "127.3.2.1:7100", "localhost:7100", "LOCALHOST:1", "[::1]:7100"}) {
    EXPECT_TRUE(IsLocalAddress(local)) << local;
  }
  for (const char* remote : {"0.0.0.0:7100", "[::]:7100", "10.0.0.7:7400", "smig-proximity:7100",
                             "128.0.0.1:1", "dns:///localhost.example:1"}) {
    EXPECT_FALSE(IsLocalAddress(remote)) << remote;
  }
}

TEST(GrpcAddressTest, IpLiteralsAreAddressesNotNames) {
  EXPECT_TRUE(IsIpLiteral("10.0.0.7"));
  EXPECT_TRUE(IsIpLiteral("fd00::7"));
  EXPECT_FALSE(IsIpLiteral("smig-dataplane.smig.svc"));
  EXPECT_FALSE(IsIpLiteral("10.0.0.7.nip.io"));
  EXPECT_FALSE(IsIpLiteral(""));
}

}  // namespace
}  // namespace smig
