import { createCipheriv, createDecipheriv, randomBytes, sign, verify } from 'node:crypto';
import { ByteReader, ByteWriter } from './codec.js';
import { FrameError } from './errors.js';
import type { KeyGeneration, TdbKeys } from './keys.js';

/**
 * The envelope of every tdb message on NATS (changes, heartbeats, snapshots):
 *
 *   0      1        2      3       4
 *   +------+--------+------+-------+----------------+----------------+-------------------+-----------+
 *   | 0xDB | ver=1  | kind | flags | keyId (str)    | nonce (12 B)   | body (varint len) | sig (64 B)|
 *   +------+--------+------+-------+----------------+ if encrypted   +-------------------+ if signed +
 *
 *   flags: 1 = body is AES-256-GCM ciphertext (+16-byte tag), 2 = Ed25519 signature follows.
 *   body (after decryption) = inner header + kind-specific payload:
 *     writerId (str) | session (str) | seq (varint) | hlc (f64) | payload...
 *
 * The signature covers "tdb1\0" + db name + "\0" + every envelope byte before it, so a frame cannot
 * be replayed into another database; GCM's additional data is the same prefix. Writer id and
 * sequence are inside the ciphertext: without the read key the wire shows only the key id.
 */
export const FRAME_MAGIC = 0xdb;
export const FRAME_VERSION = 1;
export const SIG_BYTES = 64;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export const enum FrameKind {
  Changes = 1,
  Heartbeat = 2,
  Snapshot = 3,
}

const FLAG_ENCRYPTED = 1;
const FLAG_SIGNED = 2;

export interface FrameHeader {
  kind: FrameKind;
  writerId: string;
  session: string;
  seq: number;
  hlc: number;
}

export interface DecodedFrame extends FrameHeader {
  payload: Uint8Array;
  keyId: string;
}

function signingPrefix(db: string): Uint8Array {
  return new TextEncoder().encode(`tdb1\0${db}\0`);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Nonces: 4 random bytes per process + a 64-bit counter, never repeating under one key. */
const noncePrefix = randomBytes(4);
let nonceCounter = 0n;
function nextNonce(): Buffer {
  const n = Buffer.allocUnsafe(NONCE_BYTES);
  noncePrefix.copy(n, 0);
  n.writeBigUInt64BE(nonceCounter++, 4);
  return n;
}

/** Encodes, encrypts and signs one frame. `keys` undefined = plaintext, unsigned (unkeyed database). */
export function encodeFrame(db: string, header: FrameHeader, payload: Uint8Array, keys: KeyGeneration | undefined): Uint8Array {
  const inner = new ByteWriter(payload.length + 64)
    .str(header.writerId)
    .str(header.session)
    .varint(header.seq)
    .f64(header.hlc)
    .raw(payload)
    .finish();
  const w = new ByteWriter(inner.length + 128);
  if (!keys) {
    w.u8(FRAME_MAGIC).u8(FRAME_VERSION).u8(header.kind).u8(0).str('').bytes(inner);
    return w.finish();
  }
  if (!keys.writeKey) throw new FrameError('unsigned', 'no write key to sign with');
  const nonce = nextNonce();
  w.u8(FRAME_MAGIC).u8(FRAME_VERSION).u8(header.kind).u8(FLAG_ENCRYPTED | FLAG_SIGNED).str(keys.id).raw(nonce);
  const aad = concat(signingPrefix(db), w.finish());
  const cipher = createCipheriv('aes-256-gcm', keys.readKey, nonce);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
  w.bytes(ct);
  const unsigned = w.finish();
  const sig = sign(null, concat(signingPrefix(db), unsigned), keys.writeKey);
  return concat(unsigned, sig);
}

/** Re-signs a frame with another key: only for tests that forge or tamper. */
export function signFrameBytes(db: string, unsignedEnvelope: Uint8Array, key: import('node:crypto').KeyObject): Uint8Array {
  return concat(unsignedEnvelope, sign(null, concat(signingPrefix(db), unsignedEnvelope), key));
}

export interface DecodeResult {
  frame: DecodedFrame;
}

/**
 * Parses, verifies and decrypts a frame. Policy: a keyed receiver accepts only encrypted + signed
 * frames of a generation it holds; an unkeyed receiver accepts only plaintext frames. Every failure
 * is a `FrameError` whose `kind` is the counter to bump.
 */
export function decodeFrame(db: string, data: Uint8Array, keys: TdbKeys | undefined): DecodedFrame {
  const r = new ByteReader(data);
  if (r.u8() !== FRAME_MAGIC) throw new FrameError('malformed', 'bad magic', 0);
  const version = r.u8();
  if (version !== FRAME_VERSION) throw new FrameError('malformed', `unsupported version ${version}`, 1);
  const kind = r.u8();
  if (kind !== FrameKind.Changes && kind !== FrameKind.Heartbeat && kind !== FrameKind.Snapshot) {
    throw new FrameError('malformed', `unknown kind ${kind}`, 2);
  }
  const flags = r.u8();
  if (flags & ~(FLAG_ENCRYPTED | FLAG_SIGNED)) throw new FrameError('malformed', `unknown flags ${flags}`, 3);
  const keyId = r.str();
  const encrypted = (flags & FLAG_ENCRYPTED) !== 0;
  const signed = (flags & FLAG_SIGNED) !== 0;
  const nonce = encrypted ? r.raw(NONCE_BYTES) : undefined;
  const headerEnd = r.offset;
  const body = r.bytes();
  const sigStart = r.offset;
  const sig = signed ? r.raw(SIG_BYTES) : undefined;
  r.end();

  let inner: Uint8Array;
  if (keys) {
    if (!encrypted) throw new FrameError('unencrypted', 'plaintext frame on an encrypted database');
    if (!sig) throw new FrameError('unsigned', 'frame carries no signature');
    const gen = keys.generations.get(keyId);
    if (!gen) throw new FrameError('unknownKey', `no key generation ${JSON.stringify(keyId)}`);
    const prefix = signingPrefix(db);
    let ok = false;
    try {
      ok = verify(null, concat(prefix, data.subarray(0, sigStart)), gen.writePublicKey, sig);
    } catch (err) {
      throw new FrameError('badSignature', 'signature check failed', sigStart, { cause: err });
    }
    if (!ok) throw new FrameError('badSignature', 'signature does not verify', sigStart);
    if (body.length < TAG_BYTES) throw new FrameError('malformed', 'ciphertext shorter than its tag', headerEnd);
    try {
      const decipher = createDecipheriv('aes-256-gcm', gen.readKey, nonce as Uint8Array);
      decipher.setAAD(concat(prefix, data.subarray(0, headerEnd)));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      inner = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch (err) {
      throw new FrameError('decrypt', 'cannot decrypt with the read key', headerEnd, { cause: err });
    }
  } else {
    if (encrypted) throw new FrameError('unknownKey', `encrypted with key ${JSON.stringify(keyId)} and this process holds no read key`);
    inner = body;
  }
  const ir = new ByteReader(inner);
  const writerId = ir.str();
  const session = ir.str();
  const seq = ir.varint();
  const hlc = ir.f64();
  if (!writerId || !session) throw new FrameError('malformed', 'empty writer id or session');
  return { kind, keyId, writerId, session, seq, hlc, payload: inner.subarray(ir.offset) };
}

/** The unsigned part of an envelope (for tests that re-sign). */
export function unsignedPart(data: Uint8Array): Uint8Array {
  return data.subarray(0, data.length - SIG_BYTES);
}
