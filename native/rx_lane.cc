// The G.711 lane: the caller → bot half of an answered G.711 call (into its `native-mux` batch, or
// the node's direct batch for a bot with a socket of its own), a mux bot's frames into playout
// (RunBot), and every call's plain 20 ms slot out (Tick), done here for the common case instead of
// in JavaScript. Profiled at 200 mux calls, the
// JavaScript path cost ≈ 8 µs per packet on the node's loaded core (parse, checks, receive
// statistics, decode, resample, batch), most of it the calls between a dozen small objects; the
// same work here is the decode and the filter (docs/decisions/0013-rx-lane.md).
//
// The lane takes a packet only when JavaScript would do nothing but the plain steps: the very next
// packet of the same stream (sequence + 1, timestamp + 160, no gap to fill, nothing late), a bare
// 12-byte header with the call's audio payload type, 160 bytes of payload, from the caller's known
// address, with the call's bot batch ready to take a frame. Then it does exactly what
// edge/media/call-media.ts and codecs/rtp-stats.ts do, on the same state: the call's state lives
// in a Float64Array block that both sides read and write (edge/media/rx-lane.ts names the words),
// and the decode buffer, resampler plan and resampler history are the call's own JavaScript
// arrays. Every other packet (the first, a DTMF event, a gap, a late one, RTCP, another size) is
// left in the arena for JavaScript, and so are the rest of that call's packets in the same arena,
// so a call's frames reach the bot in order. test/unit/edge/media/rx-lane.test.ts checks that the
// bot gets the same samples and the call the same statistics both ways.
#include "rx_lane.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fir.h"
#include "g711.h"
#include "ws_writer.h"

namespace botedge {
namespace {

// Words of a call's block (edge/media/rx-lane.ts LANE, checked against `rxLaneLayout` at load).
enum Word : size_t {
  kOn,          // 1: the lane may take this call's packets
  kCodec,       // 0 PCMU, 1 PCMA
  kPt,          // the audio payload type
  kSrcIp,       // where the caller's packets must come from
  kSrcPort,
  kStream,      // the call's mux stream id
  kOutput,      // its bot connection's batch (openOutput)
  kFrameFill,   // CallMedia's partly filled 20 ms frame: the lane needs it empty
  kInSsrc,      // CallMedia: the newest packet passed to the bot
  kInSeq,
  kInTs,
  kInSpan,
  kDecodedLen,  // samples of the last packet in the decode buffer (the gap fill fades them out)
  kPackets,     // packets the lane took (JavaScript adds them to rtpReceived and framesToBot)
  kRx = 16,     // RtpReceiveStats' words from here
  // The bot half: the bot's frames into the playout buffer.
  kBotOn = 32,  // 1: the lane may take this call's bot frames
  kHeld,        // slots held for a late frame (CallMedia or the tick); their packets leave when it comes
  kDownPhase,   // the downsampler's phase (Resampler untilNext): the lane needs 0
  kBotFrames,   // bot frames the lane took (JavaScript adds them to framesFromBot)
  kPlay,        // PlayoutBuffer's words (PlayWord) from here
  // The send half: the tick's frame played out and its packet staged.
  kTxOn = 48,   // 1: the lane may play this call's next frame out
  kTxDone,      // 1: it did, this tick (the clock skips the call's JavaScript tick and clears it)
  kTxSeq,       // the last packet's sequence number and timestamp; the SSRC
  kTxTs,
  kTxSsrc,
  kTxMarker,    // 1: the next packet carries the marker
  kDstIp,       // where the caller's RTP goes
  kDstPort,
  kSpeaking,    // CallMedia: the last slot carried a whole frame (late-frame catch-up)
  kCatchUp,     // 1: late-frame catch-up is on
  kTxSent,      // packets the tick sent, ever (CallMedia adds them to rtpSent when it is asked)
  // A bot with a socket of its own, written from here (attachWriter, ws_writer.h).
  kWsBlocked,   // 1: JavaScript has something of this socket's unwritten (it clears it); leave the frame to it
  kWsSent,      // frames written from here, ever (BotStream adds them to framesSent)
  kMaxHeld,     // how many slots in a row may wait for a late frame (route playoutCatchUpMs / 20)
  kLateFrames,  // late frames the bot half sent in their held slots, ever (CallMedia adds them to playoutLateFrames)
  kWords = 64,
};

// edge/media/playout.ts PLAY: the playout buffer's words, from kPlay.
enum PlayWord : size_t {
  kRead,
  kWrite,
  kNextMark,   // where the oldest pending mark sits (+Infinity: none)
  kWinReads,   // the live-stream trim's window
  kWinMin,
  kWinMax,
  kTrimDue,
  kTrimmed,    // samples the trim dropped
  kTrimWindow, // reads per window (0: no trim)
  kTrimMode,   // 0 any, 1 silence
  kPlayWords,
};

constexpr size_t kPlayRead = kPlay + kRead;
constexpr size_t kPlayWrite = kPlay + kWrite;
static_assert(kPlay + kPlayWords <= kTxOn, "the playout buffer's words fit the block");

enum RxWord : size_t {
  kStarted,
  kSsrc,
  kBase,
  kMaxSeq,
  kCycles,
  kReceived,
  kBadSeq,
  kDoneExpected,
  kDoneReceived,
  kJitter,
  kJitterMax,
  kIntervalJitterMax,
  kTimed,
  kLastArrivalUs,
  kLastTimestamp,
  kClockRate,
  kRxWords,
};

static_assert(kRx + kRxWords <= kBotOn, "RtpReceiveStats' words fit the block");

constexpr size_t kArenaRecordHeader = 16;  // rtp_io.cc: slot, ip, port, len, arrival µs
constexpr uint32_t kTaken = 0xffffffffu;     // a record the lane took: JavaScript skips it
constexpr size_t kPayload = 160;             // bytes (= samples) of a 20 ms G.711 packet
constexpr size_t kMuxRecordHeader = 8;       // sdk/mux-wire.ts: stream, byte length
constexpr size_t kMaxOutputs = 1024;
constexpr size_t kRtpHeader = 12;
constexpr size_t kPacket = kRtpHeader + kPayload;             // a 20 ms G.711 packet
constexpr size_t kStagedHeader = 12;                          // rtp_io.cc: slot, ip, port, len
constexpr size_t kStagedRecord = kStagedHeader + kPacket;     // 184: a multiple of 4, no padding
static_assert(kPacket % 4 == 0, "a staged packet needs no padding");
// playout.ts: the deepest standing queue the trim treats as jitter, and a silent sample's bound.
constexpr double kMaxCushionFrames = 4;
constexpr int kSilencePeak = 64;

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// A mux record's header (sdk/mux-wire.ts): stream id and byte length, little-endian.
inline void StoreMuxHeader(uint8_t* r, uint32_t stream, uint32_t bytes) {
  for (int i = 0; i < 4; i++) r[i] = static_cast<uint8_t>(stream >> (8 * i));
  for (int i = 0; i < 4; i++) r[4 + i] = static_cast<uint8_t>(bytes >> (8 * i));
}

inline uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// One mux connection's batch: records back to back, as sdk/mux-wire.ts RecordWriter writes them
// (little-endian header; samples in host order, which is little-endian wherever we build), in a
// buffer JavaScript owns and grows (setBuffer), so taking the batch makes no object but a view.
struct Output {
  bool open = false;
  uint8_t* data = nullptr;
  size_t cap = 0;
  size_t len = 0;
  Napi::Reference<Napi::Value> keep;
  // The connection's live streams: (stream id, slot), sorted by id, for the bot's frames. Not a
  // table by id: a connection's ids only grow, over millions of calls. Not a node-based hash map:
  // its lookups were a third of RunBot's own time at 600 calls (a cache miss per bucket and per
  // node); a binary search of ≤ a few thousand pairs stays in a few cache lines. Ids are given in
  // increasing order, so a bind appends.
  std::vector<std::pair<uint32_t, uint32_t>> slots;

