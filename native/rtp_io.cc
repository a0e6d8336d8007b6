// RtpIo: every RTP socket of a media node, served by one native I/O thread.
//
// Why (issue 6, docs/decisions/0007): with node:dgram each packet costs a libuv poll, a recvmsg, a
// Buffer and a JavaScript callback on the way in, and a libuv write request on the way out — about
// 10 µs per echoed packet, against ~2.4 µs for a C relay. And a packet's departure time is the
// moment the event loop gets round to it, so the 20 ms cadence inherits the loop's jitter.
//
// Here one thread owns the sockets' readiness (epoll, edge-triggered) and the clock (a timerfd with
// absolute deadlines):
//   - Receive: readable sockets are drained with recvmmsg into an arena; the arena is handed to
//     JavaScript once per batch window (a few ms), so the event loop wakes a few hundred times a
//     second for the whole node instead of once per packet. While JavaScript holds one arena the
//     thread fills the other; when both are full the rest waits in the kernel's socket buffers.
//   - Send: at `due - lead` the thread posts a beat; JavaScript builds every call's packet for `due`
//     and stages it here (copied), then commits. At `due` exactly the thread sends what was
//     committed, then tells JavaScript the packets have left (marks are reported only then). A
//     barge-in that arrives between commit and `due` can still replace a call's staged packet.
// JavaScript never blocks on this thread: staging and the slot table are guarded by one mutex
// that is held for copies only, never across a system call.
//
// One event in flight, and one per turn of the event loop: the thread posts through a thread-safe
// function, and Node dispatches a thread-safe function's queued calls back to back — up to 1,000
// in one libuv callback — while the thread keeps queueing. Under load (each batch taking longer
// than the batch window) that chain ran for seconds: no timer, no other socket (the bot's
// WebSocket, NATS) was served meanwhile. So the thread posts only while it holds the turn token;
// JavaScript hands it back from setImmediate, after the loop's poll phase has served everything
// else that was ready (Turned()). What becomes due meanwhile is merged into the next event.
#include <napi.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rtp_io.h"

namespace botedge {
namespace {

constexpr uint32_t kMaxSlots = 32768;
constexpr size_t kMaxPacket = 2048;     // larger datagrams are truncated and dropped (not RTP we speak)
constexpr size_t kStagedPacket = 1500;  // the largest packet JavaScript may stage
// slot u32, ip u32, port u16, len u16, arrival u32: µs mod 2^32 on CLOCK_MONOTONIC when the kernel
// queued it to the socket, so a receiver can time a datagram however long the thread and JavaScript
// took to get to it.
constexpr size_t kRecordHeader = 16;
constexpr int kBatchRecv = 16;

// Event kinds passed to the JavaScript callback (bit flags; one callback may carry several).
constexpr int kEventInbound = 1;
constexpr int kEventBeat = 2;
constexpr int kEventSent = 4;

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int64_t NowNs() { return ClockNs(CLOCK_MONOTONIC); }

// When the kernel queued a datagram to its socket (SO_TIMESTAMPNS), on CLOCK_MONOTONIC; the time it
// was read (`read_ns`) when the message carries no stamp. Never later than the read: a step of the
// wall clock between the two clock reads must not date a packet in the future.
int64_t KernelArrivalNs(const msghdr& h, int64_t realtime_ahead_ns, int64_t read_ns) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec ts;
    memcpy(&ts, CMSG_DATA(c), sizeof ts);
    const int64_t at = static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec - realtime_ahead_ns;
    return std::min(at, read_ns);
  }
  return read_ns;
}

// A staged packet in a byte buffer: slot u32, ip u32, port u16, len u16, bytes, padded to 4.
constexpr size_t kStagedHeader = 12;

inline size_t StagedSize(size_t len) { return kStagedHeader + ((len + 3) & ~static_cast<size_t>(3)); }

struct Slot {
  std::atomic<int> fd{-1};
  // Bumped when the slot is reused, so a stale epoll event for a closed socket is ignored.
  std::atomic<uint32_t> generation{0};
  bool pending = false;  // thread only: readable but not drained (the arena filled up)
  // The one source this socket takes (kSourceSet | ip << 16 | port), 0 for any: datagrams from
  // elsewhere are dropped here, before the arena, so a flood at one call's port neither fills the
  // arena that every call's packets share nor costs the event loop a record each.
  std::atomic<uint64_t> source{0};
  std::atomic<uint32_t> foreign{0};  // datagrams that filter dropped since the slot was opened
};

constexpr uint64_t kSourceSet = 1ULL << 48;

inline uint64_t SourceKey(uint32_t ip, uint16_t port) { return kSourceSet | (static_cast<uint64_t>(ip) << 16) | port; }

// Sends datagrams in runs: consecutive ones from the same socket leave with one sendmmsg. A media
// node's sockets are one per call, so its runs are one datagram long (a plain sendto); a load
// generator that speaks for many calls from one socket (bench/loadgen.ts) sends a whole slot with
// a system call or a few instead of one each. One per thread that sends (the I/O thread's beats;
// JavaScript's sendRecords): its arrays are reused, nothing is allocated per datagram.
class RunSender {
 public:
  struct Counts {
    uint64_t sent = 0, errors = 0, calls = 0;  // calls: system calls made
  };

