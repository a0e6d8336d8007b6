/**
 * Errors of the pure packet formats in codecs/. A malformed packet is a typed ParseError that says
 * what was wrong (`kind`) and where (`offset`, in bytes from the start of the buffer), never whatever
 * RangeError a DataView happens to throw.
 */
export class ParseError extends Error {
  override name = 'ParseError';
  readonly kind: string;
  readonly offset: number;

  constructor(kind: string, offset: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.offset = offset;
  }
}

export type RtpParseErrorKind =
  | 'truncated'
  | 'bad-version'
  | 'truncated-csrc'
  | 'truncated-extension'
  | 'bad-padding';

/** RFC 3550 §5.1 packet that cannot be an RTP packet. */
export class RtpParseError extends ParseError {
  override name = 'RtpParseError';
  declare readonly kind: RtpParseErrorKind;

  constructor(kind: RtpParseErrorKind, offset: number, message: string) {
    super(kind, offset, message);
  }
}

export type TelephoneEventParseErrorKind = 'truncated';

/** RFC 4733 §2.3 payload shorter than its 4 bytes. */
export class TelephoneEventParseError extends ParseError {
  override name = 'TelephoneEventParseError';
  declare readonly kind: TelephoneEventParseErrorKind;

  constructor(kind: TelephoneEventParseErrorKind, offset: number, message: string) {
    super(kind, offset, message);
  }
}

export type RtcpParseErrorKind = 'truncated' | 'bad-version' | 'bad-length';

/** RFC 3550 §6.4 compound RTCP packet that cannot be read. */
export class RtcpParseError extends ParseError {
  override name = 'RtcpParseError';
  declare readonly kind: RtcpParseErrorKind;

  constructor(kind: RtcpParseErrorKind, offset: number, message: string) {
    super(kind, offset, message);
  }
}
