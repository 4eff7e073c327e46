#include "tools/linkemu/packet_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <sched.h>
#include <sys/socket.h>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/netns.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace smig::linkemu {
namespace {

absl::Status Errno(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

// The kernel's own drop counters per queue: /proc/net/netfilter/nfnetlink_queue has
// "queue portid total copy_mode copy_range queue_dropped user_dropped id_seq 1".
// (Read by a thread in the namespace: /proc/thread-self/net is the thread's namespace.)
std::map<uint32_t, uint64_t> KernelDropsHere() {
  std::map<uint32_t, uint64_t> out;
  std::ifstream f("/proc/thread-self/net/netfilter/nfnetlink_queue");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    uint64_t v[8];
    for (uint64_t& x : v) s >> x;
    if (s) out[static_cast<uint32_t>(v[0])] = v[5] + v[6];
  }
  return out;
}

}  // namespace

void PacketIo::NfqClose::operator()(nfq_handle* h) const { nfq_close(h); }

PacketIo::Queue::~Queue() {
  if (qh_ != nullptr) nfq_destroy_queue(qh_);
}

void PacketIo::Queue::Verdict(uint32_t packet_id, bool accept) {
  if (nfq_set_verdict(qh_, packet_id, accept ? NF_ACCEPT : NF_DROP, 0, nullptr) < 0) {
    if (io_->verdict_errors_++ == 0) LOG(ERROR) << "nfq_set_verdict: " << std::strerror(errno);
  }
}

int PacketIo::Queue::OnPacketCallback(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == nullptr) return 0;
  const uint32_t id = ntohl(ph->packet_id);
  unsigned char* p = nullptr;
  int len = nfq_get_payload(nfa, &p);
  // The IP length, as only the first 64 bytes are copied to us.
  uint32_t size = len > 0 ? static_cast<uint32_t>(len) : 0;
  if (len >= 20 && (p[0] >> 4) == 4) {
    size = (static_cast<uint32_t>(p[2]) << 8) | p[3];
  } else if (len >= 40 && (p[0] >> 4) == 6) {
    size = ((static_cast<uint32_t>(p[4]) << 8) | p[5]) + 40;
  }
  static_cast<Queue*>(data)->on_packet_(id, size);
  return 0;
}

PacketIo::PacketIo(PacketIoOptions options)
    : opt_(std::move(options)), steering_(opt_.steering) {}

PacketIo::~PacketIo() {
  RemoveRules();
  Close();
}

absl::Status PacketIo::OpenNetns(const std::string& name) {
  for (const Netns& n : netns_) {
    if (n.name == name) return absl::OkStatus();
  }
  Netns n{name, nullptr, -1};  // closes the socket again on an error
  SMIG_RETURN_IF_ERROR(RunInNetns(name, [&]() -> absl::Status {
    n.h.reset(nfq_open());
    return n.h ? absl::OkStatus() : Errno("nfq_open (root? CONFIG_NETFILTER_NETLINK_QUEUE?)");
  }));
  n.fd = nfq_fd(n.h.get());
  fcntl(n.fd, F_SETFD, FD_CLOEXEC);
  if (nfnl_rcvbufsiz(nfq_nfnlh(n.h.get()), opt_.rcvbuf_bytes) <= 0) return Errno("nfnl_rcvbufsiz");
  SMIG_RETURN_IF_ERROR(steering_.AddNetns(name));
  netns_.push_back(std::move(n));
  return absl::OkStatus();
}

absl::Status PacketIo::Bind(Queue* q, const QueueRule& rule) {
  nfq_handle* h = nullptr;
  for (const Netns& n : netns_) {
    if (n.name == rule.netns) h = n.h.get();
  }
  q->qh_ = nfq_create_queue(h, static_cast<uint16_t>(rule.queue), &Queue::OnPacketCallback, q);
  if (q->qh_ == nullptr) {
    return Errno(absl::StrCat("nfq_create_queue ", rule.queue, " (taken by another process?)"));
  }
  if (nfq_set_mode(q->qh_, NFQNL_COPY_PACKET, 64) < 0) return Errno("nfq_set_mode");
  if (nfq_set_queue_maxlen(q->qh_, opt_.queue_maxlen) < 0) return Errno("nfq_set_queue_maxlen");
  // fail-open stays off: a full queue drops (and shows in dropped_kernel).
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PacketIo::Queue*>> PacketIo::Attach(std::vector<QueueSpec> specs) {
  for (const QueueSpec& s : specs) SMIG_RETURN_IF_ERROR(OpenNetns(s.rule.netns));
  std::vector<std::unique_ptr<Queue>> bound;  // unbound again on an error
  std::vector<QueueRule> rules;
  for (QueueSpec& s : specs) {
    bound.push_back(std::make_unique<Queue>(this, std::move(s.on_packet)));
    SMIG_RETURN_IF_ERROR(Bind(bound.back().get(), s.rule));
    rules.push_back(s.rule);
  }
  SMIG_RETURN_IF_ERROR(steering_.AddRules(rules));
  std::vector<Queue*> out;
  for (std::unique_ptr<Queue>& q : bound) {
    out.push_back(q.get());
    queues_.push_back(std::move(q));
  }
  return out;
}

size_t PacketIo::AddPollFds(std::vector<pollfd>* fds) const {
  for (const Netns& n : netns_) fds->push_back({n.fd, POLLIN, 0});
  return netns_.size();
}

absl::Status PacketIo::HandlePoll(const pollfd* fds, size_t n,
                                  const std::function<void()>& after_each) {
  for (size_t i = 0; i < n && i < netns_.size(); ++i) {
    if (fds[i].revents & (POLLIN | POLLERR)) SMIG_RETURN_IF_ERROR(Read(netns_[i], after_each));
  }
  return absl::OkStatus();
}

absl::Status PacketIo::Read(Netns& ns, const std::function<void()>& after_each) {
  // Bounded, so that releases stay on time under a flood.
  for (int i = 0; i < 512; ++i) {
    ssize_t n = recv(ns.fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel dropped packets it could not hand us
        if (netlink_overruns_++ == 0) LOG(WARNING) << "netlink receive buffer overrun (packets lost)";
        continue;
      }
      return Errno("recv(nfqueue)");
    }
    nfq_handle_packet(ns.h.get(), buf_.data(), static_cast<int>(n));
    after_each();
  }
  return absl::OkStatus();
}

std::map<std::pair<std::string, uint32_t>, uint64_t> PacketIo::KernelDrops() const {
  std::map<std::pair<std::string, uint32_t>, uint64_t> out;
  for (const Netns& n : netns_) {
    std::map<uint32_t, uint64_t> k;
    (void)RunInNetns(n.name, [&] {
      k = KernelDropsHere();
      return absl::OkStatus();
    });
    for (const auto& [q, v] : k) out[{n.name, q}] = v;
  }
  return out;
}

std::vector<std::string> PacketIo::PeerNetns() const {
  std::vector<std::string> names;
  for (size_t i = 1; i < netns_.size(); ++i) names.push_back(netns_[i].name);
  return names;
}

void PacketIo::Close() {
  queues_.clear();
  netns_.clear();
}

}  // namespace smig::linkemu
