import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Connect authenticity for bot WebSockets. The node adds three headers to the WebSocket upgrade
 * request of every call's connect:
 *
 *   X-BotEdge-Timestamp: 1763712000                    (Unix seconds when the node connected)
 *   X-BotEdge-Call-Id:   5b0d…                          (our call id, as in the start frame)
 *   X-BotEdge-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + callId + ":" + url)>
 *
 * `url` is exactly the URL the node connected to (scheme, host, port, path and query as configured);
 * a WebSocket upgrade has no body, so the signed string has none. A bot verifies by recomputing the
 * HMAC with the shared secret, comparing in constant time, and rejecting timestamps more than a few
 * minutes old (the signature is a short-lived token: replaying it later fails). Twilio routes
 * additionally carry Twilio's own `X-Twilio-Signature` (see twilio.ts).
 */
export const SIGNATURE_VERSION = 'v1';
export const HEADER_TIMESTAMP = 'X-BotEdge-Timestamp';
export const HEADER_CALL_ID = 'X-BotEdge-Call-Id';
export const HEADER_SIGNATURE = 'X-BotEdge-Signature';

export function connectSignature(secret: string, url: string, callId: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${SIGNATURE_VERSION}:${timestamp}:${callId}:${url}`, 'utf8').digest('hex');
  return `${SIGNATURE_VERSION}=${mac}`;
}

/** The headers for one connect. `nowMs` is injected so tests need no clock. */
export function signConnect(secret: string, url: string, callId: string, nowMs: number): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  return { [HEADER_TIMESTAMP]: String(ts), [HEADER_CALL_ID]: callId, [HEADER_SIGNATURE]: connectSignature(secret, url, callId, ts) };
}

export type VerifyResult = { ok: true; callId: string } | { ok: false; reason: string };

/**
 * What a bot written in Node does with an upgrade request (`headers` as Node gives them, lower-case
 * names). `url` must be the URL the node was configured with, not what a proxy rewrote it to.
 */
export function verifyConnect(secret: string, url: string, headers: Record<string, string | string[] | undefined>, nowMs: number, toleranceSec = 300): VerifyResult {
  const get = (name: string) => {
    const v = headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const ts = Number(get(HEADER_TIMESTAMP));
  const callId = get(HEADER_CALL_ID);
  const sig = get(HEADER_SIGNATURE);
  if (!Number.isInteger(ts) || callId === undefined || sig === undefined) return { ok: false, reason: 'signature headers missing' };
  if (Math.abs(nowMs / 1000 - ts) > toleranceSec) return { ok: false, reason: 'timestamp outside tolerance' };
  const want = Buffer.from(connectSignature(secret, url, callId, ts));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true, callId };
}
