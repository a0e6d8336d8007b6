import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { PlayoutTrim } from './media/playout.js';

/** Twilio Media Streams options of a route (docs/bot-protocols.md#twilio). */
export const TwilioRouteSchema = z
  .object({
    /** `accountSid` in `start` and the account of the REST hangup endpoint. Default AC000…0. */
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be AC followed by 32 hex digits').default('AC00000000000000000000000000000000'),
    /**
     * Auth token: signs each connect with `X-Twilio-Signature` (HMAC-SHA1 over the URL, as Twilio
     * does) and is the basic-auth password of the REST hangup endpoint. Unset: neither.
     */
    authToken: z.string().min(1).optional(),
    /** `start.customParameters` (like TwiML `<Parameter>`); forwarded SIP headers are added to it. */
    customParameters: z.record(z.string(), z.string()).default({}),
  })
  .strict();

/** jambonz `listen` options of a route (docs/bot-protocols.md#jambonz). */
export const JambonzRouteSchema = z
  .object({
    /** WebSocket subprotocol offered: `audio.jambonz.org` (default) or the older `audio.drachtio.org`. */
    subprotocol: z.enum(['audio.jambonz.org', 'audio.drachtio.org']).default('audio.jambonz.org'),
    /** Extra fields merged into the metadata text frame (the listen verb's `metadata`). */
    metadata: z.record(z.string(), z.unknown()).default({}),
    /** `accountSid` and `applicationSid` in the metadata frame. */
    accountSid: z.string().default(''),
    applicationSid: z.string().default(''),
    /** Send DTMF to the bot (the listen verb's `passDtmf`). Default true. */
    passDtmf: z.boolean().default(true),
  })
  .strict();

