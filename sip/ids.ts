/**
 * Identifiers the SIP stack mints: Via branches, From/To tags and Call-IDs.
 *
 * All of them come from the CSPRNG: RFC 3261 §8.1.1.4 and §19.3 require Call-IDs and tags to be
 * globally unique and unguessable, and §17.2.3 matching relies on branches being unique across
 * space and time.
 */
import { randomBytes } from 'node:crypto';

/** RFC 3261 §8.1.1.7: a branch that starts with this cookie was minted by an RFC 3261 element. */
export const MAGIC_COOKIE = 'z9hG4bK';

function token(bytes: number): string {
  // base64url is within the RFC 3261 `token` alphabet ('-' and '_' are token characters).
  return randomBytes(bytes).toString('base64url');
}

/** A fresh Via branch: the magic cookie followed by 96 random bits. */
export function newBranch(): string {
  return MAGIC_COOKIE + token(12);
}

/** A fresh From/To tag (RFC 3261 §19.3 asks for at least 32 random bits; we use 64). */
export function newTag(): string {
  return token(8);
}

/** A fresh Call-ID, `random@host` when a host is given (RFC 3261 §8.1.1.4). */
export function newCallId(host?: string): string {
  const id = token(16);
  return host === undefined ? id : `${id}@${host}`;
}

/** True when a branch carries the RFC 3261 magic cookie (§17.2.3 matching applies). */
export function isRfc3261Branch(branch: string | undefined): branch is string {
  return branch !== undefined && branch.startsWith(MAGIC_COOKIE);
}
