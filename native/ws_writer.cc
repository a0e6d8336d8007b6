#include "ws_writer.h"

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

namespace botedge {

bool WsWriter::NextMask(uint8_t mask[4]) {
  if (pool_at_ + 4 > sizeof pool_) {
    if (getrandom(pool_, sizeof pool_, 0) != static_cast<ssize_t>(sizeof pool_)) return false;
    pool_at_ = 0;
  }
  std::memcpy(mask, pool_ + pool_at_, 4);
  pool_at_ += 4;
  return true;
}

WsWriter::Result WsWriter::Write(int fd, const uint8_t* payload, size_t len) {
  if (len > 0xffff) return Result::kBusy;
  int queued = 0;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued > kMaxQueued) return Result::kBusy;
  uint8_t mask[4];
  if (!NextMask(mask)) return Result::kBusy;
  // FIN and opcode 2 (binary); the mask bit and the length, 16-bit extended from 126 bytes.
  const size_t head = len < 126 ? 6 : 8;
  if (frame_.size() < head + len) frame_.resize(head + len);
  uint8_t* f = frame_.data();
  f[0] = 0x82;
  if (len < 126) {
    f[1] = static_cast<uint8_t>(0x80 | len);
  } else {
    f[1] = 0x80 | 126;
    f[2] = static_cast<uint8_t>(len >> 8);
    f[3] = static_cast<uint8_t>(len);
  }
  std::memcpy(f + head - 4, mask, 4);
  // Eight bytes at a time (the key repeats every four), then the tail: 640 bytes per frame, per call.
  uint64_t key8;
  std::memcpy(&key8, mask, 4);
  std::memcpy(reinterpret_cast<uint8_t*>(&key8) + 4, mask, 4);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, payload + i, 8);
    v ^= key8;
    std::memcpy(f + head + i, &v, 8);
  }
  for (; i < len; i++) f[head + i] = payload[i] ^ mask[i & 3];
  const size_t total = head + len;
  ssize_t n = send(fd, f, total, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(total)) return Result::kSent;
  if (n <= 0) return Result::kBusy;
  // Part of the frame is on the wire: nothing else may follow until it is whole. The queue check
  // above makes this all but impossible; if it happens, wait a little for room, then give up on
  // the connection rather than leave a torn frame.
  size_t done = static_cast<size_t>(n);
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (done < total) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (waited >= kFinishMs) break;
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(kFinishMs - waited)) <= 0) continue;
    n = send(fd, f + done, total - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) done += static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
  }
  if (done == total) return Result::kSent;
  shutdown(fd, SHUT_RDWR);
  return Result::kBroken;
}

}  // namespace botedge
