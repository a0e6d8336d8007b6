import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { logger } from '../log.js';

const log = logger('edge:bot:twilio-rest');

/**
 * The slice of Twilio's REST API that stock Twilio bots call to end a call: Pipecat's Twilio
 * serializer (and bots using Twilio's helper libraries) POST `Status=completed` to
 * `/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with basic auth `AccountSid:AuthToken`.
 * Point those bots' Twilio API base URL at this endpoint and they hang up BotEdge calls unchanged.
 *
 * Answers like Twilio: 200 with a Call resource (JSON) on success, 401 with code 20003 on bad
 * credentials, 404 with code 20404 for an unknown or finished call (Pipecat treats that as
 * "already ended"), 400 with code 21218 for a Status other than completed/canceled.
 */
export interface TwilioCallHandle {
  accountSid: string;
  /** Routes without an auth token cannot be hung up over REST. */
  authToken: string | undefined;
  from: string;
  to: string;
  startedAt: number;
  hangup(why: string): void;
}

/** Live Twilio-protocol calls of this process, by CallSid. Calls add and remove themselves. */
export const twilioCalls = new Map<string, TwilioCallHandle>();

const PATH = /^\/2010-04-01\/Accounts\/(AC[0-9a-fA-F]{32})\/Calls\/(CA[0-9a-fA-F]{32})\.json$/;
const MAX_BODY = 16 * 1024;

export interface TwilioRestServer {
  port: number;
  close(): Promise<void>;
}

/** Starts the endpoint on `host:port` (0 = any free port). */
export async function listenTwilioRest(host: string, port: number, calls: Map<string, TwilioCallHandle> = twilioCalls): Promise<TwilioRestServer> {
  const server = createServer((req, res) => void handle(req, res, calls).catch((err: unknown) => {
    log.error({ err }, 'twilio REST request failed');
    if (!res.headersSent) twilioError(res, 500, 20500, 'Internal Server Error');
  }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ host, port: bound }, 'twilio REST hangup endpoint up');
  return { port: bound, close: () => closeServer(server) };
}

/** The node's hook: starts the endpoint when `twilioRestPort` is configured; returns its closer. */
export async function startTwilioRest(options: { twilioRestPort?: number | undefined; twilioRestHost?: string | undefined; sipHost: string }): Promise<(() => Promise<void>) | undefined> {
  if (options.twilioRestPort === undefined) return undefined;
  const s = await listenTwilioRest(options.twilioRestHost ?? options.sipHost, options.twilioRestPort);
  return s.close;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, calls: Map<string, TwilioCallHandle>): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const m = PATH.exec(url.pathname);
  if (!m) return twilioError(res, 404, 20404, 'The requested resource was not found');
  const [, accountSid, callSid] = m as unknown as [string, string, string];
  const call = calls.get(callSid!);
  if (!call || call.accountSid !== accountSid || !call.authToken || !authorized(req, accountSid!, call.authToken)) {
    // Unknown and unauthorised look alike to a caller without the right credentials.
    if (call && call.accountSid === accountSid && call.authToken && !authorized(req, accountSid!, call.authToken)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="Twilio API"');
      return twilioError(res, 401, 20003, 'Authenticate');
    }
    return twilioError(res, 404, 20404, `The requested resource /2010-04-01/Accounts/${accountSid}/Calls/${callSid}.json was not found`);
  }
  if (req.method === 'GET') return json(res, 200, callResource(accountSid!, callSid!, call, 'in-progress'));
  if (req.method !== 'POST') return twilioError(res, 405, 20004, 'Method not allowed');
  const body = await readBody(req);
  if (body === undefined) return twilioError(res, 413, 20001, 'Request body too large');
  const status = new URLSearchParams(body).get('Status');
  if (status !== 'completed' && status !== 'canceled') {
    return twilioError(res, 400, 21218, `Invalid Status ${status ?? '(missing)'}: only completed or canceled end a call here`);
  }
  log.info({ callSid, status }, 'call ended over REST');
  call.hangup(`bot ended the call over REST (Status=${status})`);
  return json(res, 200, callResource(accountSid!, callSid!, call, 'completed'));
}

function authorized(req: IncomingMessage, user: string, password: string): boolean {
  const h = req.headers.authorization ?? '';
  if (!h.startsWith('Basic ')) return false;
  const got = Buffer.from(h.slice(6), 'base64');
  const want = Buffer.from(`${user}:${password}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function callResource(accountSid: string, sid: string, call: TwilioCallHandle, status: string) {
  const uri = `/2010-04-01/Accounts/${accountSid}/Calls/${sid}.json`;
  return {
    sid,
    account_sid: accountSid,
    from: call.from,
    to: call.to,
    status,
    direction: 'inbound',
    start_time: new Date(call.startedAt).toUTCString(),
    end_time: status === 'completed' ? new Date().toUTCString() : null,
    api_version: '2010-04-01',
    uri,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Twilio's error body shape. */
function twilioError(res: ServerResponse, status: number, code: number, message: string): void {
  json(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}
