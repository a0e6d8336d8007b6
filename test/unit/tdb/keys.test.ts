import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameError, KeyFileError, ReadKeyRequiredError } from '../../../tdb/errors.js';
import { addGrant, createKeyring, generateAppKeyPair, generateKeyGeneration, openKeyring, parseKeyring, retireGenerations, rotateKeyring } from '../../../tdb/keys.js';
import { decodeFrame, encodeFrame, FrameKind, signFrameBytes, unsignedPart } from '../../../tdb/wire.js';

const T = { timeout: 20_000 };
const media = generateAppKeyPair();
const dash = generateAppKeyPair();
const other = generateAppKeyPair();
const header = { kind: FrameKind.Changes, writerId: 'w', session: 's', seq: 7, hlc: 42 } as const;

describe('tdb keyring', () => {
  it('grants full access to writers and read-only access to readers', T, () => {
    const ring = createKeyring('cluster', [
      { id: 'media', publicKey: media.publicKey, write: true },
      { id: 'dash', publicKey: dash.publicKey },
    ]);
    const full = openKeyring(JSON.stringify(ring), 'media', media.privateKey);
    const ro = openKeyring(ring, 'dash', dash.privateKey);
    assert.ok(full.generations.get('k1')?.writeKey);
    assert.equal(ro.generations.get('k1')?.writeKey, undefined);
    assert.deepEqual(Buffer.from(full.generations.get('k1')!.readKey), Buffer.from(ro.generations.get('k1')!.readKey));
  });

  it('an app without a grant has no access: ReadKeyRequiredError', T, () => {
    const ring = createKeyring('cluster', [{ id: 'media', publicKey: media.publicKey, write: true }]);
    assert.throws(() => openKeyring(ring, 'other', other.privateKey), ReadKeyRequiredError);
  });

  it('the wrong private key is a KeyFileError naming the grant', T, () => {
    const ring = createKeyring('cluster', [{ id: 'media', publicKey: media.publicKey }]);
    assert.throws(() => openKeyring(ring, 'media', other.privateKey), (e: unknown) => e instanceof KeyFileError && e.field === 'generations.0.grants.media.readKey');
  });

  it('malformed keyrings name the bad field', T, () => {
    assert.throws(() => parseKeyring('{'), (e: unknown) => e instanceof KeyFileError && e.field === 'keyring');
    assert.throws(() => parseKeyring({ format: 'nope' }), (e: unknown) => e instanceof KeyFileError && e.field === 'format');
    const ring = createKeyring('cluster', [{ id: 'media', publicKey: media.publicKey }]);
    assert.throws(() => parseKeyring({ ...ring, current: 'k9' }), (e: unknown) => e instanceof KeyFileError && e.field === 'current');
  });

  it('rotation adds a current generation, keeps the old one readable, and retires it', T, () => {
    const apps = [{ id: 'media', publicKey: media.publicKey, write: true }];
    const ring = rotateKeyring(createKeyring('cluster', apps), apps, 'k2');
    const keys = openKeyring(ring, 'media', media.privateKey);
    assert.equal(keys.current, 'k2');
    assert.deepEqual([...keys.generations.keys()], ['k1', 'k2']);
    assert.deepEqual(retireGenerations(ring).generations.map((g) => g.id), ['k2']);
  });

  it('an admin can grant a new app from its own grant', T, () => {
    const ring = createKeyring('cluster', [{ id: 'media', publicKey: media.publicKey, write: true }]);
    const more = addGrant(ring, { id: 'media', privateKey: media.privateKey }, { id: 'dash', publicKey: dash.publicKey });
    assert.equal(openKeyring(more, 'dash', dash.privateKey).generations.get('k1')?.writeKey, undefined);
  });
});

describe('tdb frame envelope', () => {
  const gen = generateKeyGeneration('k1');
  const keys = { current: 'k1', generations: new Map([['k1', gen]]) };

  it('a keyed frame round-trips and hides writer, sequence and payload', T, () => {
    const payload = new TextEncoder().encode('secret payload');
    const frame = encodeFrame('db', header, payload, gen);
    assert.equal(Buffer.from(frame).includes('secret'), false);
    assert.equal(Buffer.from(frame).includes('w\x01s'), false);
    const d = decodeFrame('db', frame, keys);
    assert.deepEqual({ ...d, payload: Buffer.from(d.payload).toString() }, { ...header, keyId: 'k1', payload: 'secret payload' });
  });

  it('a frame for another database does not verify', T, () => {
    const frame = encodeFrame('db', header, new Uint8Array(3), gen);
    assert.throws(() => decodeFrame('other', frame, keys), (e: unknown) => e instanceof FrameError && e.kind === 'badSignature');
  });

  it('any flipped bit is rejected', T, () => {
    const frame = encodeFrame('db', header, new Uint8Array(16), gen);
    for (let i = 0; i < frame.length; i++) {
      const bad = Uint8Array.from(frame);
      bad[i] = (bad[i] as number) ^ 0x01;
      assert.throws(() => decodeFrame('db', bad, keys), FrameError, `byte ${i}`);
    }
  });

  it('a frame re-signed by another key is badSignature; a plaintext one is unencrypted', T, () => {
    const frame = encodeFrame('db', header, new Uint8Array(3), gen);
    const forged = signFrameBytes('db', unsignedPart(frame), generateKeyGeneration('x').writeKey);
    assert.throws(() => decodeFrame('db', forged, keys), (e: unknown) => e instanceof FrameError && e.kind === 'badSignature');
    const plain = encodeFrame('db', header, new Uint8Array(3), undefined);
    assert.throws(() => decodeFrame('db', plain, keys), (e: unknown) => e instanceof FrameError && e.kind === 'unencrypted');
    assert.throws(() => decodeFrame('db', frame, undefined), (e: unknown) => e instanceof FrameError && e.kind === 'unknownKey');
  });

  it('every truncation is malformed or fails verification, never a crash', T, () => {
    const frame = encodeFrame('db', header, new Uint8Array(8), gen);
    for (let len = 0; len < frame.length; len++) assert.throws(() => decodeFrame('db', frame.subarray(0, len), keys), FrameError);
    const plain = encodeFrame('db', header, new Uint8Array(8), undefined);
    for (let len = 0; len < plain.length; len++) assert.throws(() => decodeFrame('db', plain.subarray(0, len), undefined), FrameError);
  });
});
