// The control channel of smig-linkemu: where command lines arrive at run time (a unix
// stream socket, --control, for any number of clients; stdin with --stdin) and where the
// answers go back (to the client; to stdout for stdin). Standard output also carries the
// ready, stats and exit JSON lines (Print). The protocol is described in linkemu.h, its
// parser is in link_model.h; executing a line is the caller's.
//
//   SMIG_ASSIGN_OR_RETURN(std::unique_ptr<ControlChannel> control, ControlChannel::Create(
//       {.socket_path = "/run/car-links.sock", .use_stdin = true},
//       [&](const std::string& line, std::string* answer) { (void)Execute(line, answer); }));
//   const size_t first = fds.size();
//   control->AddPollFds(&fds);
//   ppoll(fds.data(), fds.size(), ...);
//   control->HandlePoll(fds.data() + first);   // accepts, reads, executes, answers
//
// Ownership: a ControlChannel owns the listening socket (and removes its path on Close)
// and the clients' connections. It reads fd 0 but never closes it. The executor must stay
// callable as long as the channel. Not thread-safe.
#pragma once

#include <poll.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace smig::linkemu {

struct ControlOptions {
  std::string socket_path;  // unix stream socket to listen on; empty = none
  bool use_stdin = false;   // read command lines from stdin, answers to stdout
};

class ControlChannel {
 public:
  // Runs one command line; appends its JSON lines and status line to `answer`.
  using Executor = std::function<void(const std::string& line, std::string* answer)>;

  // Listens on options.socket_path (a socket left there is replaced).
  static absl::StatusOr<std::unique_ptr<ControlChannel>> Create(const ControlOptions& options,
                                                                Executor execute);
  ~ControlChannel() { Close(); }
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  // Appends the descriptors to poll: the listening socket, stdin, one per client.
  void AddPollFds(std::vector<pollfd>* fds);
  // Handles what the last AddPollFds' descriptors (starting at `fds`) reported.
  void HandlePoll(const pollfd* fds);
  // Whether stdin was read to its end (never, without use_stdin).
  bool stdin_closed() const { return stdin_closed_; }
  // One last try to send the clients their pending answers (a "quit"'s "ok").
  void Flush();
  // Closes the socket (removing its path) and the clients. Idempotent.
  void Close();

  // Writes `s` to stdout at once.
  static void Print(const std::string& s);

 private:
  struct Client {
    UniqueFd fd;
    std::string in, out;
  };
  ControlChannel(const ControlOptions& options, Executor execute);
  absl::Status Listen();
  void ReadStdin();
  bool ServeClient(Client& c);  // false: close it

  ControlOptions opt_;
  Executor execute_;
  UniqueFd listen_fd_;
  bool stdin_open_ = false;
  bool stdin_closed_ = false;
  std::string stdin_buf_;
  std::vector<Client> clients_;
  size_t polled_clients_ = 0;  // clients_ [0, polled_clients_) were in the last AddPollFds
};

// The protocol summary: for --help, and the `help` command.
std::string ProtocolHelp();

}  // namespace smig::linkemu
