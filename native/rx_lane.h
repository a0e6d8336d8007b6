// The G.711 receive lane (rx_lane.cc): caller packets of answered G.711 calls taken straight from the
// RTP I/O thread's arena into the bot's mux batch, without a JavaScript call per packet.
#pragma once

#include <napi.h>

namespace botedge {

// The tag of firPrepare's plan Externals (addon.cc), so the lane can take the same plans.
extern const napi_type_tag kFirPlanTag;

void InitRxLane(Napi::Env env, Napi::Object exports);

}  // namespace botedge