  // Queues one datagram; the run so far leaves first when the socket differs or the batch is full.
  // `data` must stay valid until Flush.
  void Add(int fd, const uint8_t* data, size_t len, uint32_t ip, uint16_t port, Counts* c) {
    if (n_ > 0 && (fd != fd_ || n_ == kBatch)) Flush(c);
    fd_ = fd;
    sockaddr_in& sa = addrs_[n_];
    sa = sockaddr_in{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(ip);
    iovs_[n_] = iovec{const_cast<uint8_t*>(data), len};
    msghdr& h = msgs_[n_].msg_hdr;
    h = msghdr{};
    h.msg_name = &sa;
    h.msg_namelen = sizeof sa;
    h.msg_iov = &iovs_[n_];
    h.msg_iovlen = 1;
    n_++;
  }

  // Sends the queued run. A datagram the kernel refuses is counted and skipped, as a lone sendto's
  // failure would be; the rest of the run still goes.
  void Flush(Counts* c) {
    unsigned i = 0;
    while (i < n_) {
      int r = n_ - i == 1 ? (sendmsg(fd_, &msgs_[i].msg_hdr, MSG_DONTWAIT) < 0 ? -1 : 1)
                          : sendmmsg(fd_, &msgs_[i], n_ - i, MSG_DONTWAIT);
      c->calls++;
      if (r <= 0) {
        c->errors++;
        i++;
      } else {
        c->sent += r;
        i += r;
      }
    }
    n_ = 0;
  }

 private:
  static constexpr unsigned kBatch = 64;
  int fd_ = -1;
  unsigned n_ = 0;
  mmsghdr msgs_[kBatch];
  iovec iovs_[kBatch];
  sockaddr_in addrs_[kBatch];
};

class Engine {
 public:
  Engine(int period_ms, double lead_ms, double batch_ms, size_t arena_bytes)
      : period_ns_(static_cast<int64_t>(period_ms) * 1000000LL),
        lead_ns_(static_cast<int64_t>(lead_ms * 1e6)),
        batch_ns_(static_cast<int64_t>(batch_ms * 1e6)),
        slots_(new Slot[kMaxSlots]) {
    for (auto& a : arenas_) a.assign(arena_bytes, 0);
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    ctlfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    for (int fd : {epfd_, ctlfd_}) {
      ev.data.u64 = kWakeTag;
      epoll_ctl(fd, EPOLL_CTL_ADD, wakefd_, &ev);
      ev.data.u64 = kTimerTag;
      epoll_ctl(fd, EPOLL_CTL_ADD, timerfd_, &ev);
    }
    for (uint32_t i = 0; i < kMaxSlots; i++) free_.push_back(i);
    for (auto& s : staged_) s.reserve(1 << 18);
    sending_.reserve(1 << 18);
  }

  ~Engine() {
    for (uint32_t i = 0; i < kMaxSlots; i++) {
      int fd = slots_[i].fd.load();
      if (fd >= 0) ::close(fd);
    }
    ::close(epfd_);
    ::close(ctlfd_);
    ::close(wakefd_);
    ::close(timerfd_);
    delete[] slots_;
  }

  bool ok() const { return epfd_ >= 0 && ctlfd_ >= 0 && wakefd_ >= 0 && timerfd_ >= 0; }

