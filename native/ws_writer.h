// WsWriter: a call's 20 ms frame written to its bot's WebSocket from native code, as one masked
// binary frame (RFC 6455 §5.2, client to server), straight from the receive lane (rx_lane.cc)
// instead of through JavaScript, `ws` and Node's stream.
//
// Why: at 400 calls with a socket each, handing every frame to JavaScript and `ws` cost ~15 % of
// the node's core beyond the kernel's own write (docs/benchmarks/capacity.md, tenth session).
//
// The socket stays JavaScript's (`ws` reads it, answers pings, sends events and closes it); this
// writes on a duplicate of its descriptor, and only whole frames, only while nothing of
// JavaScript's is waiting to be written (the caller's `blocked` word) and the kernel's queue is
// nearly empty, so a frame never goes out half-written between two of JavaScript's. Anything else
// is left to JavaScript, which writes (or queues) the frame as it always did.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace botedge {

class WsWriter {
 public:
  enum class Result { kSent, kBusy, kBroken };

  // Writes one binary frame of `len` bytes to `fd`: kSent, or kBusy (nothing written: the kernel's
  // queue holds more than kMaxQueued, or it would block), or kBroken (a frame went out in part
  // and could not be finished within kFinishMs: the socket is shut down, so the bot's end sees a
  // dropped connection rather than a corrupt stream).
  Result Write(int fd, const uint8_t* payload, size_t len);

  // Unacknowledged bytes above which frames are left to JavaScript: small enough that a whole
  // frame always fits the socket's buffer (16 KB at least), large enough for a bot a few tens of
  // ms away.
  static constexpr int kMaxQueued = 4096;
  static constexpr int kFinishMs = 20;

 private:
  bool NextMask(uint8_t mask[4]);

  std::vector<uint8_t> frame_;
  // Masking keys must be unpredictable (RFC 6455 §5.3): drawn from the kernel's generator, 4 KB
  // (1,024 keys) at a time.
  uint8_t pool_[4096];
  size_t pool_at_ = sizeof pool_;
};

}  // namespace botedge
