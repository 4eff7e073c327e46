#include "tests/fakes/etcd_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/store/etcd_client.h"

namespace smig::store::testing {
namespace {

// A free TCP port on 127.0.0.1: bound to port 0, read back, and kept open in `fd` until
// the caller has all it needs (so two picks differ).
absl::StatusOr<int> PickPort(int& fd) {
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(errno)));
  }
  return ntohs(addr.sin_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(const std::string& binary,
                                                                absl::Duration timeout) {
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd is not installed (no executable ", binary,
                     "): run scripts/install-deps (Debian package etcd-server)"));
  }
  std::unique_ptr<EtcdProcess> etcd(new EtcdProcess());
  etcd->binary_ = binary;
  std::string tmpl = (std::filesystem::temp_directory_path() / "smig-etcd-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", strerror(errno)));
  }
  etcd->dir_ = tmpl;
  etcd->log_path_ = etcd->dir_ + "/etcd.log";
  int fd_client = -1, fd_peer = -1;
  absl::StatusOr<int> client = PickPort(fd_client);
  absl::StatusOr<int> peer = PickPort(fd_peer);
  if (fd_client >= 0) close(fd_client);
  if (fd_peer >= 0) close(fd_peer);
  if (!client.ok()) return client.status();
  if (!peer.ok()) return peer.status();
  etcd->client_port_ = *client;
  etcd->peer_port_ = *peer;
  if (absl::Status s = etcd->Spawn(); !s.ok()) return s;
  if (absl::Status s = etcd->AwaitReady(timeout); !s.ok()) return s;
  return etcd;
}

EtcdProcess::~EtcdProcess() {
  (void)Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EtcdProcess::endpoint() const { return absl::StrCat("127.0.0.1:", client_port_); }

absl::Status EtcdProcess::Spawn() {
  std::string client_url = absl::StrCat("http://127.0.0.1:", client_port_);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> argv = {
      binary_,
      "--name=smig-test",
      "--data-dir=" + dir_ + "/data",
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=smig-test=" + peer_url,
      "--initial-cluster-state=new",  // ignored once the data directory exists (Restart)
      // A lease TTL of 1 s needs etcd's minimum TTL, ceil(1.5 x election timeout), <= 1 s.
      "--heartbeat-interval=50",
      "--election-timeout=500",
      "--logger=zap",
      "--log-level=warn",
  };
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const char* log = log_path_.c_str();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  pid_ = pid;
  return absl::OkStatus();
}

absl::Status EtcdProcess::AwaitReady(absl::Duration timeout) {
  EtcdClient client({endpoint()}, absl::Milliseconds(300));
  etcdserverpb::RangeRequest req;
  req.set_key("/smig-test-ready");
  absl::Status last;
  for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("etcd exited (status ", status, ") before answering; log:\n",
                                              LogTail()));
    }
    etcdserverpb::RangeResponse resp;
    last = client.Call("Range", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
      return m.kv->Range(&ctx, req, &resp);
    });
    if (last.ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd at ", endpoint(), " does not answer after ",
                                                  absl::FormatDuration(timeout), ": ",
                                                  last.ToString(), "; log:\n", LogTail()));
}

absl::Status EtcdProcess::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t r = waitpid(pid_, &status, 0);
  pid_ = -1;
  if (r < 0) return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
  return absl::OkStatus();
}

absl::Status EtcdProcess::Restart(absl::Duration timeout) {
  if (absl::Status s = Kill(); !s.ok()) return s;
  if (absl::Status s = Spawn(); !s.ok()) return s;
  return AwaitReady(timeout);
}

std::string EtcdProcess::LogTail() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace smig::store::testing
