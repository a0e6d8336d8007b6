import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** One route: where calls to a number go. */
export const RouteSchema = z.object({
  /** Bot WebSocket URL (ws:// or wss://). */
  url: z.string().url().refine((u) => /^wss?:\/\//.test(u), 'must be a ws:// or wss:// URL'),
  /** Bot protocol; only `native` exists so far. */
  protocol: z.enum(['native']).default('native'),
  /** PCM rate the bot speaks, Hz. */
  sampleRate: z.union([z.literal(8000), z.literal(16000)]).default(8000),
});
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
    /** NATS server URL(s). Default nats://127.0.0.1:4222. */
    natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
    /** Codecs we accept, in our order of preference. Default PCMU, PCMA. */
    codecs: z.array(z.enum(['PCMU', 'PCMA'])).min(1).default(['PCMU', 'PCMA']),
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
