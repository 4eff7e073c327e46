// The packet I/O of smig-linkemu: one NFQUEUE netlink socket per network namespace it
// shapes in, the queues bound on them, the iptables rules that steer packets into those
// queues (steering.h), reading packets and issuing their verdicts (NF_ACCEPT releases a
// held packet back into the kernel, NF_DROP drops it).
//
//   PacketIo io({.queue_maxlen = 65536, .rcvbuf_bytes = 32 << 20});
//   SMIG_RETURN_IF_ERROR(io.OpenNetns(""));                    // ours, first
//   PacketIo::Queue* queue = nullptr;
//   SMIG_ASSIGN_OR_RETURN(std::vector<PacketIo::Queue*> queues, io.Attach({{
//       {.netns = "edge1", .ingress = true, .dev = "c1", .queue = 100},
//       [&](uint32_t id, uint32_t size) { queue->Verdict(id, /*accept=*/size < 1000); }}}));
//   queue = queues[0];
//   ... io.AddPollFds(&fds); ppoll(...); SMIG_RETURN_IF_ERROR(io.HandlePoll(...)); ...
//   io.RemoveRules();  // stop steering, then give the held packets their verdicts, then
//   io.Close();
//
// Ownership: a PacketIo owns its netlink sockets (one per namespace, opened there), every
// queue it bound (Queue pointers stay valid until Close()) and, through its Steering, our
// chains and rules. Not thread-safe: packet callbacks run inside HandlePoll.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/linkemu/steering.h"

struct nfq_handle;
struct nfq_q_handle;
struct nfq_data;
struct nfgenmsg;

namespace smig::linkemu {

struct PacketIoOptions {
  SteeringOptions steering;
  uint32_t queue_maxlen = 65536;     // kernel queue length per queue (held packets)
  uint32_t rcvbuf_bytes = 32 << 20;  // netlink socket receive buffer
};

class PacketIo {
 public:
  // A packet handed to us: its queue's packet id and its IP length.
  using OnPacket = std::function<void(uint32_t packet_id, uint32_t ip_size)>;
  struct QueueSpec {
    QueueRule rule;  // where the queue is bound and which packets go into it
    OnPacket on_packet;
  };

  // One bound queue.
  class Queue {
   public:
    Queue(PacketIo* io, OnPacket on_packet) : io_(io), on_packet_(std::move(on_packet)) {}
    ~Queue();
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;
    // NF_ACCEPT (release) or NF_DROP; a failure is counted (verdict_errors).
    void Verdict(uint32_t packet_id, bool accept);

   private:
    friend class PacketIo;
    static int OnPacketCallback(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* data);
    PacketIo* io_;
    OnPacket on_packet_;
    nfq_q_handle* qh_ = nullptr;
  };

  explicit PacketIo(PacketIoOptions options);
  ~PacketIo();
  PacketIo(const PacketIo&) = delete;
  PacketIo& operator=(const PacketIo&) = delete;

  // Opens a netlink socket in `netns` ("" = ours; a name in /run/netns or a path such as
  // /proc/PID/ns/net) and installs our chains there; nothing if done already.
  absl::Status OpenNetns(const std::string& netns);
  // Binds a queue per spec in its rule's namespace (opened first if need be), then steers
  // packets into them: no packet meets a queue nobody reads. All or nothing.
  absl::StatusOr<std::vector<Queue*>> Attach(std::vector<QueueSpec> specs);

  // Appends one descriptor per namespace; returns how many.
  size_t AddPollFds(std::vector<pollfd>* fds) const;
  // Reads the sockets whose `fds` (as appended by AddPollFds) are ready, calling the
  // queues' OnPacket and then `after_each` for every packet. An error is fatal.
  absl::Status HandlePoll(const pollfd* fds, size_t n, const std::function<void()>& after_each);

  // What the kernel dropped per (namespace, queue): queue full or netlink overrun.
  std::map<std::pair<std::string, uint32_t>, uint64_t> KernelDrops() const;
  // The namespaces other than ours, in the order opened.
  std::vector<std::string> PeerNetns() const;
  uint64_t netlink_overruns() const { return netlink_overruns_; }
  uint64_t verdict_errors() const { return verdict_errors_; }

  // Stops steering: removes our rules and chains everywhere.
  void RemoveRules() { steering_.RemoveAll(); }
  // Unbinds every queue and closes the sockets (held packets are lost: verdict them first).
  void Close();

 private:
  struct NfqClose {
    void operator()(nfq_handle* h) const;
  };
  // The socket's descriptor belongs to the handle (nfq_close closes it).
  struct Netns {
    std::string name;
    std::unique_ptr<nfq_handle, NfqClose> h;
    int fd = -1;
  };
  absl::Status Bind(Queue* q, const QueueRule& rule);
  absl::Status Read(Netns& ns, const std::function<void()>& after_each);

  PacketIoOptions opt_;
  Steering steering_;
  std::vector<Netns> netns_;                   // [0]: ours
  std::vector<std::unique_ptr<Queue>> queues_;  // before netns_ in destruction
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
  uint64_t netlink_overruns_ = 0;
  uint64_t verdict_errors_ = 0;
};

}  // namespace smig::linkemu
