// SocketAddress: an IPv4 or IPv6 address with a port, parsed from text.
//
//   absl::StatusOr<SocketAddress> a = SocketAddress::Parse("10.0.0.1", 5000);
//   absl::StatusOr<SocketAddress> b = SocketAddress::ParseHostPort("[fd00::1]:5000");
//   connect(fd, a->sockaddr(), a->length());
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace smig::transport {

class SocketAddress {
 public:
  SocketAddress() = default;

  // `host` is a numeric IPv4 or IPv6 literal (no names: no DNS on the data path).
  static absl::StatusOr<SocketAddress> Parse(absl::string_view host, uint16_t port);
  // "1.2.3.4:5000" or "[::1]:5000".
  static absl::StatusOr<SocketAddress> ParseHostPort(absl::string_view text);
  // From a sockaddr the kernel or usrsctp filled in; fails on other families.
  static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* sa, socklen_t len);
  // The address socket `fd` is bound to (getsockname), e.g. to learn the port that binding
  // port 0 picked. On failure the errno's code, the message "getsockname <what>: ...".
  static absl::StatusOr<SocketAddress> LocalOf(int fd, absl::string_view what);

  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const;
  std::string Host() const;
  std::string ToString() const;  // "1.2.3.4:5000" / "[::1]:5000"

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.ToString() == b.ToString();
  }

 private:
  sockaddr_storage storage_{};
};

// Parses each host with the same port; the error names the bad entry.
absl::StatusOr<std::vector<SocketAddress>> ParseAddressList(
    const std::vector<std::string>& hosts, uint16_t port);

// Packs addresses back to back, as sctp_bindx/sctp_connectx and their usrsctp twins want.
std::string PackAddresses(const std::vector<SocketAddress>& addresses);
// The reverse, for what sctp_getpaddrs/sctp_getladdrs return; skips other families.
std::vector<SocketAddress> UnpackAddresses(const sockaddr* packed, int count);

}  // namespace smig::transport
