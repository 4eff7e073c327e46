#include "dataplane/transport/address.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace smig::transport {

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view host, uint16_t port) {
  SocketAddress out;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return out;
  }
  out.storage_ = {};
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("malformed address \"", host, "\": not a numeric IPv4 or IPv6 address"));
}

absl::StatusOr<SocketAddress> SocketAddress::ParseHostPort(absl::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed address \"", text, "\": expected host:port"));
  }
  absl::string_view host = text.substr(0, colon);
  if (host.find(':') != absl::string_view::npos && host.front() != '[') {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed address \"", text, "\": write IPv6 as [addr]:port"));
  }
  uint32_t port = 0;
  absl::string_view digits = text.substr(colon + 1);
  if (digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed address \"", text, "\": bad port"));
  }
  return Parse(host, static_cast<uint16_t>(port));
}

absl::StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported address family ", sa->sa_family));
  }
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::LocalOf(int fd, absl::string_view what) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockname ", what));
  }
  return FromSockaddr(reinterpret_cast<sockaddr*>(&local), len);
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

socklen_t SocketAddress::length() const {
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::string SocketAddress::Host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET6) return absl::StrCat("[", Host(), "]:", port());
  return absl::StrCat(Host(), ":", port());
}

absl::StatusOr<std::vector<SocketAddress>> ParseAddressList(
    const std::vector<std::string>& hosts, uint16_t port) {
  std::vector<SocketAddress> out;
  out.reserve(hosts.size());
  for (const std::string& h : hosts) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(h, port);
    if (!a.ok()) return a.status();
    out.push_back(*a);
  }
  return out;
}

std::string PackAddresses(const std::vector<SocketAddress>& addresses) {
  std::string packed;
  for (const SocketAddress& a : addresses) {
    packed.append(reinterpret_cast<const char*>(a.sockaddr_ptr()), a.length());
  }
  return packed;
}

std::vector<SocketAddress> UnpackAddresses(const sockaddr* packed, int count) {
  std::vector<SocketAddress> out;
  const char* cursor = reinterpret_cast<const char*>(packed);
  for (int i = 0; i < count; ++i) {
    const auto* sa = reinterpret_cast<const sockaddr*>(cursor);
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (absl::StatusOr<SocketAddress> a = SocketAddress::FromSockaddr(sa, len); a.ok()) out.push_back(*a);
    cursor += len;
  }
  return out;
}

}  // namespace smig::transport
