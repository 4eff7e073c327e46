// smig-bench-throughput: bulk throughput of ONE association on loopback, measured in the
// same run against a plain TCP connection, so the result is a ratio that survives moving
// between machines.
//
//   smig-bench-throughput --sizes=16384,65536 --seconds=3 --profile=default
//
// It runs, for each message size:
//   kernel    two smig Endpoints on the kernel stack (plain SCTP) when KernelSctpAvailable(),
//             otherwise a line with "skipped":true. All kernel runs come first, so that
//             they never share the process with a running usrsctp stack.
//   tcp       a TCP connection over 127.0.0.1; a sender thread write()s messages of the
//             given size, the main thread read()s and counts bytes.
//   userland  two smig Endpoints (usrsctp, SCTP over UDP on --udp-port) in this process:
//             a listener on 127.0.0.1 and a connector; a sender thread calls Send() in a
//             loop, the main thread Receive()s and counts the bytes of whole messages.
//             Both ends share the process's one usrsctp stack.
// and then a "throughput_ratio" line per size. Every line on stdout is one JSON object.
// Only bytes received inside the measuring window count. MB is 10^6 bytes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/unique_fd.h"
#include "dataplane/transport/address.h"
#include "dataplane/transport/endpoint.h"

ABSL_FLAG(std::vector<std::string>, sizes, std::vector<std::string>({"16384", "65536"}),
          "Message sizes in bytes, comma-separated");
ABSL_FLAG(double, seconds, 3.0, "Measuring window per stack and size, in seconds");
ABSL_FLAG(std::string, profile, "default", "Failover profile: fast or default (RFC 4960 timers)");
ABSL_FLAG(uint32_t, udp_port, 9899, "UDP encapsulation port of this process's usrsctp stack");
ABSL_FLAG(uint32_t, sctp_port, 0,
          "SCTP port of the listening endpoint (0: the stack picks a free one for each run)");
ABSL_FLAG(uint32_t, udp_rcvbuf, 0,
          "Experiment: after usrsctp starts, set this SO_RCVBUF (SO_RCVBUFFORCE) on its UDP "
          "socket, which usrsctp fixes at 128 KiB. 0 leaves it alone");
ABSL_FLAG(std::vector<std::string>, stacks, std::vector<std::string>({"userland", "tcp", "kernel"}),
          "Which to run, comma-separated: userland, tcp, kernel");

namespace {

namespace t = ::smig::transport;

constexpr absl::Duration kSetupTimeout = absl::Seconds(5);
// After the window the sender is told to stop; draining may take this long at most.
constexpr absl::Duration kDrainTimeout = absl::Seconds(5);

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

struct Result {
  std::string stack;
  size_t msg_bytes = 0;
  double seconds = 0;      // the measured window
  uint64_t bytes = 0;      // received inside the window
  uint64_t msgs = 0;       // whole messages (SCTP) or bytes / msg_bytes (TCP) in the window
  double cpu_cores = 0;    // process CPU time (all threads) / window
  uint64_t send_errors = 0;
  uint64_t recv_errors = 0;
  std::string first_error;
  int udp_rcvbuf = 0;      // --udp-rcvbuf experiment: the size the kernel reported
  double mb_per_s() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
};

void PrintResult(const Result& r, const std::string& profile) {
  std::string line = absl::StrFormat(
      "{\"bench\":\"throughput\",\"stack\":\"%s\",\"profile\":\"%s\",\"msg_bytes\":%d,"
      "\"seconds\":%.3f,\"bytes\":%d,\"msgs\":%d,\"mb_per_s\":%.1f,\"msgs_per_s\":%.1f,"
      "\"cpu_cores\":%.2f,\"send_errors\":%d,\"recv_errors\":%d",
      r.stack, profile, r.msg_bytes, r.seconds, r.bytes, r.msgs, r.mb_per_s(),
      r.seconds > 0 ? r.msgs / r.seconds : 0.0, r.cpu_cores, r.send_errors, r.recv_errors);
  if (r.udp_rcvbuf != 0) absl::StrAppend(&line, ",\"udp_rcvbuf\":", r.udp_rcvbuf);
  if (!r.first_error.empty()) absl::StrAppend(&line, ",\"error\":\"", Escape(r.first_error), "\"");
  std::cout << line << "}" << std::endl;
}

void PrintSkipped(const std::string& stack, size_t msg_bytes, const std::string& profile,
                  absl::string_view reason) {
  std::cout << absl::StrFormat(
                   "{\"bench\":\"throughput\",\"stack\":\"%s\",\"profile\":\"%s\","
                   "\"msg_bytes\":%d,\"skipped\":true,\"reason\":\"%s\"}",
                   stack, profile, msg_bytes, Escape(reason))
            << std::endl;
}

// ---------------------------------------------------------------- SCTP (either stack)

// The experiment of --udp-rcvbuf: finds this process's UDP sockets bound to `port` (usrsctp's
// encapsulation sockets) and sets their receive buffer. Returns the size the kernel reports
// for the first one (twice the request, as Linux books overhead), or 0 if none was found.
int SetUsrsctpUdpRcvbuf(uint16_t port, int bytes) {
  int reported = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    int type = 0;
    socklen_t tlen = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM) continue;
    absl::StatusOr<t::SocketAddress> bound = t::SocketAddress::LocalOf(fd, "");
    if (!bound.ok() || bound->port() != port) continue;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));  // capped by rmem_max
    }
    int now = 0;
    socklen_t nlen = sizeof(now);
    if (reported == 0 && getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &now, &nlen) == 0) reported = now;
  }
  return reported;
}

