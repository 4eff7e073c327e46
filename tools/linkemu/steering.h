// Steering packets into NFQUEUE queues with iptables (iptables-nft by default, so
// `nft list ruleset` shows it; this kernel has no nft `queue` expression): chains of our own
// in the mangle table of each network namespace we shape in, PREFIX_IN hooked into
// PREROUTING and PREFIX_OUT into POSTROUTING, one rule per queue, for IPv4 and IPv6.
//
//   Steering steering({.iptables = "nft", .chain_prefix = "SMIG_LINKEMU"});
//   SMIG_RETURN_IF_ERROR(steering.AddNetns(""));       // our chains, in this namespace
//   SMIG_RETURN_IF_ERROR(steering.AddRules(
//       {{.netns = "", .ingress = true, .dev = "c0", .queue = 101}}));
//   ...
//   steering.RemoveAll();                              // ~Steering does it too
//
// Namespaces are named as in `ip netns` ("" = ours) or by a path (/proc/PID/ns/net); the
// iptables commands run there through nsenter.
//
// Ownership: a Steering owns the chains it created, with every rule in them, in each
// namespace AddNetns succeeded for, and the mangle tables it created there (removed at the
// end only if nothing else has rules in them). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace smig::linkemu {

struct SteeringOptions {
  std::string iptables = "nft";  // nft (iptables-nft) or legacy (iptables-legacy)
  bool ipv6 = true;              // ip6tables too
  bool bypass = false;           // NFQUEUE --queue-bypass: accept if nobody listens
  bool replace = false;          // remove our chains left by an earlier run first
  std::string chain_prefix = "SMIG_LINKEMU";
};

// Packets entering (ingress) or leaving `dev` in namespace `netns` go to NFQUEUE `queue`.
struct QueueRule {
  std::string netns;
  bool ingress = true;
  std::string dev;
  uint32_t queue = 0;
};

class Steering {
 public:
  explicit Steering(SteeringOptions options) : opt_(std::move(options)) {}
  ~Steering() { RemoveAll(); }
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;

  // Creates our chains in `netns` and hooks them in. FAILED_PRECONDITION, naming
  // --replace, if they exist already (another instance, or a killed one) and `replace` is
  // off. On an error the chains it made there are removed again.
  absl::Status AddNetns(const std::string& netns);
  // Appends one rule per QueueRule in each IP family (their namespaces added before); all
  // or nothing.
  absl::Status AddRules(const std::vector<QueueRule>& rules);
  // Removes our chains with their rules everywhere, then the mangle tables we created if
  // they are empty. Idempotent.
  void RemoveAll();

 private:
  struct Netns {
    std::string name;
    std::vector<std::string> created_tables;  // ip/ip6 mangle tables we created there
  };
  std::vector<std::string> Binaries() const;
  std::string Chain(bool ingress) const;
  std::vector<std::string> Ipt(const std::string& netns, const std::string& bin,
                               std::vector<std::string> args) const;
  std::vector<std::string> RuleArgs(const QueueRule& r, const char* op) const;
  absl::Status CreateChains(Netns& n, bool* created);
  void RemoveChains(const std::string& netns, const std::string& bin) const;
  void RemoveTableIfEmpty(const std::string& netns, const std::string& family) const;

  SteeringOptions opt_;
  std::vector<Netns> netns_;  // where our chains are
};

}  // namespace smig::linkemu