  bool Room(size_t n) const { return cap - len >= n; }

  std::vector<std::pair<uint32_t, uint32_t>>::iterator At(uint32_t stream) {
    return std::lower_bound(slots.begin(), slots.end(), stream,
                            [](const std::pair<uint32_t, uint32_t>& e, uint32_t id) { return e.first < id; });
  }
  // The slot bound to `stream`, or -1.
  int64_t Find(uint32_t stream) {
    const auto it = At(stream);
    return it != slots.end() && it->first == stream ? int64_t{it->second} : -1;
  }
  void Bind(uint32_t stream, uint32_t slot) {
    const auto it = At(stream);
    if (it != slots.end() && it->first == stream) it->second = slot;
    else slots.insert(it, {stream, slot});
  }
  void Unbind(uint32_t stream) {
    const auto it = At(stream);
    if (it != slots.end() && it->first == stream) slots.erase(it);
  }
};

// A call's arrays the lane writes into (its JavaScript objects keep them; references keep them
// alive here too).
struct Call {
  bool attached = false;
  int16_t* decoded = nullptr;
  const FirPlan* plan = nullptr;
  int16_t* work = nullptr;
  Napi::Reference<Napi::Value> keep_decoded, keep_plan, keep_work;
  uint32_t deferred_in = 0;  // the run in which one of its packets was left to JavaScript
  // The bot half: the downsampler (none for an 8 kHz bot) and the playout ring.
  const FirPlan* down = nullptr;
  int16_t* down_work = nullptr;
  int16_t* ring = nullptr;
  size_t ring_len = 0;
  Napi::Reference<Napi::Value> keep_down, keep_down_work, keep_ring;
  uint32_t bot_deferred_in = 0;
  size_t active_at = SIZE_MAX;  // its place in RxLane::active_, while attached
  // Its bot's socket (a duplicate of JavaScript's descriptor), for frames written from here; -1: none.
  int ws_fd = -1;

  Call() = default;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() { DropWriter(); }