// Waits on `ep` for ASSOC_UP; other incoming items are ignored.
absl::StatusOr<t::AssocId> WaitUp(t::Endpoint& ep, absl::Time deadline) {
  while (absl::Now() < deadline) {
    absl::StatusOr<std::optional<t::Incoming>> in = ep.Receive(absl::Milliseconds(50));
    if (!in.ok()) return in.status();
    if (!in->has_value()) continue;
    if (const auto* ev = std::get_if<t::v1::Event>(&**in)) {
      if (ev->type() == t::v1::EVENT_TYPE_ASSOC_UP) return ev->assoc_id();
      if (ev->type() == t::v1::EVENT_TYPE_ASSOC_CANT_START ||
          ev->type() == t::v1::EVENT_TYPE_ASSOC_LOST) {
        return absl::UnavailableError(absl::StrCat("association did not come up: event ",
                                                   t::v1::EventType_Name(ev->type())));
      }
    }
  }
  return absl::DeadlineExceededError("association did not come up in time");
}

absl::StatusOr<Result> RunSctp(t::StackChoice choice, const std::string& name, size_t msg_bytes,
                               absl::Duration window, const t::v1::FailoverProfile& profile,
                               uint16_t udp_port, uint16_t sctp_port, int udp_rcvbuf) {
  t::EndpointOptions base;
  base.local_addresses = {"127.0.0.1"};
  base.profile = profile;
  base.max_message_size = std::max<size_t>(msg_bytes, 1 << 20);
  if (choice == t::StackChoice::kUserland) {
    base.udp_encaps_port = udp_port;
    base.remote_udp_encaps_port = udp_port;
  }
  t::EndpointOptions lo = base;
  lo.listen = true;
  lo.port = sctp_port;  // 0: a free port, read back through local_port()
  absl::StatusOr<std::unique_ptr<t::Endpoint>> listener = t::CreateEndpoint(choice, lo);
  if (!listener.ok()) return listener.status();
  uint16_t port = (*listener)->local_port();
  if (port == 0) return absl::InternalError("listener has no port");
  int udp_rcvbuf_set = 0;
  if (choice == t::StackChoice::kUserland && udp_rcvbuf > 0) {
    udp_rcvbuf_set = SetUsrsctpUdpRcvbuf(udp_port, udp_rcvbuf);
    if (udp_rcvbuf_set == 0) {
      return absl::InternalError("--udp-rcvbuf: no usrsctp UDP socket found");
    }
  }

  t::EndpointOptions co = base;
  co.listen = false;
  absl::StatusOr<std::unique_ptr<t::Endpoint>> connector = t::CreateEndpoint(choice, co);
  if (!connector.ok()) return connector.status();
  t::Endpoint& rx = **listener;
  t::Endpoint& tx = **connector;

  absl::StatusOr<t::AssocId> pending = tx.Connect({"127.0.0.1"}, port);
  if (!pending.ok()) return pending.status();
  absl::StatusOr<t::AssocId> assoc = WaitUp(tx, absl::Now() + kSetupTimeout);
  if (!assoc.ok()) return assoc.status();

  Result r;
  r.stack = name;
  r.msg_bytes = msg_bytes;
  r.udp_rcvbuf = udp_rcvbuf_set;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> send_errors{0};
  std::string send_error;  // written by the sender before it exits, read after join
  const std::string payload(msg_bytes, 'x');
  const t::AssocId id = *assoc;

  double cpu0 = CpuSeconds();
  absl::Time start = absl::Now();
  std::thread sender([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      absl::Status s = tx.Send(id, {.stream = 0, .ppid = 0}, payload);
      if (!s.ok()) {
        if (send_errors.fetch_add(1) == 0) send_error = std::string(s.ToString());
        if (!absl::IsUnavailable(s)) break;  // only a full buffer is worth retrying
      }
    }
  });

  absl::Time end = start + window;
  std::string recv_error;
  uint64_t recv_errors = 0;
  while (true) {
    absl::Time now = absl::Now();
    if (now >= end) break;
    absl::StatusOr<std::optional<t::Incoming>> in =
        rx.Receive(std::min(end - now, absl::Milliseconds(100)));
    if (!in.ok()) {
      if (recv_errors++ == 0) recv_error = std::string(in.status().ToString());
      if (!absl::IsResourceExhausted(in.status())) break;
      continue;
    }
    if (!in->has_value()) continue;
    if (const auto* m = std::get_if<t::Message>(&**in)) {
      if (absl::Now() > end) break;  // arrived after the window: not counted
      r.bytes += m->data.size();
      ++r.msgs;
    } else {
      const auto& ev = std::get<t::v1::Event>(**in);
      if (ev.type() == t::v1::EVENT_TYPE_ASSOC_LOST ||
          ev.type() == t::v1::EVENT_TYPE_SHUTDOWN_COMPLETE) {
        if (recv_errors++ == 0) {
          recv_error = "association ended: " + t::v1::EventType_Name(ev.type());
        }
        break;
      }
    }
  }
  absl::Time stopped = absl::Now();
  double cpu1 = CpuSeconds();
  stop.store(true);
  // Keep reading (uncounted) so a sender blocked on a full buffer gets to see `stop`.
  std::atomic<bool> joined{false};
  std::thread joiner([&] {
    sender.join();
    joined.store(true);
  });
  absl::Time drain_deadline = absl::Now() + kDrainTimeout;
  while (!joined.load() && absl::Now() < drain_deadline) {
    (void)rx.Receive(absl::Milliseconds(10));
  }
  joiner.join();  // Send() itself gives up after 2 s, so this is bounded

  r.seconds = absl::ToDoubleSeconds(std::min(stopped, end) - start);
  r.cpu_cores = (cpu1 - cpu0) / absl::ToDoubleSeconds(stopped - start);
  r.send_errors = send_errors.load();
  r.recv_errors = recv_errors;
  r.first_error = !recv_error.empty() ? recv_error : send_error;
  (void)tx.Abort(id);
  connector->reset();
  listener->reset();
  return r;
}

