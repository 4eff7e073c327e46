#include "common/grpc_address.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace smig {

bool IsUnixSocket(absl::string_view address) {
  return absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:");
}

std::string GrpcHost(absl::string_view address) {
  if (IsUnixSocket(address)) return "";
  if (!absl::ConsumePrefix(&address, "ipv4:") && !absl::ConsumePrefix(&address, "ipv6:") &&
      absl::ConsumePrefix(&address, "dns:") && absl::ConsumePrefix(&address, "//")) {
    address.remove_prefix(std::min(address.size(), address.find('/') + 1));  // the authority
  }
  address = address.substr(0, address.find(','));  // ipv4:a:p,b:p lists
  if (absl::ConsumePrefix(&address, "[")) return std::string(address.substr(0, address.find(']')));
  size_t colon = address.find(':');
  if (colon != absl::string_view::npos && address.find(':', colon + 1) == absl::string_view::npos) {
    address = address.substr(0, colon);  // host:port; more colons: a bare IPv6 address
  }
  return std::string(address);
}

bool IsIpLiteral(absl::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool IsLocalAddress(absl::string_view address) {
  if (IsUnixSocket(address)) return true;
  std::string host = absl::AsciiStrToLower(GrpcHost(address));
  if (host == "localhost" || host == "::1") return true;
  unsigned char v4[4];
  return inet_pton(AF_INET, host.c_str(), v4) == 1 && v4[0] == 127;
}

}  // namespace smig