  // Closes our duplicate of the bot's socket (JavaScript's own descriptor stays open).
  void DropWriter() {
    if (ws_fd >= 0) close(ws_fd);
    ws_fd = -1;
  }
};

class RxLane : public Napi::ObjectWrap<RxLane> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RxLane",
                       {InstanceMethod<&RxLane::Attach>("attach"),
                        InstanceMethod<&RxLane::Detach>("detach"), InstanceMethod<&RxLane::Run>("run"),
                        InstanceMethod<&RxLane::AttachBot>("attachBot"),
                        InstanceMethod<&RxLane::Bind>("bind"),
                        InstanceMethod<&RxLane::Unbind>("unbind"),
                        InstanceMethod<&RxLane::RunBot>("runBot"),
                        InstanceMethod<&RxLane::TakeBotFrame>("takeBot"),
                        InstanceMethod<&RxLane::AttachWriter>("attachWriter"),
                        InstanceMethod<&RxLane::DetachWriter>("detachWriter"),
                        InstanceMethod<&RxLane::WsWritten>("wsWritten"),
                        InstanceMethod<&RxLane::Table>("table"),
                        InstanceMethod<&RxLane::OpenOutput>("openOutput"),
                        InstanceMethod<&RxLane::CloseOutput>("closeOutput"),
                        InstanceMethod<&RxLane::Append>("append"), InstanceMethod<&RxLane::Take>("take"),
                        InstanceMethod<&RxLane::SetBuffer>("setBuffer"),
                        InstanceMethod<&RxLane::SetNow>("setNow"),
                        InstanceMethod<&RxLane::Tick>("tick")});
  }

  // new RxLane(arena0: ArrayBuffer, arena1: ArrayBuffer, slots: number,
  //            ready: Uint8Array (per output: 1 = its batch takes frames now),
  //            pending: Uint32Array (per output: records in its batch, written here))
  // The table (slots × kWords doubles) is ours: table() hands it to JavaScript.
  explicit RxLane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RxLane>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsArrayBuffer() || !info[1].IsArrayBuffer() ||
        !info[2].IsNumber() || !IsTyped(info[3], napi_uint8_array) ||
        !IsTyped(info[4], napi_uint32_array)) {
      Napi::TypeError::New(env, "RxLane: expected (arena0, arena1, slots, ready: Uint8Array, pending: Uint32Array)")
          .ThrowAsJavaScriptException();
      return;
    }
    for (int i = 0; i < 2; i++) {
      auto ab = info[i].As<Napi::ArrayBuffer>();
      arenas_[i] = static_cast<uint8_t*>(ab.Data());
      arena_size_[i] = ab.ByteLength();
      keep_arena_[i] = Napi::Persistent(static_cast<Napi::Value>(ab));
    }
    const uint32_t slots = info[2].As<Napi::Number>().Uint32Value();
    auto ready = info[3].As<Napi::Uint8Array>();
    auto pending = info[4].As<Napi::Uint32Array>();
    if (slots == 0 || slots > (1u << 20) || ready.ElementLength() < kMaxOutputs || pending.ElementLength() < kMaxOutputs) {
      Napi::RangeError::New(env, "RxLane: 1 to 2^20 slots, ready and pending of " + std::to_string(kMaxOutputs))
          .ThrowAsJavaScriptException();
      return;
    }
    // Fresh zero pages from the kernel, so only the blocks of slots in use ever cost memory. (A
    // JavaScript Float64Array of the same size comes from calloc, which, once the process has freed
    // large blocks, takes it from the heap and clears every byte: 10 MB resident for 32,768 slots.)
    table_bytes_ = size_t{slots} * kWords * sizeof(double);
    void* mem = mmap(nullptr, table_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      Napi::Error::New(env, "RxLane: no memory for the table").ThrowAsJavaScriptException();
      return;
    }
    table_ = static_cast<double*>(mem);
    calls_.resize(slots);
    ready_ = ready.Data();
    pending_ = pending.Data();
    keep_ready_ = Napi::Persistent(static_cast<Napi::Value>(ready));
    keep_pending_ = Napi::Persistent(static_cast<Napi::Value>(pending));
  }

  ~RxLane() override {
    if (table_) munmap(table_, table_bytes_);
  }

 private:
  static bool IsTyped(const Napi::Value& v, napi_typedarray_type type) {
    return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
  }

  bool Fail(Napi::Env env, const std::string& what) {
    Napi::TypeError::New(env, "RxLane: " + what).ThrowAsJavaScriptException();
    return false;
  }

  // A resampler's plan (from firPrepare, up or down as asked) and its work buffer, or null for
  // none; false with a JavaScript exception pending when they are not that.
  bool FilterArgs(Napi::Env env, const Napi::Value& plan_arg, const Napi::Value& work_arg, bool up,
                  const FirPlan** plan, int16_t** work, size_t* work_len) {
    if (plan_arg.IsNull() || plan_arg.IsUndefined()) return true;
    bool tagged = false;
    void* data = nullptr;
    if (napi_check_object_type_tag(env, plan_arg, &kFirPlanTag, &tagged) != napi_ok || !tagged ||
        napi_get_value_external(env, plan_arg, &data) != napi_ok) {
      return Fail(env, "plan must come from firPrepare");
    }
    *plan = static_cast<const FirPlan*>(data);
    if ((*plan)->up() != up || !IsTyped(work_arg, napi_int16_array)) {
      return Fail(env, up ? "an upsampling plan and its Int16Array work buffer" : "a downsampling plan and its Int16Array work buffer");
    }
    auto w = work_arg.As<Napi::Int16Array>();
    *work = w.Data();
    *work_len = w.ElementLength();
    return true;
  }

  // attach(slot, decoded: Int16Array, plan: External | null, work: Int16Array | null): the call's
  // decode buffer, and its upsampler (plan and history+input buffer) unless the bot speaks 8 kHz.
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsNumber() || !IsTyped(info[1], napi_int16_array)) {
      return Fail(env, "attach(slot, decoded: Int16Array, plan, work)"), env.Undefined();
    }
    uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
    if (slot >= calls_.size()) return Fail(env, "slot out of range"), env.Undefined();
    auto decoded = info[1].As<Napi::Int16Array>();
    if (decoded.ElementLength() < kPayload) return Fail(env, "decode buffer under 160 samples"), env.Undefined();
    const FirPlan* plan = nullptr;
    int16_t* work = nullptr;
    size_t work_len = 0;
    if (!FilterArgs(env, info[2], info[3], true, &plan, &work, &work_len)) return env.Undefined();
    if (plan && work_len < plan->history() + kPayload) return Fail(env, "work buffer under history + 160"), env.Undefined();
    Call& c = CallAt(slot);
    c.attached = true;
    if (c.active_at == SIZE_MAX) {
      c.active_at = active_.size();
      active_.push_back(slot);
    }
    c.decoded = decoded.Data();
    c.plan = plan;
    c.work = work;
    c.keep_decoded = Napi::Persistent(static_cast<Napi::Value>(decoded));
    c.keep_plan = plan ? Napi::Persistent(info[2]) : Napi::Reference<Napi::Value>();
    c.keep_work = plan ? Napi::Persistent(info[3]) : Napi::Reference<Napi::Value>();
    return env.Undefined();
  }

  // detach(slot): the call is over; its arrays are let go.
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t slot = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : UINT32_MAX;
    if (slot < calls_.size()) {
      table_[slot * kWords + kOn] = 0;
      table_[slot * kWords + kBotOn] = 0;
      table_[slot * kWords + kTxOn] = 0;
      if (calls_[slot] && calls_[slot]->active_at != SIZE_MAX) {
        // Swap-remove from the calls the tick visits.
        const size_t at = calls_[slot]->active_at;
        const uint32_t moved = active_.back();
        active_[at] = moved;
        calls_[moved]->active_at = at;
        active_.pop_back();
      }
      calls_[slot].reset();
    }
    return env.Undefined();
  }

  // run(arena: 0 | 1, length) → packets taken. Taken records get slot kTaken.
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      return Fail(env, "run(arena, length)"), env.Undefined();
    }
    uint32_t index = info[0].As<Napi::Number>().Uint32Value();
    size_t length = info[1].As<Napi::Number>().Uint32Value();
    if (index > 1 || length > arena_size_[index]) return Fail(env, "arena 0 or 1, length within it"), env.Undefined();
    uint8_t* arena = arenas_[index];
    if (++run_ == 0) run_ = 1;  // 0 marks "never deferred"
    size_t taken = 0;
    for (size_t off = 0; off + kArenaRecordHeader <= length;) {
      uint8_t* rec = arena + off;
      uint32_t slot = Load32(rec);
      uint16_t len = Load16(rec + 10);
      if (slot < calls_.size() && TakePacket(slot, rec, len)) {
        std::memcpy(rec, &kTaken, 4);
        taken++;
      }
      off += kArenaRecordHeader + ((len + 3u) & ~3u);
    }
    return Napi::Number::New(env, static_cast<double>(taken));
  }

  // The call on `slot` if the lane may do its work of one kind for it (`on`: kOn, kBotOn, kTxOn).
  Call* CallIf(uint32_t slot, Word on) const {
    return table_[size_t{slot} * kWords + on] == 1 ? calls_[slot].get() : nullptr;
  }

  bool TakePacket(uint32_t slot, const uint8_t* rec, uint16_t len) {
    double* w = table_ + size_t{slot} * kWords;
    Call* call = CallIf(slot, kOn);
    if (!call || !call->attached || call->deferred_in == run_) return false;
    Call& c = *call;
    Plain pk;
    if (!IsPlain(w, c, rec, len, &pk)) {
      c.deferred_in = run_;  // and the rest of this call's packets in this arena
      return false;
    }
    const uint8_t* p = rec + kArenaRecordHeader;
    const uint32_t seq = pk.seq;
    const uint32_t ts = pk.ts;
    const uint32_t arrival = Load32(rec + 12);

    // codecs/rtp-stats.ts packet(): the in-order branch, then #time (RFC 3550 A.1, A.8).
    double* rx = w + kRx;
    if (seq < static_cast<uint32_t>(rx[kMaxSeq])) rx[kCycles] += 65536;
    rx[kMaxSeq] = seq;
    rx[kReceived] += 1;
    if (rx[kTimed] == 1) {
      const double arrived = static_cast<double>(arrival - static_cast<uint32_t>(rx[kLastArrivalUs])) * rx[kClockRate] / 1e6;
      const double d = arrived - static_cast<double>(static_cast<int32_t>(ts - static_cast<uint32_t>(rx[kLastTimestamp])));
      double j = rx[kJitter];
      j += (std::fabs(d) - j) / 16;
      rx[kJitter] = j;
      if (j > rx[kJitterMax]) rx[kJitterMax] = j;
      if (j > rx[kIntervalJitterMax]) rx[kIntervalJitterMax] = j;
    }
    rx[kTimed] = 1;
    rx[kLastArrivalUs] = arrival;
    rx[kLastTimestamp] = ts;

    // edge/media/call-media.ts #onPacket: the newest packet passed on, decoded.
    w[kInSeq] = seq;
    w[kInTs] = ts;
    w[kDecodedLen] = kPayload;
    w[kPackets] += 1;
    if (w[kCodec] == 0) UlawDecode(p + 12, c.decoded, kPayload);
    else AlawDecode(p + 12, c.decoded, kPayload);

    // #deliver and #toBot: resampled to the bot's rate, one 20 ms frame, into the batch.
    Output& out = *pk.out;
    uint8_t* r = out.data + out.len;  // IsPlain() saw the room
    StoreMuxHeader(r, static_cast<uint32_t>(w[kStream]), static_cast<uint32_t>(pk.bytes));
    int16_t* dst = reinterpret_cast<int16_t*>(r + kMuxRecordHeader);
    if (c.plan) {
      // codecs/resample.ts process(): stage after the history, filter, keep the last inputs.
      const size_t h = c.plan->history();
      std::memcpy(c.work + h, c.decoded, kPayload * 2);
      c.plan->Up(c.work, kPayload, dst);
      std::memmove(c.work, c.work + kPayload, h * 2);
    } else {
      std::memcpy(dst, c.decoded, pk.bytes);
    }
    // A bot with a socket of its own that we may write to: the frame goes now, not via the batch.
    if (c.ws_fd >= 0 && w[kWsBlocked] == 0) {
      switch (ws_writer_.Write(c.ws_fd, r + kMuxRecordHeader, pk.bytes)) {
        case WsWriter::Result::kSent:
          w[kWsSent] += 1;
          ws_written_++;
          return true;
        case WsWriter::Result::kBusy:
          w[kWsBlocked] = 1;  // JavaScript writes (or queues) this one, and clears it when it has written all
          break;
        case WsWriter::Result::kBroken:
          c.DropWriter();  // the socket is shut down: JavaScript's end sees the connection drop
          break;
      }
    }
    out.len += kMuxRecordHeader + pk.bytes;
    pending_[static_cast<size_t>(&out - outputs_.data())]++;
    return true;
  }

  // attachWriter(slot, fd) → boolean: the call's frames may be written to its bot's socket `fd`
  // (a WebSocket JavaScript opened, plain TCP) from here; the lane keeps a duplicate of it.
  Napi::Value AttachWriter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Fail(env, "attachWriter(slot, fd)"), env.Undefined();
    const uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
    const int fd = info[1].As<Napi::Number>().Int32Value();
    if (slot >= calls_.size() || !calls_[slot] || fd < 0) return Napi::Boolean::New(env, false);
    Call& c = *calls_[slot];
    c.DropWriter();
    c.ws_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    table_[size_t{slot} * kWords + kWsBlocked] = 0;
    return Napi::Boolean::New(env, c.ws_fd >= 0);
  }

  // wsWritten() → frames written to bots' sockets from here, ever (all calls).
  Napi::Value WsWritten(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(ws_written_)); }

  // detachWriter(slot): no more frames from here; the duplicate is closed (JavaScript closes its own).
  Napi::Value DetachWriter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t slot = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : UINT32_MAX;
    if (slot < calls_.size() && calls_[slot]) calls_[slot]->DropWriter();
    return env.Undefined();
  }

  // What IsPlain read of a plain packet, for TakePacket: its numbers, and the batch with room for it.
  struct Plain {
    uint32_t seq = 0;
    uint32_t ts = 0;
    Output* out = nullptr;
    size_t bytes = 0;  // of its frame at the bot's rate
  };

  // Whether JavaScript would do nothing with this packet but the plain steps (see the top). The
  // call's buffers were checked when it attached.
  bool IsPlain(const double* w, const Call& c, const uint8_t* rec, uint16_t len, Plain* pk) {
    const uint8_t* p = rec + kArenaRecordHeader;
    if (len != 12 + kPayload || p[0] != 0x80 || (p[1] & 0x7f) != static_cast<uint32_t>(w[kPt])) return false;
    if (Load32(rec + 4) != static_cast<uint32_t>(w[kSrcIp]) || Load16(rec + 8) != static_cast<uint16_t>(w[kSrcPort])) return false;
    const uint32_t seq = (uint32_t{p[2]} << 8) | p[3];
    const uint32_t ts = Be32(p + 4);
    const double ssrc = Be32(p + 8);
    // CallMedia: the same stream, its very next packet, no gap to fill; the frame empty.
    if (ssrc != w[kInSsrc] || w[kInSpan] != kPayload || w[kFrameFill] != 0) return false;
    if (seq != ((static_cast<uint32_t>(w[kInSeq]) + 1) & 0xffff)) return false;
    if (ts != static_cast<uint32_t>(static_cast<uint32_t>(w[kInTs]) + kPayload)) return false;
    // RtpReceiveStats: the next sequence number of its current run.
    const double* rx = w + kRx;
    if (rx[kStarted] != 1 || ssrc != rx[kSsrc] || ((seq - static_cast<uint32_t>(rx[kMaxSeq])) & 0xffff) != 1) return false;
    // The bot's batch.
    const double o = w[kOutput];
    if (!(o >= 0 && o < outputs_.size()) || ready_[static_cast<size_t>(o)] != 1) return false;
    Output& out = outputs_[static_cast<size_t>(o)];
    const size_t bytes = (c.plan ? kPayload * c.plan->factor() : kPayload) * 2;
    if (!out.open || !out.Room(kMuxRecordHeader + bytes)) return false;  // JavaScript grows it
    *pk = Plain{seq, ts, &out, bytes};
    return true;
  }

  // table() → ArrayBuffer over the blocks (valid while this object lives: keep it beside it).
  Napi::Value Table(const Napi::CallbackInfo& info) {
    return Napi::ArrayBuffer::New(info.Env(), table_, table_bytes_);
  }

  // attachBot(slot, plan: External | null, work: Int16Array | null, ring: Int16Array): the call's
  // downsampler (none for an 8 kHz bot) and its playout ring.
  Napi::Value AttachBot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsNumber() || !IsTyped(info[3], napi_int16_array)) {
      return Fail(env, "attachBot(slot, plan, work, ring: Int16Array)"), env.Undefined();
    }
    uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
    if (slot >= calls_.size()) return Fail(env, "slot out of range"), env.Undefined();
    const FirPlan* plan = nullptr;
    int16_t* work = nullptr;
    size_t work_len = 0;
    if (!FilterArgs(env, info[1], info[2], false, &plan, &work, &work_len)) return env.Undefined();
    if (plan && work_len < plan->history() + kPayload * plan->factor()) return Fail(env, "work buffer under history + a bot frame"), env.Undefined();
    Call& c = CallAt(slot);
    c.down = plan;
    c.down_work = work;
    c.keep_down = plan ? Napi::Persistent(info[1]) : Napi::Reference<Napi::Value>();
    c.keep_down_work = plan ? Napi::Persistent(info[2]) : Napi::Reference<Napi::Value>();
    SetRing(c, info[3].As<Napi::Int16Array>());
    return env.Undefined();
  }

  Call& CallAt(uint32_t slot) {
    if (!calls_[slot]) calls_[slot] = std::make_unique<Call>();
    return *calls_[slot];
  }

  void SetRing(Call& c, Napi::Int16Array ring) {
    c.ring = ring.Data();
    c.ring_len = ring.ElementLength();
    c.keep_ring = Napi::Persistent(static_cast<Napi::Value>(ring));
  }

  // bind(output, stream, slot) / unbind(output, stream): which call a stream of a batch's connection is.
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber()) return Fail(env, "bind(output, stream, slot)"), env.Undefined();
    uint32_t stream = info[1].As<Napi::Number>().Uint32Value();
    uint32_t slot = info[2].As<Napi::Number>().Uint32Value();
    if (slot >= calls_.size()) return Fail(env, "slot out of range"), env.Undefined();
    out->Bind(stream, slot);
    return env.Undefined();
  }

  Napi::Value Unbind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    if (info.Length() > 1 && info[1].IsNumber()) out->Unbind(info[1].As<Napi::Number>().Uint32Value());
    return env.Undefined();
  }

  // runBot(output, msg: Uint8Array) → frames taken: the bot's binary message on that connection.
  // Taken records get stream kTaken; JavaScript reads the rest (and any problem with the message).
  Napi::Value RunBot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    if (info.Length() < 2 || !IsTyped(info[1], napi_uint8_array)) return Fail(env, "runBot(output, msg: Uint8Array)"), env.Undefined();
    auto msg = info[1].As<Napi::Uint8Array>();
    uint8_t* m = msg.Data();
    const size_t size = msg.ElementLength();
    if (++bot_run_ == 0) bot_run_ = 1;
    size_t taken = 0;
    for (size_t off = 0; size - off >= kMuxRecordHeader;) {
      const uint32_t stream = LoadLe32(m + off);
      const uint32_t len = LoadLe32(m + off + 4);
      const size_t start = off + kMuxRecordHeader;
      if (len > size - start) break;  // truncated: JavaScript reports it
      const int64_t bound = out->Find(stream);
      if (bound >= 0 && TakeBot(static_cast<uint32_t>(bound), m + start, len)) {
        std::memcpy(m + off, &kTaken, 4);
        taken++;
      }
      off = start + len;
    }
    return Napi::Number::New(env, static_cast<double>(taken));
  }

  // takeBot(slot, frame: Uint8Array) → boolean: one binary message of a bot with a socket of its
  // own, bare PCM at the bot's rate (edge/bot/bot-stream.ts); false leaves it to JavaScript.
  Napi::Value TakeBotFrame(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !IsTyped(info[1], napi_uint8_array)) return Fail(env, "takeBot(slot, frame: Uint8Array)"), env.Undefined();
    const uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
    if (slot >= calls_.size()) return Fail(env, "slot out of range"), env.Undefined();
    auto frame = info[1].As<Napi::Uint8Array>();
    // A message is one frame: nothing of this call's is deferred behind it in the same run.
    if (++bot_run_ == 0) bot_run_ = 1;
    const bool taken = frame.ElementLength() <= UINT32_MAX && TakeBot(slot, frame.Data(), static_cast<uint32_t>(frame.ElementLength()));
    return Napi::Boolean::New(env, taken);
  }

  // CallMedia.queueBotAudio and PlayoutBuffer.push for one plain frame: a whole 20 ms at the bot's
  // rate, the downsampler in phase, room in the ring without growing or dropping. A frame the
  // tick holds slots for (late-frame catch-up, decision 0017) is plain too when the lane may send
  // for the call (txOn), no mark can be reached by the held slots' reads, and the now-buffer has
  // room for their packets: they are then played out as CallMedia #fillHeld does, each packet a
  // record in the now-buffer that JavaScript sends at once (RtpIo.sendRecords) when this returns.
  bool TakeBot(uint32_t slot, const uint8_t* pcm, uint32_t bytes) {
    double* w = table_ + size_t{slot} * kWords;
    Call* call = CallIf(slot, kBotOn);
    if (!call || !call->ring || call->bot_deferred_in == bot_run_) return false;
    Call& c = *call;
    const size_t factor = c.down ? c.down->factor() : 1;
    const size_t n = bytes / 2;
    const double read = w[kPlayRead];
    const double write = w[kPlayWrite];
    const double held = w[kHeld];
    // (The downsampler's work buffer holds a frame: AttachBot checked.)
    bool plain = bytes == kPayload * factor * 2 && w[kDownPhase] == 0 &&
                 write - read + kPayload <= static_cast<double>(c.ring_len);
    // Each held slot's read takes a frame, and the trim may drop one more: no mark within that.
    if (plain && held != 0) {
      plain = CallIf(slot, kTxOn) != nullptr && w[kPlay + kNextMark] > read + held * 2 * kPayload &&
              now_ != nullptr && now_cap_ - *now_used_ >= static_cast<size_t>(held) * kStagedRecord;
    }
    if (!plain) {
      c.bot_deferred_in = bot_run_;  // and the rest of this call's frames in this message
      return false;
    }
    int16_t frame[kPayload];
    if (c.down) {
      // codecs/resample.ts process(): stage after the history (the bytes may sit at an odd
      // offset of the message: copied as bytes), filter from phase 0, keep the last inputs.
      const size_t h = c.down->history();
      std::memcpy(c.down_work + h, pcm, bytes);
      c.down->Down(c.down_work, 0, n, frame);
      std::memmove(c.down_work, c.down_work + n, h * 2);
    } else {
      std::memcpy(frame, pcm, bytes);
    }
    // edge/media/playout.ts push(): at write mod the ring's length, wrapping once at most.
    const size_t cap = c.ring_len;
    const size_t pos = static_cast<size_t>(std::fmod(write, static_cast<double>(cap)));
    const size_t first = std::min(kPayload, cap - pos);
    std::memcpy(c.ring + pos, frame, first * 2);
    if (first < kPayload) std::memcpy(c.ring, frame + first, (kPayload - first) * 2);
    w[kPlayWrite] = write + kPayload;
    w[kBotFrames] += 1;
    if (held != 0) FillHeld(slot, c, w);
    return true;
  }

  // CallMedia #fillHeld: the late frames are here; each held slot, oldest first, leaves now with
  // what is queued, with that slot's sequence number and timestamp.
  void FillHeld(uint32_t slot, const Call& c, double* w) {
    while (w[kHeld] > 0 && w[kPlayWrite] - w[kPlayRead] >= kPayload) {
      int16_t out[kPayload];
      bool whole = false;
      if (!ReadFrame(c, w, out, &whole)) return;  // a mark (TakeBot's bound makes it impossible)
      const double back = --w[kHeld];
      w[kLateFrames] += 1;
      w[kSpeaking] = whole ? 1 : 0;
      const uint32_t seq = (static_cast<uint32_t>(w[kTxSeq]) - static_cast<uint32_t>(back)) & 0xffff;
      const uint32_t ts = static_cast<uint32_t>(w[kTxTs]) - static_cast<uint32_t>(back) * static_cast<uint32_t>(kPayload);
      WriteRecord(slot, w, out, seq, ts, now_ + *now_used_);
      *now_used_ += kStagedRecord;
    }
  }

  // tick(buf: Uint8Array) → bytes: plays out this tick's frame of every call it can (TickOne), each
  // packet a staged record (rtp_io.cc stageRecords) in buf. It stops when buf is full: JavaScript
  // ticks the rest and gives it a larger one.
  Napi::Value Tick(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !IsTyped(info[0], napi_uint8_array)) return Fail(env, "tick(buf: Uint8Array)"), env.Undefined();
    auto buf = info[0].As<Napi::Uint8Array>();
    uint8_t* b = buf.Data();
    const size_t cap = buf.ElementLength();
    size_t len = 0;
    for (const uint32_t slot : active_) {
      if (cap - len < kStagedRecord) break;
      const Slot done = TickOne(slot, b + len);
      if (done == Slot::kStaged) len += kStagedRecord;
      else if (done == Slot::kHeld && now_used_) now_used_[1]++;  // (SetNow is called at construction)
    }
    return Napi::Number::New(env, static_cast<double>(len));
  }

  enum class Slot { kLeft, kStaged, kHeld };

  // CallMedia.tick for the plain slot, on the same words. Plain: the lane may send (txOn: sending,
  // no DTMF, the address known) and either
  // - the bot's next frame is late (catch-up on, the last slot carried a whole frame, less than a
  //   frame queued; or slots already held, fewer than the bound): the slot is held — its header
  //   taken, nothing sent (kHeld); or
  // - no slot is held and no mark is reached: the next frame of the playout buffer (with its
  //   live-stream trim) encoded, in the next packet, staged at rec (kStaged).
  // Otherwise nothing is written, and JavaScript ticks the call (kLeft): held slots whose frame did
  // not come within the bound, a mark, DTMF, the first tick.
  Slot TickOne(uint32_t slot, uint8_t* rec) {
    double* w = table_ + size_t{slot} * kWords;
    const Call* call = CallIf(slot, kTxOn);
    if (!call || !call->ring) return Slot::kLeft;
    const Call& c = *call;
    const double buffered = w[kPlayWrite] - w[kPlayRead];
    const double held = w[kHeld];
    if (held != 0) {
      if (held >= w[kMaxHeld] || buffered >= kPayload) return Slot::kLeft;  // JavaScript sends every held slot
      Advance(w);
      w[kHeld] = held + 1;
      w[kTxDone] = 1;
      return Slot::kHeld;
    }
    if (w[kCatchUp] == 1 && w[kSpeaking] == 1 && buffered < kPayload) {
      Advance(w);
      w[kHeld] = 1;
      w[kSpeaking] = 0;
      w[kTxDone] = 1;
      return Slot::kHeld;
    }
    int16_t out[kPayload];
    bool whole = false;
    if (!ReadFrame(c, w, out, &whole)) return Slot::kLeft;  // a mark is reached: JavaScript reports it
    w[kSpeaking] = whole ? 1 : 0;
    Advance(w);
    WriteRecord(slot, w, out, static_cast<uint32_t>(w[kTxSeq]), static_cast<uint32_t>(w[kTxTs]), rec);
    w[kTxDone] = 1;
    return Slot::kStaged;
  }

  // CallMedia #advance: the next slot's sequence number and timestamp.
  static void Advance(double* w) {
    w[kTxSeq] = (static_cast<uint32_t>(w[kTxSeq]) + 1) & 0xffff;
    w[kTxTs] = static_cast<uint32_t>(w[kTxTs]) + static_cast<uint32_t>(kPayload);
  }

  // playout.ts read() for one frame, with its live-stream trim: the next 160 samples into `out`,
  // silence for what is missing; `whole` when all 160 were queued. False, writing no state, when
  // the read reaches a mark (JavaScript reports it).
  static bool ReadFrame(const Call& c, double* w, int16_t* out, bool* whole) {
    double* s = w + kPlay;
    const double read = s[kRead];
    const double write = s[kWrite];
    const double buffered = write - read;
    const size_t n = buffered < kPayload ? static_cast<size_t>(buffered) : kPayload;
    const size_t cap = c.ring_len;
    const size_t pos = static_cast<size_t>(std::fmod(read, static_cast<double>(cap)));
    const size_t first = std::min(n, cap - pos);
    std::memcpy(out, c.ring + pos, first * 2);
    if (first < n) std::memcpy(out + first, c.ring, (n - first) * 2);
    std::fill(out + n, out + kPayload, int16_t{0});
    double r = read + static_cast<double>(n);
    // #trim, on copies of its words (written only if no mark is reached).
    double win_reads = s[kWinReads], win_min = s[kWinMin], win_max = s[kWinMax];
    double trim_due = s[kTrimDue], trimmed = s[kTrimmed];
    if (s[kTrimWindow] > 0) {
      const double left = write - r;
      if (left < win_min) win_min = left;
      if (left > win_max) win_max = left;
      if (++win_reads >= s[kTrimWindow]) {
        if (win_min >= kPayload && win_max <= kPayload * kMaxCushionFrames) {
          if (s[kTrimMode] == 0) {
            r += kPayload;
            trimmed += kPayload;
            trim_due = 0;
          } else {
            trim_due = 1;
          }
        }
        win_reads = 0;
        win_min = INFINITY;
        win_max = 0;
      }
      if (trim_due != 0) {
        if (left < kPayload || left > kPayload * kMaxCushionFrames) {
          trim_due = 0;
        } else if (HeadIsSilent(c, r)) {
          r += kPayload;
          trimmed += kPayload;
          trim_due = 0;
        }
      }
    }
    if (s[kNextMark] <= r) return false;
    s[kRead] = r;
    s[kWinReads] = win_reads;
    s[kWinMin] = win_min;
    s[kWinMax] = win_max;
    s[kTrimDue] = trim_due;
    s[kTrimmed] = trimmed;
    *whole = n == kPayload;
    return true;
  }

  // CallMedia #emit's packet: the frame encoded under the header of slot (seq, ts), laid out as a
  // record (rtp_io.cc's staged layout) at rec; the marker goes out once; counted in kTxSent.
  static void WriteRecord(uint32_t slot, double* w, const int16_t* out, uint32_t seq, uint32_t ts, uint8_t* rec) {
    const uint32_t ssrc = static_cast<uint32_t>(w[kTxSsrc]);
    const uint32_t ip = static_cast<uint32_t>(w[kDstIp]);
    const uint16_t port = static_cast<uint16_t>(w[kDstPort]);
    const uint16_t plen = static_cast<uint16_t>(kPacket);
    std::memcpy(rec, &slot, 4);
    std::memcpy(rec + 4, &ip, 4);
    std::memcpy(rec + 8, &port, 2);
    std::memcpy(rec + 10, &plen, 2);
    uint8_t* p = rec + kStagedHeader;
    p[0] = 0x80;
    p[1] = static_cast<uint8_t>((w[kTxMarker] == 1 ? 0x80 : 0) | (static_cast<uint32_t>(w[kPt]) & 0x7f));
    p[2] = static_cast<uint8_t>(seq >> 8);
    p[3] = static_cast<uint8_t>(seq);
    for (int i = 0; i < 4; i++) p[4 + i] = static_cast<uint8_t>(ts >> (24 - 8 * i));
    for (int i = 0; i < 4; i++) p[8 + i] = static_cast<uint8_t>(ssrc >> (24 - 8 * i));
    if (w[kCodec] == 0) UlawEncode(out, p + kRtpHeader, kPayload);
    else AlawEncode(out, p + kRtpHeader, kPayload);
    w[kTxMarker] = 0;
    w[kTxSent] += 1;
  }

  // setNow(buf: Uint8Array, counters: Uint32Array(2)): where the bot half lays out the packets of
  // held slots its late frames fill (staged records, sent at once by JavaScript after runBot and
  // takeBot); counters[0] is the bytes in it (JavaScript zeroes it when it has sent them),
  // counters[1] the slots the tick has held, ever (mod 2^32). An empty buffer: no held slot is
  // filled here (nobody would send the packets).
  Napi::Value SetNow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !IsTyped(info[0], napi_uint8_array) || !IsTyped(info[1], napi_uint32_array)) {
      return Fail(env, "setNow(buf: Uint8Array, counters: Uint32Array)"), env.Undefined();
    }
    auto buf = info[0].As<Napi::Uint8Array>();
    auto counters = info[1].As<Napi::Uint32Array>();
    if (counters.ElementLength() < 2 || (now_used_ && *now_used_ > 0)) {
      return Fail(env, "setNow: counters of 2, and the last buffer sent first"), env.Undefined();
    }
    now_ = buf.Data();
    now_cap_ = buf.ElementLength();
    now_used_ = counters.Data();
    *now_used_ = 0;
    keep_now_ = Napi::Persistent(static_cast<Napi::Value>(buf));
    keep_now_counters_ = Napi::Persistent(static_cast<Napi::Value>(counters));
    return env.Undefined();
  }

  // playout.ts #headIsSilent: the 160 samples from `from` all within ±kSilencePeak.
  static bool HeadIsSilent(const Call& c, double from) {
    const size_t cap = c.ring_len;
    size_t at = static_cast<size_t>(std::fmod(from, static_cast<double>(cap)));
    for (size_t i = 0; i < kPayload; i++) {
      const int v = c.ring[at];
      if (v > kSilencePeak || v < -kSilencePeak) return false;
      if (++at == cap) at = 0;
    }
    return true;
  }

  // openOutput() → index of a new batch (a mux connection's).
  Napi::Value OpenOutput(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    for (size_t i = 0; i < kMaxOutputs; i++) {
      if (i >= outputs_.size()) outputs_.resize(i + 1);
      if (!outputs_[i].open) {
        outputs_[i] = Output();
        outputs_[i].open = true;
        ready_[i] = 0;
        pending_[i] = 0;
        return Napi::Number::New(env, static_cast<double>(i));
      }
    }
    Napi::RangeError::New(env, "RxLane: every output is in use").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Output* OutputArg(const Napi::CallbackInfo& info) {
    uint32_t i = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : UINT32_MAX;
    if (i >= outputs_.size() || !outputs_[i].open) {
      Fail(info.Env(), "no such output");
      return nullptr;
    }
    return &outputs_[i];
  }

  // closeOutput(i): its batch is dropped and its memory let go; the calls bound to it leave the
  // lane (their calls turn it off themselves; this also covers a connection closed under them, so
  // a later connection given the same index never gets their frames).
  Napi::Value CloseOutput(const Napi::CallbackInfo& info) {
    if (Output* out = OutputArg(info)) {
      size_t i = static_cast<size_t>(out - outputs_.data());
      for (const auto& [stream, slot] : out->slots) {
        table_[size_t{slot} * kWords + kOn] = 0;
        table_[size_t{slot} * kWords + kBotOn] = 0;
      }
      *out = Output();
      ready_[i] = 0;
      pending_[i] = 0;
    }
    return info.Env().Undefined();
  }

  // setBuffer(i, buf: Uint8Array): the batch's memory from now on; what it holds is copied over.
  Napi::Value SetBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    if (info.Length() < 2 || !IsTyped(info[1], napi_uint8_array)) return Fail(env, "setBuffer(output, buf: Uint8Array)"), env.Undefined();
    auto buf = info[1].As<Napi::Uint8Array>();
    if (buf.ElementLength() < out->len) return Fail(env, "a buffer smaller than the batch"), env.Undefined();
    if (out->len > 0) std::memmove(buf.Data(), out->data, out->len);
    out->data = buf.Data();
    out->cap = buf.ElementLength();
    out->keep = Napi::Persistent(static_cast<Napi::Value>(buf));
    return env.Undefined();
  }

  // append(i, stream, pcm: Int16Array) → false when the buffer has no room (setBuffer a larger
  // one and append again): a record JavaScript writes (a frame of the JavaScript path).
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    if (info.Length() < 3 || !info[1].IsNumber() || !IsTyped(info[2], napi_int16_array)) {
      return Fail(env, "append(output, stream, pcm: Int16Array)"), env.Undefined();
    }
    const uint32_t stream = info[1].As<Napi::Number>().Uint32Value();
    auto pcm = info[2].As<Napi::Int16Array>();
    const uint32_t bytes = static_cast<uint32_t>(pcm.ElementLength() * 2);
    if (!out->Room(kMuxRecordHeader + bytes)) return Napi::Boolean::New(env, false);
    uint8_t* r = out->data + out->len;
    StoreMuxHeader(r, stream, bytes);
    std::memcpy(r + kMuxRecordHeader, pcm.Data(), bytes);
    out->len += kMuxRecordHeader + bytes;
    pending_[static_cast<size_t>(out - outputs_.data())]++;
    return Napi::Boolean::New(env, true);
  }

  // take(i) → the batch's length in bytes (0: empty); the batch starts afresh. JavaScript sends
  // that much of its buffer before anything is added again.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Output* out = OutputArg(info);
    if (!out) return env.Undefined();
    size_t len = out->len;
    out->len = 0;
    pending_[static_cast<size_t>(out - outputs_.data())] = 0;
    return Napi::Number::New(env, static_cast<double>(len));
  }

  uint8_t* arenas_[2] = {nullptr, nullptr};
  size_t arena_size_[2] = {0, 0};
  Napi::Reference<Napi::Value> keep_arena_[2];
  double* table_ = nullptr;
  size_t table_bytes_ = 0;
  uint8_t* ready_ = nullptr;
  uint32_t* pending_ = nullptr;
  Napi::Reference<Napi::Value> keep_ready_, keep_pending_;
  // One per I/O slot, made when a call attaches: 8 bytes for a slot never used (there are 32,768).
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<Output> outputs_;
  uint32_t run_ = 0;
  uint64_t ws_written_ = 0;
  WsWriter ws_writer_;  // frames to bots with a socket of their own
  uint32_t bot_run_ = 0;
  std::vector<uint32_t> active_;  // the slots of attached calls: what the tick visits
  // The bot half's packets for held slots (SetNow): records, and [bytes in it, slots held by the tick].
  uint8_t* now_ = nullptr;
  size_t now_cap_ = 0;
  uint32_t* now_used_ = nullptr;
  Napi::Reference<Napi::Value> keep_now_, keep_now_counters_;
};

}  // namespace