// ---------------------------------------------------------------- TCP

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<Result> RunTcp(size_t msg_bytes, absl::Duration window) {
  smig::UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return Errno("socket");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  socklen_t slen = sizeof(sin);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
      listen(listener.get(), 1) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sin), &slen) != 0) {
    return Errno("tcp listen");
  }
  smig::UniqueFd writer(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!writer.valid() ||
      connect(writer.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    return Errno("tcp connect");
  }
  smig::UniqueFd reader(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!reader.valid()) return Errno("accept");
  listener.reset();
  const int rfd = reader.get(), wfd = writer.get();
  timeval tv{0, 100 * 1000};  // bounded reads: a stuck sender cannot hang the run
  setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  timeval stv{2, 0};  // like Endpoint::Send(): give up on a buffer full for 2 s
  setsockopt(wfd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof(stv));

  Result r;
  r.stack = "tcp";
  r.msg_bytes = msg_bytes;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> send_errors{0};
  const std::string payload(msg_bytes, 'x');
  double cpu0 = CpuSeconds();
  absl::Time start = absl::Now();
  std::thread sender([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      size_t off = 0;
      while (off < payload.size()) {
        ssize_t n = send(wfd, payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          send_errors.fetch_add(1);
          shutdown(wfd, SHUT_WR);
          return;
        }
        off += static_cast<size_t>(n);
      }
    }
    shutdown(wfd, SHUT_WR);  // the receiver sees EOF once everything is read
  });

  std::vector<char> buf(msg_bytes);
  absl::Time end = start + window;
  bool eof = false;
  while (absl::Now() < end) {
    ssize_t n = read(rfd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      ++r.recv_errors;
      r.first_error = std::strerror(errno);
      break;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (absl::Now() > end) break;  // arrived after the window: not counted
    r.bytes += static_cast<uint64_t>(n);
  }
  absl::Time stopped = absl::Now();
  double cpu1 = CpuSeconds();
  stop.store(true);
  absl::Time drain_deadline = absl::Now() + kDrainTimeout;
  while (!eof && absl::Now() < drain_deadline) {
    ssize_t n = read(rfd, buf.data(), buf.size());
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
  }
  sender.join();
  reader.reset();
  writer.reset();
  r.seconds = absl::ToDoubleSeconds(std::min(stopped, end) - start);
  r.msgs = r.bytes / msg_bytes;
  r.cpu_cores = (cpu1 - cpu0) / absl::ToDoubleSeconds(stopped - start);
  r.send_errors = send_errors.load();
  return r;
}