  // Binds a UDP socket (JavaScript thread, so EADDRINUSE comes back at once); returns
  // slot * 65536 + the bound port (port 0 picks one), or -errno.
  int Open(uint32_t host, uint16_t port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(host);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      int e = errno;
      ::close(fd);
      return -e;
    }
    // The kernel stamps each datagram as it is queued to the socket: a record's arrival is then when
    // the packet reached this host, not when the thread, polling once per batch window, read it.
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    socklen_t salen = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &salen);
    uint16_t bound = ntohs(sa.sin_port);
    uint32_t slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.empty()) {
        ::close(fd);
        return -EMFILE;
      }
      // Oldest-freed first: records of a just-closed socket may still sit in an arena, and must not
      // reach the next call on that slot (it would latch onto the old caller's address).
      slot = free_.front();
      free_.pop_front();
    }
    Slot& s = slots_[slot];
    uint32_t gen = s.generation.load() + 1;
    s.generation.store(gen);
    s.source.store(0);
    s.foreign.store(0);
    s.fd.store(fd);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = (static_cast<uint64_t>(gen) << 32) | slot;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    return static_cast<int>(slot * 65536 + bound);
  }

  // Takes datagrams from ip:port only (ip 0 and port 0: from anywhere again). JavaScript thread.
  void AcceptOnly(uint32_t slot, uint32_t ip, uint16_t port) {
    if (slot < kMaxSlots) slots_[slot].source.store(ip == 0 && port == 0 ? 0 : SourceKey(ip, port));
  }

  uint32_t Foreign(uint32_t slot) const { return slot < kMaxSlots ? slots_[slot].foreign.load() : 0; }

  // Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE when we may, else SO_RCVBUF up to the
  // system's rmem_max): a socket that takes many streams at once must ride out the I/O thread's
  // gaps. Returns what the kernel granted (its doubled figure, see socket(7)), or -errno.
  int ReceiveBuffer(uint32_t slot, int bytes) {
    int fd = slot < kMaxSlots ? slots_[slot].fd.load() : -1;
    if (fd < 0) return -EBADF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0)
      return -errno;
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != 0) return -errno;
    return got;
  }

  // Closing happens on the I/O thread (it may be sending on or reading from the socket right now);
  // the slot becomes reusable only after that.
  void Close(uint32_t slot) {
    if (slot >= kMaxSlots) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_.push_back(slot);
    }
    Wake();
  }

  // Copies a packet to send at the next due time. False when it cannot be staged.
  bool Stage(uint32_t slot, const uint8_t* data, size_t len, uint32_t ip, uint16_t port) {
    if (len > kStagedPacket || slot >= kMaxSlots) return false;
    uint8_t header[kStagedHeader];
    uint16_t l16 = static_cast<uint16_t>(len);
    memcpy(header, &slot, 4);
    memcpy(header + 4, &ip, 4);
    memcpy(header + 8, &port, 2);
    memcpy(header + 10, &l16, 2);
    static const uint8_t pad[4] = {0, 0, 0, 0};
    std::lock_guard<std::mutex> lock(mu_);
    auto& v = staged_[filling_];
    // Capacity is kept across ticks (the buffers rotate, never shrink): no allocation in steady state.
    v.insert(v.end(), header, header + kStagedHeader);
    v.insert(v.end(), data, data + len);
    v.insert(v.end(), pad, pad + (StagedSize(len) - kStagedHeader - len));
    return true;
  }

  // A staged record's header (slot u32, ip u32, port u16, len u16; host order) at p.
  struct RecordHeader {
    uint32_t slot, ip;
    uint16_t port, len;
  };
  static RecordHeader ReadHeader(const uint8_t* p) {
    RecordHeader h;
    memcpy(&h.slot, p, 4);
    memcpy(&h.ip, p + 4, 4);
    memcpy(&h.port, p + 8, 2);
    memcpy(&h.len, p + 10, 2);
    return h;
  }

  // Whether `len` bytes are whole, well-formed records (a slot in range, a packet that fits).
  static bool WellFormed(const uint8_t* data, size_t len) {
    for (size_t off = 0; off < len;) {
      if (len - off < kStagedHeader) return false;
      const RecordHeader h = ReadHeader(data + off);
      if (h.slot >= kMaxSlots || h.len > kStagedPacket || StagedSize(h.len) > len - off) return false;
      off += StagedSize(h.len);
    }
    return true;
  }

  // Copies records already laid out as staged packets (the receive lane's tick, rx_lane.cc), under
  // one lock. False, staging none, when one is malformed.
  bool StageRecords(const uint8_t* data, size_t len) {
    if (!WellFormed(data, len)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    auto& v = staged_[filling_];
    v.insert(v.end(), data, data + len);
    return true;
  }

  // Sends a packet at once from the calling (JavaScript) thread: a late bot frame going out in the
  // slot it missed (edge/media/call-media.ts). sendto on a UDP socket is safe beside the I/O thread's
  // own sends; JavaScript never passes a slot it has closed, so the fd is still ours. False when it
  // could not be sent.
  bool SendNow(uint32_t slot, const uint8_t* data, size_t len, uint32_t ip, uint16_t port) {
    if (slot >= kMaxSlots) return false;
    int fd = slots_[slot].fd.load();
    if (fd < 0) return false;
    bool ok = SendTo(fd, data, len, ip, port);
    if (ok) stats_.sentNow.fetch_add(1, std::memory_order_relaxed);
    return ok;
  }

  // SendNow for each record of a batch laid out as StageRecords takes them (the receive lane's
  // packets for held slots its late frames filled, rx_lane.cc FillHeld): how many left. A malformed
  // batch sends none: -1.
  int64_t SendRecords(const uint8_t* data, size_t len) {
    if (!WellFormed(data, len)) return -1;
    const uint64_t sent = SendAll(js_sender_, data, len);
    stats_.sentNow.fetch_add(sent, std::memory_order_relaxed);
    return static_cast<int64_t>(sent);
  }

  // Rewrites the packet a slot committed for the coming due time, if it has not left yet (barge-in).
  // Only a packet of the same length fits in place (the records' layout must not change).
  bool Replace(uint32_t slot, const uint8_t* data, size_t len) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!committed_) return false;
    bool done = false;
    auto& v = staged_[filling_ ^ 1];
    for (size_t off = 0; off + kStagedHeader <= v.size();) {
      uint32_t s;
      uint16_t l;
      memcpy(&s, v.data() + off, 4);
      memcpy(&l, v.data() + off + 10, 2);
      if (s == slot && len == l) {
        memcpy(v.data() + off + kStagedHeader, data, len);
        done = true;
      }
      off += StagedSize(l);
    }
    return done;
  }

  // JavaScript has staged everything for the beat it was given.
  void Commit() {
    // How long the beat took to reach JavaScript and be staged: what the lead must cover.
    int64_t at = NowNs();
    commit_at_ns_.store(at);
    int64_t lag = at - beat_posted_ns_.load();
    int64_t seen = commit_lag_max_ns_.load();
    while (lag > seen && !commit_lag_max_ns_.compare_exchange_weak(seen, lag)) {
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (committed_) {
        // The thread has not sent the previous commit yet (it cannot happen with one beat in
        // flight, but never lose packets): merge into it.
        auto& prev = staged_[filling_ ^ 1];
        auto& cur = staged_[filling_];
        prev.insert(prev.end(), cur.begin(), cur.end());
        cur.clear();  // keeps its capacity
      } else {
        committed_ = true;
        filling_ ^= 1;
      }
    }
    Wake();
  }

  // The event loop has turned since the last event: the thread may post the next one.
  // The thread is woken only when it holds an event back for want of the token (wants_turn_):
  // otherwise it posts the next event when one comes due, and a wake-up per turn of the loop would
  // be a write, a context switch and an idle pass of the thread for nothing.
  void Turned() {
    may_post_.store(true);
    if (wants_turn_.exchange(false)) Wake();
  }

  // Inbound arena ready for JavaScript: index * 2^31 + length, or -1.
  double Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_ < 0) return -1;
    return static_cast<double>(ready_) * 2147483648.0 + static_cast<double>(ready_len_);
  }

  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = -1;
      ready_len_ = 0;
    }
    Wake();
  }

  void SetLead(double ms) {
    int64_t ns = static_cast<int64_t>(ms * 1e6);
    if (ns < 0) ns = 0;
    if (ns > period_ns_ / 2) ns = period_ns_ / 2;
    lead_ns_.store(ns);
    Wake();
  }

  // The slowest beat → commit since the last call, ms (and starts a new window).
  double TakeCommitLagMax() { return static_cast<double>(commit_lag_max_ns_.exchange(0)) / 1e6; }

  // The due time of the last beat posted: when what JavaScript stages now will leave, µs mod 2^32
  // on CLOCK_MONOTONIC (the arrival stamps' clock). A sender that stamps its packets can stamp
  // them with the time they leave instead of the time they were built.
  uint32_t BeatDueUs() const { return static_cast<uint32_t>(static_cast<uint64_t>(beat_due_ns_.load()) / 1000); }

  void SetClock(bool on) {
    clock_on_.store(on);
    Wake();
  }

  uint8_t* Arena(int i) { return arenas_[i].data(); }
  size_t ArenaSize() const { return arenas_[0].size(); }

  template <typename Post>
  void Run(Post post) {
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake at the deadline, not up to 50 µs after it
    // A media clock must get a core when its deadline comes: this thread sleeps almost all the time
    // and does microseconds of work per wake-up, so a modest real-time priority cannot starve
    // anything. Without the privilege (not root, no CAP_SYS_NICE) it runs at normal priority.
    sched_param sp{};
    sp.sched_priority = 10;
    realtime_.store(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0);
    std::vector<epoll_event> events(256);
    std::vector<mmsghdr> msgs(kBatchRecv);
    std::vector<iovec> iovs(kBatchRecv);
    std::vector<sockaddr_in> addrs(kBatchRecv);
    std::vector<uint8_t> scratch(kBatchRecv * kMaxPacket);
    constexpr size_t kControl = CMSG_SPACE(sizeof(timespec));
    std::vector<uint64_t> control((kBatchRecv * kControl + 7) / 8);  // cmsghdr-aligned
    for (int i = 0; i < kBatchRecv; i++) {
      iovs[i].iov_base = scratch.data() + i * kMaxPacket;
      iovs[i].iov_len = kMaxPacket;
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_control = reinterpret_cast<uint8_t*>(control.data()) + i * kControl;
    }
    std::vector<uint32_t> pending;  // readable slots not yet drained
    bool clock_was_on = false;
    int64_t due = 0;
    bool beat_out = false;     // a beat was posted and not yet sent
    int64_t batch_at = -1;     // when the filling arena must be handed over
    // Polling: while packets keep coming, the thread sleeps on its timers only and reads every
    // socket that became readable meanwhile once per batch window, instead of waking (an IPI and
    // two context switches on a busy core) for each packet. It falls back to waiting on the
    // sockets when a window passes without a packet, so an idle node does not spin.
    bool polling = false;
    int64_t poll_at = -1;

    auto drain = [&](uint32_t slot) -> bool {  // false: the arena is full, data left behind
      Slot& s = slots_[slot];
      int fd = s.fd.load();
      if (fd < 0) return true;
      for (;;) {
        size_t room = arenas_[fill_].size() - fill_len_;
        // Room for a whole recvmmsg batch of the largest datagrams: nothing read is ever dropped.
        if (room < kBatchRecv * (kRecordHeader + kMaxPacket)) return false;
        for (int i = 0; i < kBatchRecv; i++) {
          msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
          msgs[i].msg_hdr.msg_controllen = kControl;
        }
        int n = recvmmsg(fd, msgs.data(), kBatchRecv, MSG_DONTWAIT, nullptr);
        if (n <= 0) return true;  // EAGAIN (drained) or an error to ignore, as dgram does
        const int64_t read_ns = NowNs();
        // The kernel's stamps are CLOCK_REALTIME; the records' clock is CLOCK_MONOTONIC.
        const int64_t realtime_ahead_ns = ClockNs(CLOCK_REALTIME) - read_ns;
        uint64_t source = s.source.load(std::memory_order_relaxed);
        for (int i = 0; i < n; i++) {
          size_t len = msgs[i].msg_len;
          if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > kMaxPacket) continue;
          uint32_t ip = ntohl(addrs[i].sin_addr.s_addr);
          uint16_t port = ntohs(addrs[i].sin_port);
          if (source != 0 && source != SourceKey(ip, port)) {
            s.foreign.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          size_t need = kRecordHeader + ((len + 3) & ~static_cast<size_t>(3));
          if (arenas_[fill_].size() - fill_len_ < need) {
            stats_.dropped.fetch_add(1);  // cannot happen with `room` above; never overrun
            continue;
          }
          uint8_t* rec = arenas_[fill_].data() + fill_len_;
          uint16_t l16 = static_cast<uint16_t>(len);
          const uint32_t arrival_us = static_cast<uint32_t>(static_cast<uint64_t>(KernelArrivalNs(msgs[i].msg_hdr, realtime_ahead_ns, read_ns)) / 1000);
          memcpy(rec, &slot, 4);
          memcpy(rec + 4, &ip, 4);
          memcpy(rec + 8, &port, 2);
          memcpy(rec + 10, &l16, 2);
          memcpy(rec + 12, &arrival_us, 4);
          memcpy(rec + kRecordHeader, iovs[i].iov_base, len);
          fill_len_ += need;
          stats_.received.fetch_add(1, std::memory_order_relaxed);
        }
        if (n < kBatchRecv) return true;
      }
    };

    int held_kinds = 0;  // due events not yet posted: one is still out (the turn token)
    while (running_.load()) {
      int64_t now = NowNs();

      // Closes requested by JavaScript.
      std::vector<uint32_t> closing;
      {
        std::lock_guard<std::mutex> lock(mu_);
        closing.swap(closing_);
      }
      for (uint32_t slot : closing) {
        Slot& s = slots_[slot];
        int fd = s.fd.exchange(-1);
        if (fd >= 0) {
          epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
        }
        s.pending = false;
        std::lock_guard<std::mutex> lock(mu_);
        free_.push_back(slot);
      }

      // The clock.
      bool clock_on = clock_on_.load();
      if (clock_on && !clock_was_on) {
        due = now + period_ns_;
        beat_out = false;
      }
      clock_was_on = clock_on;
      int post_kinds = 0;
      if (clock_on) {
        if (beat_out) {
          bool committed;
          {
            std::lock_guard<std::mutex> lock(mu_);
            committed = committed_;
          }
          if (committed && now >= due) {
            // Late by more than 1 ms: was it the commit (JavaScript) or our own wake-up?
            if (now - due > 1000000) {
              if (commit_at_ns_.load() > due) {
                stats_.lateCommit.fetch_add(1, std::memory_order_relaxed);
              } else {
                stats_.lateWake.fetch_add(1, std::memory_order_relaxed);
              }
            }
            SendCommitted();
            beat_out = false;
            post_kinds |= kEventSent;
            due += period_ns_;
            // Far behind (the event loop stalled): skip the lost ticks instead of bursting them.
            if (now - due > 5 * period_ns_) {
              int64_t lost = (now - due) / period_ns_;
              stats_.skipped.fetch_add(static_cast<uint64_t>(lost));
              due += lost * period_ns_;
            }
          }
        }
        if (!beat_out && now >= due - lead_ns_.load()) {
          beat_out = true;
          post_kinds |= kEventBeat;
          stats_.beats.fetch_add(1, std::memory_order_relaxed);
          beat_posted_ns_.store(now);
          beat_due_ns_.store(due);
        }
      }

      // Inbound: drain what the arena had no room for, then hand the arena over when due.
      if (!pending.empty()) {
        std::vector<uint32_t> still;
        for (uint32_t slot : pending) {
          if (!slots_[slot].pending) continue;
          if (drain(slot)) {
            slots_[slot].pending = false;
          } else {
            still.push_back(slot);
          }
        }
        pending.swap(still);
        if (fill_len_ > 0 && batch_at < 0) batch_at = now + batch_ns_;
      }
      if (fill_len_ > 0 && (now >= batch_at || (post_kinds & kEventBeat) != 0)) {
        // With a beat going out anyway, deliver the packets with it: one wake-up, and the tick
        // sees the freshest caller audio.
        std::lock_guard<std::mutex> lock(mu_);
        if (ready_ < 0) {
          ready_ = fill_;
          ready_len_ = fill_len_;
          fill_ ^= 1;
          fill_len_ = 0;
          batch_at = -1;
          post_kinds |= kEventInbound;
          stats_.batches.fetch_add(1, std::memory_order_relaxed);
        }
      }
      // One event in flight (see the header): what comes due while one is out waits, merged.
      held_kinds |= post_kinds;
      if (held_kinds != 0) {
        bool may = may_post_.exchange(false);
        if (!may) {
          // Ask Turned() to wake us, then look again: either we see its token here or it sees
          // this request (both atomics sequentially consistent), so the event is never stranded.
          wants_turn_.store(true);
          may = may_post_.exchange(false);
          if (may) wants_turn_.store(false);
        }
        if (may) {
          if (post(held_kinds)) {
            held_kinds = 0;
          } else {
            may_post_.store(true);  // not queued (shutting down): no callback will hand it back
          }
        } else if (post_kinds != 0) {
          stats_.heldPosts.fetch_add(1, std::memory_order_relaxed);
        }
      }

      // Sleep until the next deadline or an event.
      int64_t next = -1;
      auto consider = [&](int64_t t) {
        if (t >= 0 && (next < 0 || t < next)) next = t;
      };
      if (clock_on) {
        if (!beat_out) {
          consider(due - lead_ns_.load());
        } else {
          // Until JavaScript commits there is nothing to send; Commit() wakes us.
          std::lock_guard<std::mutex> lock(mu_);
          if (committed_) consider(due);
        }
      }
      if (polling) consider(poll_at);
      if (batch_at >= 0) {
        bool held;
        {
          std::lock_guard<std::mutex> lock(mu_);
          held = ready_ >= 0;
        }
        if (!held) consider(batch_at);  // otherwise Release() wakes us
      }
      if (next >= 0) {
        itimerspec its{};
        int64_t t = next <= now ? now + 1000 : next;
        its.it_value.tv_sec = t / 1000000000LL;
        its.it_value.tv_nsec = t % 1000000000LL;
        timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
      }
      bool arena_full = !pending.empty();
      int timeout = next >= 0 || arena_full ? -1 : 200;
      int n;
      if (polling) {
        // Sleep on the clock and JavaScript's wake-ups only; then take whatever the sockets have.
        epoll_event ctl[2];
        epoll_wait(ctlfd_, ctl, 2, timeout);
        n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 0);
      } else {
        n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout);
      }
      uint64_t received_before = stats_.received.load(std::memory_order_relaxed);
      for (int i = 0; i < n; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == kWakeTag) {
          uint64_t v;
          while (read(wakefd_, &v, sizeof v) > 0) {
          }
          continue;
        }
        if (tag == kTimerTag) {
          uint64_t v;
          while (read(timerfd_, &v, sizeof v) > 0) {
          }
          continue;
        }
        uint32_t slot = static_cast<uint32_t>(tag & 0xffffffffu);
        uint32_t gen = static_cast<uint32_t>(tag >> 32);
        if (slot >= kMaxSlots || slots_[slot].generation.load() != gen) continue;
        if (!drain(slot)) {
          if (!slots_[slot].pending) {
            slots_[slot].pending = true;
            pending.push_back(slot);
          }
        }
      }
      int64_t after = NowNs();
      bool got = stats_.received.load(std::memory_order_relaxed) != received_before;
      if (!polling) {
        if (got) {
          polling = true;
          poll_at = after + batch_ns_;
          stats_.pollStarts.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (after >= poll_at) {
        if (got || !pending.empty()) {
          poll_at = after + batch_ns_;
        } else {
          polling = false;
          poll_at = -1;
        }
      }
      // An arena goes over one window after its first read, with what the next poll read too:
      // handing each poll's read over at once took ≈ 1 ms off caller → bot at the median but
      // nothing off its tail, for 3–7 % more CPU per call (twice the turns; decision 0021).
      if (fill_len_ > 0 && batch_at < 0) batch_at = after + batch_ns_;
      stats_.wakeups.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void Stop() {
    running_.store(false);
    Wake();
  }

  struct Stats {
    std::atomic<uint64_t> received{0}, sent{0}, sendErrors{0}, batches{0}, beats{0}, skipped{0},
        dropped{0}, lateCommit{0}, lateWake{0}, wakeups{0}, pollStarts{0}, sentNow{0}, heldPosts{0},
        sendCalls{0};
  } stats_;

 private:
  static constexpr uint64_t kWakeTag = ~0ULL;
  static constexpr uint64_t kTimerTag = ~0ULL - 1;

  void Wake() {
    uint64_t one = 1;
    ssize_t r = write(wakefd_, &one, sizeof one);
    (void)r;
  }

  void SendCommitted() {
    {
      // The committed buffer becomes the one we send from; our emptied one takes its place, so the
      // three buffers rotate with their capacity and nothing is allocated per tick.
      std::lock_guard<std::mutex> lock(mu_);
      sending_.swap(staged_[filling_ ^ 1]);
      committed_ = false;
    }
    SendAll(io_sender_, sending_.data(), sending_.size());
    sending_.clear();
  }

  // Sends every staged record in `data` whose socket is still open, runs of one socket together,
  // and counts them; returns how many left.
  uint64_t SendAll(RunSender& sender, const uint8_t* data, size_t len) {
    RunSender::Counts c;
    for (size_t off = 0; off + kStagedHeader <= len;) {
      const RecordHeader h = ReadHeader(data + off);
      int fd = slots_[h.slot].fd.load();
      if (fd >= 0) sender.Add(fd, data + off + kStagedHeader, h.len, h.ip, h.port, &c);
      off += StagedSize(h.len);
    }
    sender.Flush(&c);
    if (c.sent) stats_.sent.fetch_add(c.sent, std::memory_order_relaxed);
    if (c.errors) stats_.sendErrors.fetch_add(c.errors, std::memory_order_relaxed);
    if (c.calls) stats_.sendCalls.fetch_add(c.calls, std::memory_order_relaxed);
    return c.sent;
  }

  // One datagram, counted in `sent` or `sendErrors`.
  bool SendTo(int fd, const uint8_t* data, size_t len, uint32_t ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(ip);
    if (sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      stats_.sendErrors.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    stats_.sent.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  const int64_t period_ns_;
  std::atomic<int64_t> lead_ns_;
  const int64_t batch_ns_;
  Slot* slots_;
  int epfd_ = -1;   // the sockets, the wake-up eventfd and the timerfd
  int ctlfd_ = -1;  // the eventfd and the timerfd only: what a polling thread sleeps on
  int wakefd_ = -1;
  int timerfd_ = -1;
  std::atomic<bool> running_{true};
  std::atomic<bool> clock_on_{false};

 public:
  std::atomic<bool> realtime_{false};

 private:
  std::atomic<int64_t> beat_posted_ns_{0};
  // The turn token (see the header): the thread may post an event while this is true.
  std::atomic<bool> may_post_{true};
  // The thread holds an event back until the token comes: Turned() must wake it.
  std::atomic<bool> wants_turn_{false};
  std::atomic<int64_t> beat_due_ns_{0};
  std::atomic<int64_t> commit_lag_max_ns_{0};
  std::atomic<int64_t> commit_at_ns_{0};

  std::mutex mu_;
  std::deque<uint32_t> free_;       // mu_
  std::vector<uint32_t> closing_;   // mu_
  RunSender io_sender_;  // the I/O thread's (SendCommitted)
  RunSender js_sender_;  // JavaScript's (SendRecords)
  std::vector<uint8_t> staged_[2];  // mu_: [filling_] is being staged, the other was committed
  std::vector<uint8_t> sending_;    // thread only: the packets being sent now
  int filling_ = 0;                 // mu_
  bool committed_ = false;          // mu_
  std::vector<uint8_t> arenas_[2];
  int fill_ = 0;          // thread only: the arena being filled
  size_t fill_len_ = 0;   // thread only
  int ready_ = -1;        // mu_: the arena JavaScript holds, or -1
  size_t ready_len_ = 0;  // mu_
};

class RtpIo : public Napi::ObjectWrap<RtpIo> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RtpIo",
                       {InstanceMethod<&RtpIo::Open>("open"), InstanceMethod<&RtpIo::Close>("close"),
                        InstanceMethod<&RtpIo::Stage>("stage"),
                        InstanceMethod<&RtpIo::StageRecords>("stageRecords"),
                        InstanceMethod<&RtpIo::SendNow>("sendNow"),
                        InstanceMethod<&RtpIo::SendRecords>("sendRecords"),
                        InstanceMethod<&RtpIo::Replace>("replace"),
                        InstanceMethod<&RtpIo::Commit>("commit"), InstanceMethod<&RtpIo::Take>("take"),
                        InstanceMethod<&RtpIo::Release>("release"),
                        InstanceMethod<&RtpIo::Turned>("turned"),
                        InstanceMethod<&RtpIo::SetClock>("setClock"),
                        InstanceMethod<&RtpIo::SetLead>("setLead"),
                        InstanceMethod<&RtpIo::TakeCommitLag>("takeCommitLag"),
                        InstanceMethod<&RtpIo::BeatDueUs>("beatDueUs"),
                        InstanceMethod<&RtpIo::AcceptOnly>("acceptOnly"),
                        InstanceMethod<&RtpIo::Foreign>("foreign"),
                        InstanceMethod<&RtpIo::ReceiveBuffer>("receiveBuffer"),
                        InstanceMethod<&RtpIo::Arena>("arena"),
                        InstanceMethod<&RtpIo::Stats>("stats"),
                        InstanceMethod<&RtpIo::Shutdown>("shutdown")});
  }

  // new RtpIo(onEvent(kinds), periodMs, leadMs, batchMs, arenaBytes)
  explicit RtpIo(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RtpIo>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsFunction() || !info[1].IsNumber() || !info[2].IsNumber() ||
        !info[3].IsNumber() || !info[4].IsNumber()) {
      Napi::TypeError::New(env, "RtpIo: expected (onEvent, periodMs, leadMs, batchMs, arenaBytes)")
          .ThrowAsJavaScriptException();
      return;
    }
    int period = info[1].As<Napi::Number>().Int32Value();
    double lead = info[2].As<Napi::Number>().DoubleValue();
    double batch = info[3].As<Napi::Number>().DoubleValue();
    double arena = info[4].As<Napi::Number>().DoubleValue();
    if (period < 5 || period > 200 || lead < 0 || lead >= period || batch < 0 || batch > period ||
        arena < 65536 || arena > 256.0 * 1024 * 1024) {
      Napi::RangeError::New(env, "RtpIo: period 5-200 ms, 0 <= lead < period, 0 <= batch <= period, arena 64 KiB-256 MiB")
          .ThrowAsJavaScriptException();
      return;
    }
    engine_ = new Engine(period, lead, batch, static_cast<size_t>(arena));
    if (!engine_->ok()) {
      Napi::Error::New(env, std::string("RtpIo: epoll/eventfd/timerfd failed: ") + strerror(errno))
          .ThrowAsJavaScriptException();
      delete engine_;
      engine_ = nullptr;
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "botedge-rtp-io", 0, 1);
    tsfn_.Unref(env);  // the I/O thread never keeps the process alive on its own
    Engine* engine = engine_;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    thread_ = std::thread([engine, tsfn]() mutable {
      engine->Run([&](int kinds) -> bool {
        return tsfn.NonBlockingCall([kinds](Napi::Env env, Napi::Function fn) { CallOnEvent(env, fn, kinds); }) == napi_ok;
      });
    });
    napi_add_env_cleanup_hook(env, &RtpIo::OnEnvCleanup, this);
    hooked_ = true;
  }

  ~RtpIo() override {
    if (hooked_) napi_remove_env_cleanup_hook(Env(), &RtpIo::OnEnvCleanup, this);
    StopThread();
    delete engine_;
  }

 private:
  // Hands JavaScript an event. With the raw call, not Napi::Function::Call: an event still queued
  // when the process exits is dispatched while the environment is torn down, where the call is
  // refused — Function::Call then throws a JavaScript exception where none can be thrown, and Node
  // aborts (FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw; a quarter of exits at load).
  // The refused call is dropped; an exception the handler itself throws stays pending, and Node
  // reports it as uncaught, as before.
  static void CallOnEvent(Napi::Env env, Napi::Function fn, int kinds) {
    if (env == nullptr || fn.IsEmpty()) return;  // finalising with events queued: nobody to call
    napi_value arg, recv, result;
    if (napi_create_int32(env, kinds, &arg) != napi_ok || napi_get_undefined(env, &recv) != napi_ok) return;
    napi_call_function(env, recv, fn, 1, &arg, &result);
  }

  // The environment is going away (process exit, worker end) with this object still alive: stop
  // the thread before anything it uses is torn down.
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<RtpIo*>(arg);
    self->hooked_ = false;
    self->StopThread();
  }

  void StopThread() {
    if (engine_ && thread_.joinable()) {
      engine_->Stop();
      thread_.join();
      tsfn_.Release();
    }
  }

  bool Alive(Napi::Env env) {
    if (engine_ && thread_.joinable()) return true;
    Napi::Error::New(env, "RtpIo: shut down").ThrowAsJavaScriptException();
    return false;
  }

  // open(hostIpU32, port) -> slot * 65536 + bound port; throws an Error with .code = errno name.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "RtpIo.open: expected (hostIpU32, port)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t host = info[0].As<Napi::Number>().Uint32Value();
    uint32_t port = info[1].As<Napi::Number>().Uint32Value();
    if (port > 65535) {
      Napi::RangeError::New(env, "RtpIo.open: port out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int r = engine_->Open(host, static_cast<uint16_t>(port));
    if (r < 0) {
      Napi::Error e = Napi::Error::New(env, std::string("RtpIo.open: ") + strerror(-r));
      e.Set("code", Napi::String::New(env, r == -EADDRINUSE ? "EADDRINUSE" : r == -EMFILE ? "EMFILE" : r == -EACCES ? "EACCES" : "EIO"));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, r);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (engine_ && info.Length() > 0 && info[0].IsNumber()) {
      engine_->Close(info[0].As<Napi::Number>().Uint32Value());
    }
    return info.Env().Undefined();
  }

  // The (slot, bytes: Uint8Array, len, ...) head that stage and replace share: false (after throwing
  // `usage`) unless there are `argc` arguments and a typed array; `len` is clamped to the bytes.
  bool PacketArgs(const Napi::CallbackInfo& info, size_t argc, const char* usage, uint8_t** data, size_t* len) {
    if (!engine_ || info.Length() < argc || !info[1].IsTypedArray()) {
      Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
      return false;
    }
    auto bytes = info[1].As<Napi::Uint8Array>();
    *data = bytes.Data();
    *len = std::min<size_t>(info[2].As<Napi::Number>().Uint32Value(), bytes.ElementLength());
    return true;
  }

  // A packet to an address: (slot, bytes: Uint8Array, len, ipU32, port) -> bool, handed to `Send`.
  template <bool (Engine::*Send)(uint32_t, const uint8_t*, size_t, uint32_t, uint16_t)>
  Napi::Value Addressed(const Napi::CallbackInfo& info, const char* usage) {
    uint8_t* data;
    size_t len;
    if (!PacketArgs(info, 5, usage, &data, &len)) return info.Env().Undefined();
    bool ok = (engine_->*Send)(info[0].As<Napi::Number>().Uint32Value(), data, len, info[3].As<Napi::Number>().Uint32Value(),
                               static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value()));
    return Napi::Boolean::New(info.Env(), ok);
  }

  // stage(slot, bytes, len, ipU32, port) -> bool: sent at the next due time.
  Napi::Value Stage(const Napi::CallbackInfo& info) {
    return Addressed<&Engine::Stage>(info, "RtpIo.stage: expected (slot, Uint8Array, len, ip, port)");
  }

  // (bytes: Uint8Array, len): a batch of records, its first `len` bytes; false with a TypeError
  // pending when the arguments are not that.
  bool RecordsArgs(const Napi::CallbackInfo& info, const char* usage, const uint8_t** data, size_t* len) {
    if (!engine_ || info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
      Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
      return false;
    }
    auto bytes = info[0].As<Napi::Uint8Array>();
    *data = bytes.Data();
    *len = std::min<size_t>(info[1].As<Napi::Number>().Uint32Value(), bytes.ElementLength());
    return true;
  }

  // stageRecords(bytes: Uint8Array, len) -> bool: staged packets already laid out as records (slot
  // u32, ip u32, port u16, len u16, bytes padded to 4; host order): sent at the next due time.
  Napi::Value StageRecords(const Napi::CallbackInfo& info) {
    const uint8_t* data;
    size_t len;
    if (!RecordsArgs(info, "RtpIo.stageRecords: expected (Uint8Array, len)", &data, &len)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), engine_->StageRecords(data, len));
  }

  // sendRecords(bytes: Uint8Array, len) -> number: records laid out as for stageRecords, each sent
  // at once (sendNow); how many left. A malformed batch is a TypeError and sends none.
  Napi::Value SendRecords(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t* data;
    size_t len;
    if (!RecordsArgs(info, "RtpIo.sendRecords: expected (Uint8Array, len)", &data, &len)) return env.Undefined();
    const int64_t sent = engine_->SendRecords(data, len);
    if (sent < 0) {
      Napi::TypeError::New(env, "RtpIo.sendRecords: a malformed record").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(sent));
  }

  // sendNow(slot, bytes, len, ipU32, port) -> bool: sent at once, not at the next due time.
  Napi::Value SendNow(const Napi::CallbackInfo& info) {
    return Addressed<&Engine::SendNow>(info, "RtpIo.sendNow: expected (slot, Uint8Array, len, ip, port)");
  }

  // replace(slot, bytes, len) -> bool: true when the committed packet was rewritten before it left.
  Napi::Value Replace(const Napi::CallbackInfo& info) {
    uint8_t* data;
    size_t len;
    if (!PacketArgs(info, 3, "RtpIo.replace: expected (slot, Uint8Array, len)", &data, &len)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), engine_->Replace(info[0].As<Napi::Number>().Uint32Value(), data, len));
  }

  Napi::Value Commit(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Commit();
    return info.Env().Undefined();
  }

  Napi::Value Take(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? engine_->Take() : -1);
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Release();
    return info.Env().Undefined();
  }

  // turned(): the event loop has turned since the last event (called from setImmediate).
  Napi::Value Turned(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Turned();
    return info.Env().Undefined();
  }

  Napi::Value SetClock(const Napi::CallbackInfo& info) {
    if (engine_) engine_->SetClock(info.Length() > 0 && info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }

  // acceptOnly(slot, ipU32, port): datagrams from elsewhere are dropped on the I/O thread (0, 0: none).
  Napi::Value AcceptOnly(const Napi::CallbackInfo& info) {
    if (!engine_ || info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
      Napi::TypeError::New(info.Env(), "RtpIo.acceptOnly: expected (slot, ipU32, port)").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    engine_->AcceptOnly(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
                        static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()));
    return info.Env().Undefined();
  }

  // foreign(slot) -> datagrams acceptOnly's filter dropped since the slot was opened.
  Napi::Value Foreign(const Napi::CallbackInfo& info) {
    uint32_t n = engine_ && info.Length() > 0 && info[0].IsNumber() ? engine_->Foreign(info[0].As<Napi::Number>().Uint32Value()) : 0;
    return Napi::Number::New(info.Env(), n);
  }

  // receiveBuffer(slot, bytes) → number: the receive buffer the kernel granted, or -errno.
  Napi::Value ReceiveBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_ || info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "RtpIo.receiveBuffer: expected (slot, bytes)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, engine_->ReceiveBuffer(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Int32Value()));
  }

  Napi::Value BeatDueUs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? engine_->BeatDueUs() : 0);
  }

  Napi::Value TakeCommitLag(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? engine_->TakeCommitLagMax() : 0);
  }

  Napi::Value SetLead(const Napi::CallbackInfo& info) {
    if (engine_ && info.Length() > 0 && info[0].IsNumber()) engine_->SetLead(info[0].As<Napi::Number>().DoubleValue());
    return info.Env().Undefined();
  }

  // arena(i) -> ArrayBuffer over the native inbound arena i (0 or 1); valid while this object lives.
  Napi::Value Arena(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    int i = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    if (i != 0 && i != 1) {
      Napi::RangeError::New(env, "RtpIo.arena: index 0 or 1").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::ArrayBuffer::New(env, engine_->Arena(i), engine_->ArenaSize());
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!engine_) return o;
    auto& s = engine_->stats_;
    o.Set("received", Napi::Number::New(env, static_cast<double>(s.received.load())));
    o.Set("sent", Napi::Number::New(env, static_cast<double>(s.sent.load())));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(s.sendErrors.load())));
    o.Set("batches", Napi::Number::New(env, static_cast<double>(s.batches.load())));
    o.Set("beats", Napi::Number::New(env, static_cast<double>(s.beats.load())));
    o.Set("skipped", Napi::Number::New(env, static_cast<double>(s.skipped.load())));
    o.Set("dropped", Napi::Number::New(env, static_cast<double>(s.dropped.load())));
    // Ticks sent over 1 ms after their due time, because JavaScript committed late / we woke late.
    o.Set("lateCommit", Napi::Number::New(env, static_cast<double>(s.lateCommit.load())));
    o.Set("lateWake", Napi::Number::New(env, static_cast<double>(s.lateWake.load())));
    // Times the thread woke, and times it went from waiting on the sockets to polling them.
    o.Set("wakeups", Napi::Number::New(env, static_cast<double>(s.wakeups.load())));
    o.Set("pollStarts", Napi::Number::New(env, static_cast<double>(s.pollStarts.load())));
    // Packets sent at once from JavaScript (late bot frames), also counted in `sent`.
    o.Set("sentNow", Napi::Number::New(env, static_cast<double>(s.sentNow.load())));
    // System calls that sent runs (sendRecords, the beats); SendNow's single sendto is not counted.
    o.Set("sendCalls", Napi::Number::New(env, static_cast<double>(s.sendCalls.load())));
    o.Set("realtime", Napi::Number::New(env, engine_->realtime_.load() ? 1 : 0));
    // Events that came due while one was still out, merged into the next (the loop was busy).
    o.Set("heldPosts", Napi::Number::New(env, static_cast<double>(s.heldPosts.load())));
    return o;
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    StopThread();
    return info.Env().Undefined();
  }

  Engine* engine_ = nullptr;
  bool hooked_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
};

}  // namespace

void InitRtpIo(Napi::Env env, Napi::Object exports) {
  exports.Set("RtpIo", RtpIo::Define(env));
}

}  // namespace botedge
