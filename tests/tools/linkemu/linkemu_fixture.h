// The bed of smig-linkemu's integration tests: two network namespaces joined by two veth
// pairs ("cell" and "dsrc", the two radios of a car), UDP echo servers in B, and
// smig-linkemu run in namespace A shaping both; helpers to send traffic and read stats.
// Needs root; the fixture skips otherwise.
//
//   TEST_F(LinkEmuTest, Something) {
//     StartEmu(Cell() + " delay 20ms");           // smig-linkemu in A, with a control socket
//     RttSummary s = Rtt(1, 20);                  // 20 UDP round trips over cell
//     Control c(sock_);
//     EXPECT_EQ(c.Send("link cell down"), "ok\n");
//   }
//
// Ownership: the fixture creates and deletes its namespaces, its directory and its
// smig-linkemu process; sockets from SocketIn belong to the caller (UniqueFd).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace smig::linkemu::test {

int64_t NowNs();
double Ms(int64_t ns);

// Runs a shell command; its output, or an error with the output.
absl::StatusOr<std::string> Sh(const std::string& cmd);
std::string ReadFile(const std::string& path);
bool Have(const std::string& program);
// A socket created inside network namespace `ns` (it stays there whichever thread uses it);
// invalid on failure.
UniqueFd SocketIn(const std::string& ns, int type);
sockaddr_in Addr(const std::string& ip, uint16_t port);

// Echoes UDP datagrams on ip:port in a namespace.
class UdpEcho {
 public:
  UdpEcho(const std::string& ns, const std::string& ip, uint16_t port);
  ~UdpEcho();
  bool ok() const { return ok_; }

 private:
  UniqueFd fd_;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Probe {
  int64_t sent_ns = 0;
  int64_t rtt_ns = -1;  // -1: lost
};

// Sends `count` probes from ns:ip to peer:port every `interval`, and collects the echoes
// until `linger` after the last one.
std::vector<Probe> Probes(const std::string& ns, const std::string& ip, const std::string& peer,
                          uint16_t port, int count, absl::Duration interval,
                          absl::Duration linger = absl::Milliseconds(500), size_t size = 64,
                          const std::atomic<bool>* stop = nullptr);

struct RttSummary {
  int sent = 0, received = 0;
  double min = 0, median = 0, p90 = 0, max = 0;
};
RttSummary Summarize(const std::vector<Probe>& probes);
std::string Str(const RttSummary& s);

// CPU seconds (user+system) a process has used.
double CpuSeconds(pid_t pid);

// One smig-linkemu process.
class Emu {
 public:
  ~Emu();
  absl::Status Start(const std::string& ns, const std::vector<std::string>& args,
                     const std::string& out_path, bool wait_ready = true);
  // The exit code, or -1 if it did not exit within `timeout` (then it is killed).
  int Wait(absl::Duration timeout);
  void Signal(int sig);
  // The real smig-linkemu (ip netns exec execs it, so it is the same pid).
  pid_t pid() const { return pid_; }
  std::string Output() const { return ReadFile(out_); }
  std::string Stderr() const { return ReadFile(out_ + ".err"); }

 private:
  pid_t pid_ = -1;
  std::string out_;
};

// A control connection: each Send returns the JSON lines and the status line.
class Control {
 public:
  explicit Control(const std::string& path);
  bool ok() const { return fd_.valid(); }
  // Returns everything answered up to and including the status line.
  std::string Send(const std::string& line);

 private:
  UniqueFd fd_;
  std::string buf_;
};

// A number field of the first JSON object after `"key":` following `section` in `json`.
double Field(const std::string& json, const std::string& section, const std::string& key);

class LinkEmuTest : public ::testing::Test {
 protected:
  static constexpr uint16_t kPort = 7000;

  void SetUp() override;
  void TearDown() override;

  // Link specs: the radio's interface in A and its veth peer in B (shaped there, so that
  // senders in A are not throttled by their own held packets).
  std::string Cell() const { return "cell dev cella peer " + ns_b_ + ":cellb"; }
  std::string Dsrc() const { return "dsrc dev dsrca peer " + ns_b_ + ":dsrcb"; }
  static std::string A(int path) { return absl::StrCat("10.78.", path, ".2"); }
  static std::string B(int path) { return absl::StrCat("10.78.", path, ".1"); }

  void StartEmu(const std::string& links, std::vector<std::string> extra = {});
  RttSummary Rtt(int path, int count, absl::Duration interval = absl::Milliseconds(10));
  std::string Ruleset(const std::string& ns);

  std::string ns_a_, ns_b_, dir_, sock_;
  std::unique_ptr<UdpEcho> echo1_, echo2_;
  std::unique_ptr<Emu> emu_;
};

}  // namespace smig::linkemu::test