// ---------------------------------------------------------------- main

void OnAlarm(int) {
  static const char kMsg[] =
      "{\"bench\":\"throughput\",\"error\":\"watchdog: the benchmark overran its time budget\"}\n";
  (void)!write(STDOUT_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "throughput of one SCTP association (usrsctp, and the kernel stack where it "
                   "exists) against TCP on loopback; one JSON object per line.\n"
                   "  smig-bench-throughput --sizes=16384,65536 --seconds=3 --profile=default");
  std::vector<size_t> sizes;
  for (const std::string& s : absl::GetFlag(FLAGS_sizes)) {
    size_t v = 0;
    if (!absl::SimpleAtoi(s, &v) || v == 0 || v > (64u << 20)) {
      return smig::Fail(absl::InvalidArgumentError(absl::StrCat("--sizes: \"", s, "\" is not a size in bytes (1..64 MiB)")));
    }
    sizes.push_back(v);
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (!(seconds > 0 && seconds <= 3600)) return smig::Fail(absl::InvalidArgumentError("--seconds must be in (0, 3600]"));
  const std::string profile_name = absl::GetFlag(FLAGS_profile);
  t::v1::FailoverProfile profile;
  if (profile_name == "fast") {
    profile = t::FastFailoverProfile();
  } else if (profile_name == "default") {
    profile = t::DefaultFailoverProfile();
  } else {
    return smig::Fail(absl::InvalidArgumentError(absl::StrCat("--profile=", profile_name, ": use fast or default")));
  }
  const uint32_t udp_port = absl::GetFlag(FLAGS_udp_port);
  if (udp_port == 0 || udp_port > 65535) return smig::Fail(absl::InvalidArgumentError("--udp-port must be in 1..65535"));
  const uint32_t udp_rcvbuf_flag = absl::GetFlag(FLAGS_udp_rcvbuf);
  if (udp_rcvbuf_flag > (1u << 30)) return smig::Fail(absl::InvalidArgumentError("--udp-rcvbuf must be at most 1 GiB"));
  const int udp_rcvbuf = static_cast<int>(udp_rcvbuf_flag);
  const uint32_t sctp_port_flag = absl::GetFlag(FLAGS_sctp_port);
  if (sctp_port_flag > 65535) return smig::Fail(absl::InvalidArgumentError("--sctp-port must be in 0..65535"));
  const uint16_t sctp_port = static_cast<uint16_t>(sctp_port_flag);
  bool run_userland = false, run_tcp = false, run_kernel = false;
  for (const std::string& s : absl::GetFlag(FLAGS_stacks)) {
    if (s == "userland") {
      run_userland = true;
    } else if (s == "tcp") {
      run_tcp = true;
    } else if (s == "kernel") {
      run_kernel = true;
    } else {
      return smig::Fail(absl::InvalidArgumentError(absl::StrCat("--stacks: unknown \"", s, "\": use userland, tcp, kernel")));
    }
  }
  const absl::Duration window = absl::Seconds(seconds);
  // Bounded time: every run is the window plus setup and drain; anything beyond is a hang.
  const int runs = static_cast<int>(sizes.size()) * (run_userland + run_tcp + run_kernel);
  std::signal(SIGALRM, OnAlarm);
  alarm(static_cast<unsigned>(runs * (seconds + absl::ToDoubleSeconds(kSetupTimeout) +
                                      absl::ToDoubleSeconds(kDrainTimeout) + 3) + 10));

  const bool kernel_available = t::KernelSctpAvailable();
  int failures = 0;
  std::map<size_t, std::map<std::string, double>> mbps;  // size -> stack -> MB/s
  auto record = [&](absl::StatusOr<Result> r, const std::string& name, size_t size) {
    if (!r.ok()) {
      ++failures;
      std::cout << absl::StrFormat(
                       "{\"bench\":\"throughput\",\"stack\":\"%s\",\"profile\":\"%s\","
                       "\"msg_bytes\":%d,\"error\":\"%s\"}",
                       name, profile_name, size, Escape(r.status().ToString()))
                << std::endl;
      return;
    }
    PrintResult(*r, profile_name);
    if (r->bytes > 0) mbps[size][name] = r->mb_per_s();
  };
  // The kernel stack goes first, for every size, so that its numbers never share the
  // process with a running usrsctp stack.
  if (run_kernel) {
    for (size_t size : sizes) {
      if (kernel_available) {
        record(RunSctp(t::StackChoice::kKernel, "kernel", size, window, profile, 0, sctp_port, 0),
               "kernel", size);
      } else {
        PrintSkipped("kernel", size, profile_name,
                     "this kernel cannot open SCTP sockets (KernelSctpAvailable() is false)");
      }
    }
  }
  for (size_t size : sizes) {
    if (run_tcp) record(RunTcp(size, window), "tcp", size);
    if (run_userland) {
      record(RunSctp(t::StackChoice::kUserland, "userland", size, window, profile,
                     static_cast<uint16_t>(udp_port), sctp_port, udp_rcvbuf),
             "userland", size);
    }
  }
  for (size_t size : sizes) {
    std::map<std::string, double>& m = mbps[size];
    if (m.count("tcp") == 0 || (m.count("userland") == 0 && m.count("kernel") == 0)) continue;
    std::string line = absl::StrFormat(
        "{\"bench\":\"throughput_ratio\",\"profile\":\"%s\",\"msg_bytes\":%d,"
        "\"tcp_mb_per_s\":%.1f",
        profile_name, size, m["tcp"]);
    for (const char* s : {"userland", "kernel"}) {
      if (m.count(s) == 0) continue;
      absl::StrAppendFormat(&line, ",\"%s_mb_per_s\":%.1f,\"%s_vs_tcp\":%.4f", s, m[s], s,
                            m[s] / m["tcp"]);
    }
    std::cout << line << "}" << std::endl;
  }
  alarm(0);
  // usrsctp's threads outlive main (the stack is never finished: see userland_endpoint.cc);
  // skip static destructors that could race them.
  std::cout.flush();
  std::_Exit(failures == 0 ? 0 : 1);
}
