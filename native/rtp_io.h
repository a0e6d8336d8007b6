// The RtpIo class (rtp_io.cc): a media node's RTP sockets on one native I/O thread.
#pragma once

#include <napi.h>

namespace botedge {

void InitRtpIo(Napi::Env env, Napi::Object exports);

}  // namespace botedge