void InitRxLane(Napi::Env env, Napi::Object exports) {
  exports.Set("RxLane", RxLane::Define(env));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("words", Napi::Number::New(env, kWords));
  layout.Set("on", Napi::Number::New(env, kOn));
  layout.Set("codec", Napi::Number::New(env, kCodec));
  layout.Set("pt", Napi::Number::New(env, kPt));
  layout.Set("srcIp", Napi::Number::New(env, kSrcIp));
  layout.Set("srcPort", Napi::Number::New(env, kSrcPort));
  layout.Set("stream", Napi::Number::New(env, kStream));
  layout.Set("output", Napi::Number::New(env, kOutput));
  layout.Set("frameFill", Napi::Number::New(env, kFrameFill));
  layout.Set("inSsrc", Napi::Number::New(env, kInSsrc));
  layout.Set("inSeq", Napi::Number::New(env, kInSeq));
  layout.Set("inTs", Napi::Number::New(env, kInTs));
  layout.Set("inSpan", Napi::Number::New(env, kInSpan));
  layout.Set("decodedLen", Napi::Number::New(env, kDecodedLen));
  layout.Set("packets", Napi::Number::New(env, kPackets));
  layout.Set("rx", Napi::Number::New(env, kRx));
  layout.Set("botOn", Napi::Number::New(env, kBotOn));
  layout.Set("held", Napi::Number::New(env, kHeld));
  layout.Set("downPhase", Napi::Number::New(env, kDownPhase));
  layout.Set("botFrames", Napi::Number::New(env, kBotFrames));
  layout.Set("play", Napi::Number::New(env, kPlay));
  layout.Set("stagedRecord", Napi::Number::New(env, static_cast<double>(kStagedRecord)));
  const std::pair<const char*, size_t> tx[] = {{"txOn", kTxOn}, {"txDone", kTxDone}, {"txSeq", kTxSeq},
                                               {"txTs", kTxTs}, {"txSsrc", kTxSsrc}, {"txMarker", kTxMarker},
                                               {"dstIp", kDstIp}, {"dstPort", kDstPort}, {"speaking", kSpeaking},
                                               {"catchUp", kCatchUp}, {"txSent", kTxSent},
                                               {"wsBlocked", kWsBlocked}, {"wsSent", kWsSent},
                                               {"maxHeld", kMaxHeld}, {"lateFrames", kLateFrames}};
  for (const auto& [name, word] : tx) layout.Set(name, Napi::Number::New(env, static_cast<double>(word)));
  Napi::Object play = Napi::Object::New(env);
  const char* play_names[] = {"read", "write", "nextMark", "winReads", "winMin", "winMax", "trimDue", "trimmed", "trimWindow", "trimMode"};
  for (size_t i = 0; i < kPlayWords; i++) play.Set(play_names[i], Napi::Number::New(env, static_cast<double>(i)));
  layout.Set("playWords", play);
  // RtpReceiveStats' words (codecs/rtp-stats.ts RX), from `rx` on.
  Napi::Object rx = Napi::Object::New(env);
  const char* rx_names[] = {"started", "ssrc", "base", "maxSeq", "cycles", "received", "badSeq", "doneExpected",
                            "doneReceived", "jitter", "jitterMax", "intervalJitterMax", "timed", "lastArrivalUs",
                            "lastTimestamp", "clockRate"};
  for (size_t i = 0; i < kRxWords; i++) rx.Set(rx_names[i], Napi::Number::New(env, static_cast<double>(i)));
  layout.Set("rxWords", rx);
  layout.Set("maxOutputs", Napi::Number::New(env, static_cast<double>(kMaxOutputs)));
  exports.Set("rxLaneLayout", layout);
}

}  // namespace botedge
