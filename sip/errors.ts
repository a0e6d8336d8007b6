/**
 * Errors of the SIP message layer.
 *
 * A malformed message is a {@link SipParseError} (what was wrong, where); a request that parses but
 * must be refused is a {@link SipError} carrying the status to answer with (drachtio's shape: a SIP
 * failure is a status, not a string). Tests assert on `instanceof` and the fields, never on text.
 */

/** What part of a message failed to parse. */
export type SipParseErrorKind =
  | 'start-line' // request/status line shape: extra SP, trailing SP, non-token method
  | 'version' // SIP-Version other than SIP/2.0
  | 'status-code' // not exactly three digits
  | 'method-mismatch' // CSeq method differs from the request method (RFC 4475 §3.1.2.17)
  | 'header' // a header line or a known header's value is malformed
  | 'uri' // a URI is malformed (embedded LWS, bad port, bad escape, headers in a Request-URI)
  | 'quoted-string' // unterminated quoted string
  | 'cseq' // CSeq malformed or out of range (>= 2**31)
  | 'content-length' // not a non-negative integer, or larger than the bytes that follow
  | 'missing-header' // a header the context requires is absent (Content-Length on a stream)
  | 'truncated' // the message ends before its header section does
  | 'too-large'; // header section or header count over the configured bound

export class SipParseError extends Error {
  override name = 'SipParseError';
  constructor(
    readonly kind: SipParseErrorKind,
    message: string,
    /** Character offset into the message (header section) where the problem was found. */
    readonly offset?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class SipError extends Error {
  override name = 'SipError';
  /**
   * For 420 Bad Extension: the option tags to list in the response's `Unsupported` header
   * (RFC 3261 §8.2.2.3).
   */
  readonly unsupported?: string[];
  constructor(
    readonly status: number,
    readonly reason: string,
    options?: { cause?: unknown; unsupported?: string[] },
  ) {
    super(`${status} ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.unsupported) this.unsupported = options.unsupported;
  }
}
