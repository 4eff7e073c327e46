#include "dataplane/transport/address.h"

#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::transport {
namespace {

using ::testing::HasSubstr;

TEST(SocketAddressTest, ParsesIpv4) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse("10.0.0.1", 5000);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 5000);
  EXPECT_EQ(a->length(), sizeof(sockaddr_in));
  EXPECT_EQ(a->Host(), "10.0.0.1");
  EXPECT_EQ(a->ToString(), "10.0.0.1:5000");
}

TEST(SocketAddressTest, ParsesIpv6PlainAndBracketed) {
  for (absl::string_view host : {"fd00::1", "[fd00::1]"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(host, 80);
    ASSERT_TRUE(a.ok()) << host << ": " << a.status();
    EXPECT_EQ(a->family(), AF_INET6) << host;
    EXPECT_EQ(a->port(), 80) << host;
    EXPECT_EQ(a->length(), sizeof(sockaddr_in6)) << host;
    EXPECT_EQ(a->ToString(), "[fd00::1]:80") << host;
  }
}

TEST(SocketAddressTest, RejectsMalformedAndNames) {
  for (absl::string_view host :
       {"10.0.0.300", "10.0.0", "localhost", "example.com", "", "[]", "fd00:::1", "[fd00::1"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(host, 1);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << host << "\"";
  }
  EXPECT_THAT(SocketAddress::Parse("10.0.0.300", 1).status().message(), HasSubstr("10.0.0.300"));
}

TEST(SocketAddressTest, ParseHostPortAcceptsBothFamilies) {
  absl::StatusOr<SocketAddress> v4 = SocketAddress::ParseHostPort("1.2.3.4:5000");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 5000);
  EXPECT_EQ(v4->Host(), "1.2.3.4");

  absl::StatusOr<SocketAddress> v6 = SocketAddress::ParseHostPort("[::1]:65535");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->port(), 65535);
  EXPECT_EQ(v6->Host(), "::1");
}

TEST(SocketAddressTest, ParseHostPortRejectsBadInput) {
  for (absl::string_view text :
       {"1.2.3.4", "1.2.3.4:", ":5000", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:abc",
        "1.2.3.4:99999999999", "::1:5000", "fd00::1", "10.0.0.300:5000", "host:5000", ""}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::ParseHostPort(text);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << text << "\"";
  }
  EXPECT_THAT(SocketAddress::ParseHostPort("1.2.3.4:65536").status().message(),
              HasSubstr("bad port"));
  EXPECT_THAT(SocketAddress::ParseHostPort("::1:5000").status().message(),
              HasSubstr("[addr]:port"));
}

TEST(SocketAddressTest, ToStringRoundTrips) {
  for (absl::string_view text : {"1.2.3.4:5000", "[fd00::1]:5000", "[::1]:0", "0.0.0.0:1"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::ParseHostPort(text);
    ASSERT_TRUE(a.ok()) << text << ": " << a.status();
    EXPECT_EQ(a->ToString(), text);
    absl::StatusOr<SocketAddress> again = SocketAddress::ParseHostPort(a->ToString());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *a);
  }
  // Text in another spelling comes back canonical.
  EXPECT_EQ(SocketAddress::ParseHostPort("[fd00:0:0::1]:7")->ToString(), "[fd00::1]:7");
}

TEST(SocketAddressTest, SetPortAndEquality) {
  SocketAddress a = *SocketAddress::Parse("10.0.0.1", 1);
  SocketAddress b = *SocketAddress::Parse("10.0.0.1", 2);
  EXPECT_FALSE(a == b);
  a.set_port(2);
  EXPECT_EQ(a.port(), 2);
  EXPECT_TRUE(a == b);
  SocketAddress c = *SocketAddress::Parse("fd00::1", 1);
  c.set_port(9);
  EXPECT_EQ(c.ToString(), "[fd00::1]:9");
}

TEST(SocketAddressTest, FromSockaddrRoundTripsAndRejectsOtherFamilies) {
  for (absl::string_view text : {"1.2.3.4:5000", "[fd00::2]:6000"}) {
    SocketAddress a = *SocketAddress::ParseHostPort(text);
    absl::StatusOr<SocketAddress> b = SocketAddress::FromSockaddr(a.sockaddr_ptr(), a.length());
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->ToString(), text);
  }
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_EQ(SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof un)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // Too short for its family.
  SocketAddress v6 = *SocketAddress::Parse("fd00::1", 1);
  EXPECT_FALSE(SocketAddress::FromSockaddr(v6.sockaddr_ptr(), sizeof(sockaddr_in)).ok());
}

TEST(ParseAddressListTest, ParsesAllWithOnePortAndNamesTheBadEntry) {
  absl::StatusOr<std::vector<SocketAddress>> list =
      ParseAddressList({"10.0.0.1", "fd00::1"}, 7000);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].ToString(), "10.0.0.1:7000");
  EXPECT_EQ((*list)[1].ToString(), "[fd00::1]:7000");

  absl::StatusOr<std::vector<SocketAddress>> bad =
      ParseAddressList({"10.0.0.1", "gateway.local"}, 7000);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("gateway.local"));
}

TEST(PackAddressesTest, PacksBackToBackWithEachFamilysLength) {
  std::vector<SocketAddress> addrs = *ParseAddressList({"10.0.0.1", "fd00::1", "10.0.0.2"}, 5);
  std::string packed = PackAddresses(addrs);
  ASSERT_EQ(packed.size(), 2 * sizeof(sockaddr_in) + sizeof(sockaddr_in6));
  EXPECT_EQ(std::memcmp(packed.data(), addrs[0].sockaddr_ptr(), sizeof(sockaddr_in)), 0);
  EXPECT_EQ(std::memcmp(packed.data() + sizeof(sockaddr_in), addrs[1].sockaddr_ptr(),
                        sizeof(sockaddr_in6)),
            0);
  EXPECT_EQ(std::memcmp(packed.data() + sizeof(sockaddr_in) + sizeof(sockaddr_in6),
                        addrs[2].sockaddr_ptr(), sizeof(sockaddr_in)),
            0);
  EXPECT_EQ(PackAddresses({}), "");
}

}  // namespace
}  // namespace smig::transport

namespace smig::transport {
namespace {

TEST(ParseHostPortTest, PortMustBeDigitsOnly) {
  for (const char* bad : {"1.2.3.4: 5000", "1.2.3.4:+5000", "1.2.3.4:5000 ", "1.2.3.4:0x10"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::ParseHostPort(bad);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(SocketAddress::ParseHostPort("1.2.3.4:05000").ok());
}

TEST(LocalOfTest, GivesThePortThatBindingPortZeroPicked) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  absl::StatusOr<SocketAddress> any = SocketAddress::ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(any.ok());
  ASSERT_EQ(::bind(fd, any->sockaddr_ptr(), any->length()), 0);
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd, "UDP test");
  ::close(fd);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->Host(), "127.0.0.1");
  EXPECT_NE(local->port(), 0);

  absl::StatusOr<SocketAddress> bad = SocketAddress::LocalOf(-1, "UDP test");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);  // EBADF
  EXPECT_THAT(bad.status().message(), HasSubstr("getsockname UDP test"));
}

}  // namespace
}  // namespace smig::transport
