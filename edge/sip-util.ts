import { parseNameAddr, parseUri } from '../sip/uri.js';
import type { SipRequest } from '../sip/message.js';
import type { Destination } from '../sip/transaction-layer.js';

/**
 * Where an in-dialog request goes (RFC 3263 §4 without DNS: we only route to literal hosts):
 * the first Route if there is one, else the Request-URI; its transport parameter, default UDP.
 */
export function requestDestination(req: SipRequest): Destination {
  const route = req.headers.getAll('Route')[0];
  const uri = route !== undefined ? parseNameAddr(route).uri : parseUri(req.uri);
  const transport = (uri.params.get('transport') ?? 'udp').toLowerCase();
  const host = uri.params.get('maddr') ?? uri.host;
  return { address: host.replace(/^\[|\]$/g, ''), port: uri.port ?? (uri.scheme === 'sips' ? 5061 : 5060), transport };
}

/** The user part of the Request-URI: the called number a route is chosen by. */
export function calledNumber(req: SipRequest): string {
  try {
    return parseUri(req.uri).user ?? '';
  } catch {
    return '';
  }
}