/** One route: where calls to a number go. */
export const RouteSchema = z
  .object({
    /** Bot WebSocket URL (ws:// or wss://). */
    url: z.string().url().refine((u) => /^wss?:\/\//.test(u), 'must be a ws:// or wss:// URL'),
    /** Bot protocol: `native` (ours), `native-mux` (ours, one shared socket per bot URL), `twilio` (Media Streams) or `jambonz` (listen). */
    protocol: z.enum(['native', 'native-mux', 'twilio', 'jambonz']).default('native'),
    /** PCM rate the bot speaks, Hz (native and jambonz; twilio is always 8000 µ-law). */
    sampleRate: z.union([z.literal(8000), z.literal(16000), z.literal(24000)]).default(8000),
    /** Playout buffer for this route's bots, ms; default: the node's `playoutBufferMs`. */
    playoutBufferMs: z.number().int().min(100).max(600000).optional(),
    /**
     * Live-stream trim: when a bot streaming in real time leaves a standing queue of 1-4 frames for
     * a second, drop one 20 ms frame so bot→caller latency does not ratchet up over the call (see
     * edge/media/playout.ts). TTS bursts (deeper queues) are never trimmed. `silence` (default):
     * the frame dropped is the next silent one (a pause 20 ms shorter; no speech lost). `any`: the
     * next frame, speech or not — for bots that never send silence (an echo). `off` (or false):
     * every frame the bot sends is played, as Twilio and jambonz do. `true` means `any`.
     */
    playoutTrim: z
      .union([z.boolean(), z.enum(['off', 'silence', 'any'])])
      .default('silence')
      .transform((v): PlayoutTrim => (v === true ? 'any' : v === false ? 'off' : v)),
    /**
     * Late-frame catch-up (G.711 calls): a frame of a bot mid-speech that lands just after its tick
     * goes out at once in the slot it missed, instead of at the next tick with every later frame
     * queued a tick behind it (see edge/media/call-media.ts). Nothing is dropped. Default true;
     * false sends strictly on the node's ticks.
     */
    playoutCatchUp: z.boolean().default(true),
    /**
     * The longest a slot may wait for its late frame, in ms (a multiple of 20, 20–100): a bot's
     * stall or a burst of jitter up to this long costs the caller one late packet per missed slot
     * instead of a standing queue for the rest of the talk spurt. Beyond it the held slots leave
     * with silence.
     */
    playoutCatchUpMs: z.number().int().min(20).max(100).multipleOf(20).default(40),
    /**
     * libopus encoder complexity (0–10) for the bot's audio on Opus calls: lower spends less CPU per
     * call for a little quality (measured: docs/benchmarks/capacity.md, "Opus encoder complexity").
     * Default 5. G.711 and G.722 calls ignore it.
     */
    opusComplexity: z.number().int().min(0).max(10).default(5),
    /**
     * HMAC-SHA256 key that signs every connect (`X-BotEdge-Signature`); default: the node's
     * `botSigningSecret`. Unset on both: connects are not signed.
     */
    signingSecret: z.string().min(16).optional(),
    /** PEM file of the CA(s) that sign the bot's wss:// certificate; default: the system CAs. */
    ca: z.string().min(1).optional(),
    /**
     * What the call does when its bot fails (stops reading past `botReadTimeoutMs`, or its socket
     * drops without a close handshake): `hangup` (BYE at once), or `prompt` (play `fallbackPrompt`,
     * then BYE). A bot that closes normally or asks to hang up always ends the call at once.
     */
    onBotFailure: z.enum(['hangup', 'prompt']).default('hangup'),
    /** Audio for `onBotFailure: prompt`: a WAV file (PCM 16-bit mono, 8/16/24 kHz) or raw 8 kHz 16-bit LE PCM. */
    fallbackPrompt: z.string().min(1).optional(),
    twilio: TwilioRouteSchema.optional(),
    jambonz: JambonzRouteSchema.optional(),
  })
  .strict()
  .refine((r) => r.protocol !== 'twilio' || r.sampleRate === 8000, { message: 'twilio bots speak 8000 Hz µ-law only', path: ['sampleRate'] })
  .refine((r) => r.onBotFailure !== 'prompt' || r.fallbackPrompt !== undefined, { message: 'onBotFailure "prompt" needs fallbackPrompt', path: ['fallbackPrompt'] });
export type Route = z.infer<typeof RouteSchema>;

/**
 * Media node options as a config file or flags give them. Every field optional; see
 * `resolveMediaNodeOptions` for defaults. Units are in the names or the comments.
 */
export const MediaNodeOptionsSchema = z
  .object({
    /** Node id in events and logs. Default: `media-<hostname>-<pid>`. */
    nodeId: z.string().min(1).optional(),
    /** Address the SIP UDP/TCP listeners bind. Default 127.0.0.1. */
    sipHost: z.string().min(1).default('127.0.0.1'),
    /** SIP port (UDP and TCP). Default 5060. */
    sipPort: z.number().int().min(0).max(65535).default(5060),
    /** Address put in Contact, Via and SDP c=; default: sipHost (or 127.0.0.1 when sipHost is 0.0.0.0). */
    advertisedAddress: z.string().min(1).optional(),
    /** RTP port range, inclusive; one even port per call. Default 20000-29999. */
    rtpPortMin: z.number().int().min(1024).max(65534).default(20000),
    rtpPortMax: z.number().int().min(1025).max(65535).default(29999),
    /** Address RTP sockets bind. Default: sipHost. */
    rtpHost: z.string().min(1).optional(),
    /**
     * RTP I/O backend: `native` (one I/O thread for every RTP socket, packets sent at the exact tick
     * time), `dgram` (node:dgram, a socket per call), or `auto` (native when the addon has it and
     * rtpHost is IPv4). Default: the BOTEDGE_RTP_IO environment variable, else auto.
     */
    rtpIo: z.enum(['auto', 'native', 'dgram']).optional(),
    /** NATS server URL(s). Default nats://127.0.0.1:4222. */
    natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
    /**
     * Codecs we accept, in our order of preference: `PCMU`, `PCMA`, `G722` (16 kHz wideband, coded
     * inline; not for routes with a 24 kHz bot), `opus` (48 kHz RTP clock, decoded
     * at the bot's rate in the node's Opus worker pool). Default PCMU, PCMA: Opus costs worker CPU per
     * call, so a node offers it only when configured to (docs/config.md).
     */
    codecs: z.array(z.enum(['PCMU', 'PCMA', 'G722', 'opus'])).min(1).default(['PCMU', 'PCMA']),
    /** Called number (Request-URI user part) → route. */
    routes: z.record(z.string(), RouteSchema).default({}),
    /** Route for numbers not in `routes`; without one such calls get 404. */
    defaultRoute: RouteSchema.optional(),
    /** Status the caller gets when the bot cannot be reached: 480 or 503. Default 480. */
    botUnreachableStatus: z.union([z.literal(480), z.literal(503)]).default(480),
    /** How long to wait for the bot's WebSocket to open, ms. Default 3000. */
    botConnectTimeoutMs: z.number().int().min(100).max(60000).default(3000),
    /** SIP headers copied into the bot's `start` frame (case-insensitive names). */
    forwardHeaders: z.array(z.string()).default([]),
    /** Bot audio buffered for playout at most, ms; beyond it the oldest audio is dropped and counted. Default 30000. */
    playoutBufferMs: z.number().int().min(100).max(600000).default(30000),
    /** Caller audio queued on a slow bot socket at most, bytes, before frames are dropped. Default 256 KiB. */
    botSendBufferBytes: z.number().int().min(4096).default(256 * 1024),
    /**
     * Symmetric RTP: latch onto the source of the first RTP packet (callers behind NAT). When off,
     * only the address and port in the caller's SDP are accepted. Default true.
     */
    symmetricRtp: z.boolean().default(true),
    /**
     * A bot that has not answered a WebSocket ping for this long (it stopped reading its socket) is
     * disconnected and the call follows the route's `onBotFailure`, ms. Default 10000.
     */
    botReadTimeoutMs: z.number().int().min(200).max(600000).default(10000),
    /**
     * Frames waiting for a slow bot in our own queue (in front of the socket) at most; beyond it the
     * oldest caller audio is dropped, counted and reported to the bot. Default 50 (1 s of audio).
     */
    botSendQueueFrames: z.number().int().min(1).max(10000).default(50),
    /** Default HMAC-SHA256 key that signs bot connects (`X-BotEdge-Signature`); a route may override it. */
    botSigningSecret: z.string().min(16).optional(),
    /**
     * Port of the Twilio-REST-shaped hangup endpoint (`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`
     * with `Status=completed`, basic auth); unset: no endpoint. 0 picks a free port.
     */
    twilioRestPort: z.number().int().min(0).max(65535).optional(),
    /** Address the Twilio REST endpoint binds. Default: sipHost. */
    twilioRestHost: z.string().min(1).optional(),
    /**
     * How often each answered call publishes a `qos` sample (botedge.v1.call.qos: loss, jitter and
     * MOS of the caller's stream over the interval), ms; 0 publishes none (`ended` still carries
     * the whole call's). Default 10000.
     */
    qosIntervalMs: z
      .number()
      .int()
      .min(0)
      .max(3600000)
      .default(10000)
      .refine((v) => v === 0 || v >= 1000, { message: 'must be 0 (no samples) or at least 1000' }),
    /** Max calls this node accepts; more get 503. Default 2000. */
    maxCalls: z.number().int().min(1).default(2000),
  })
  .strict()
  .refine((o) => o.rtpPortMin < o.rtpPortMax, { message: 'rtpPortMin must be < rtpPortMax', path: ['rtpPortMin'] });

export type MediaNodeOptions = z.input<typeof MediaNodeOptionsSchema>;
export type ResolvedMediaNodeOptions = z.output<typeof MediaNodeOptionsSchema> & {
  nodeId: string;
  advertisedAddress: string;
  rtpHost: string;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${message}`, options);
  }
}

/** Merges defaults and validates every field; the error names the field. */
export function resolveMediaNodeOptions(input: MediaNodeOptions, defaults: { hostname: string; pid: number }): ResolvedMediaNodeOptions {
  const parsed = MediaNodeOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.join('.') || '(root)', issue.message, { cause: parsed.error });
  }
  const o = parsed.data;
  const advertised = o.advertisedAddress ?? (o.sipHost === '0.0.0.0' ? '127.0.0.1' : o.sipHost);
  return {
    ...o,
    nodeId: o.nodeId ?? `media-${defaults.hostname}-${defaults.pid}`,
    advertisedAddress: advertised,
    rtpHost: o.rtpHost ?? o.sipHost,
  };
}

/** Reads a JSON config file; errors name the file and, for schema errors, the field. */
export function readConfigFile(path: string): MediaNodeOptions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}`, { cause: err });
  }
  try {
    return JSON.parse(text) as MediaNodeOptions;
  } catch (err) {
    throw new ConfigError('config', `${path} is not valid JSON`, { cause: err });
  }
}

/** Picks the route for a called number: exact match, else the default. */
export function routeFor(options: ResolvedMediaNodeOptions, calledNumber: string): Route | undefined {
  return options.routes[calledNumber] ?? options.defaultRoute;
}
