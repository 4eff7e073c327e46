#include "tools/linkemu/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace smig::linkemu {

std::string ProtocolHelp() {
  return
      "Control protocol: one line = commands separated by ';'. Each non-empty line is\n"
      "answered by zero or more JSON lines, then 'ok' or 'error <message>'.\n"
      "  link NAME [dev IFACE] [peer NETNS:IFACE] [dir both|out|in] [delay D] [jitter D]\n"
      "            [loss P%] [rate R] [limit N] [up|down]\n"
      "      create (dev required) or change a link; unspecified options keep their value.\n"
      "      peer: the other end of dev (NETNS: name in /run/netns, or /proc/PID/ns/net);\n"
      "      then 'out' is shaped at the peer's ingress, so local senders (TCP!) are not\n"
      "      throttled by their own held packets. Recommended.\n"
      "      delay is ONE-WAY per direction: 'delay 20ms' (dir both) gives RTT 40 ms.\n"
      "      dir selects the directions delay/jitter/loss/rate/limit apply to (default both).\n"
      "      D: 20ms 1.5s 250us 0   P: percent   R: 5mbit 500kbit 1gbit (bits/s),\n"
      "      100kbps (BYTES/s, as tc), 0 = unlimited   N: serializer buffer, packets (1000)\n"
      "      down drops everything on the link, both directions, held packets too.\n"
      "  stats [NAME]  one JSON line per link: config and counters per direction\n"
      "  ping          'ok'\n"
      "  quit          exit, removing the rules\n"
      "  help          this text\n"
      "Example: link cell dev c0 peer edge1:c1 delay 20ms rate 5mbit; link dsrc dev d0 down\n";
}

ControlChannel::ControlChannel(const ControlOptions& options, Executor execute)
    : opt_(options), execute_(std::move(execute)), stdin_open_(options.use_stdin) {}

absl::StatusOr<std::unique_ptr<ControlChannel>> ControlChannel::Create(
    const ControlOptions& options, Executor execute) {
  std::unique_ptr<ControlChannel> c(new ControlChannel(options, std::move(execute)));
  if (!options.socket_path.empty()) SMIG_RETURN_IF_ERROR(c->Listen());  // ~ closes on error
  return c;
}

absl::Status ControlChannel::Listen() {
  const std::string& path = opt_.socket_path;
  listen_fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return absl::InvalidArgumentError("--control path too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", path));
  }
  if (listen(listen_fd_.get(), 16) != 0) return absl::ErrnoToStatus(errno, "listen");
  return absl::OkStatus();
}

void ControlChannel::AddPollFds(std::vector<pollfd>* fds) {
  fds->push_back({listen_fd_.get(), POLLIN, 0});
  fds->push_back({stdin_open_ ? 0 : -1, POLLIN, 0});
  for (const Client& c : clients_) {
    fds->push_back({c.fd.get(), static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
  }
  polled_clients_ = clients_.size();
}

void ControlChannel::HandlePoll(const pollfd* fds) {
  if (fds[0].revents & POLLIN) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) clients_.push_back({std::move(fd), "", ""});
  }
  if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) ReadStdin();
  // Clients [0, polled_clients_) match fds[2...]; those accepted above come after them.
  std::vector<bool> close_it(clients_.size(), false);
  for (size_t i = 0; i < polled_clients_; ++i) {
    Client& c = clients_[i];
    bool cl = false;
    if (fds[2 + i].revents & (POLLIN | POLLHUP | POLLERR)) cl = !ServeClient(c);
    if (!c.out.empty()) {
      ssize_t n = send(c.fd.get(), c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        cl = true;
      }
      if (c.out.size() > (4u << 20)) cl = true;  // not reading its answers
    }
    close_it[i] = cl;
  }
  for (size_t i = close_it.size(); i-- > 0;) {
    if (close_it[i]) clients_.erase(clients_.begin() + static_cast<long>(i));
  }
  polled_clients_ = 0;
}

void ControlChannel::ReadStdin() {
  char b[4096];
  ssize_t n = read(0, b, sizeof b);
  if (n <= 0) {
    stdin_open_ = false;
    stdin_closed_ = true;
    return;
  }
  stdin_buf_.append(b, n);
  size_t nl;
  while ((nl = stdin_buf_.find('\n')) != std::string::npos) {
    std::string answer;
    execute_(stdin_buf_.substr(0, nl), &answer);
    stdin_buf_.erase(0, nl + 1);
    Print(answer);
  }
}

bool ControlChannel::ServeClient(Client& c) {
  char b[4096];
  ssize_t n = recv(c.fd.get(), b, sizeof b, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
  if (n > 0) c.in.append(b, n);
  size_t nl;
  while ((nl = c.in.find('\n')) != std::string::npos) {
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    execute_(line, &c.out);
  }
  return c.in.size() <= 65536;
}

void ControlChannel::Flush() {
  for (Client& c : clients_) {
    if (!c.out.empty()) {
      (void)send(c.fd.get(), c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }
}

void ControlChannel::Close() {
  if (listen_fd_.valid()) {
    listen_fd_.reset();
    unlink(opt_.socket_path.c_str());
  }
  clients_.clear();
}

void ControlChannel::Print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

}  // namespace smig::linkemu
