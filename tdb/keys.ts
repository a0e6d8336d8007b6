import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { z } from 'zod';
import { KeyFileError, ReadKeyRequiredError } from './errors.js';

/**
 * Per-database keys (docs/tdb.md, "Keys").
 *
 * - read key: 32 random bytes, the AES-256-GCM data key that encrypts every change and snapshot;
 * - write key: an Ed25519 private key that signs every change; its public half is in the keyring
 *   in clear, so every reader can verify.
 *
 * A keyring file holds one or more key generations; in each, the read key and (for writers) the
 * write key are wrapped with RSA-OAEP (SHA-256) for each authorised application's RSA public key.
 * What an application holds decides its access: read + write key = full, read key only = read-only,
 * no grant = no access (it cannot open the database: it sees only ciphertext).
 */

/** One generation of a database's keys, unwrapped. */
export interface KeyGeneration {
  /** Generation id, carried in clear on every frame so receivers pick the key. */
  readonly id: string;
  /** 32-byte AES-256-GCM key. */
  readonly readKey: Uint8Array;
  /** Ed25519 public key every replica verifies with. */
  readonly writePublicKey: KeyObject;
  /** Ed25519 private key; absent for read-only access. */
  readonly writeKey?: KeyObject;
}

/** The keys a process opens a database with: all generations it can read, and the one it writes with. */
export interface TdbKeys {
  readonly current: string;
  readonly generations: ReadonlyMap<string, KeyGeneration>;
}

export const KEYRING_FORMAT = 'botedge-tdb-keyring/1';

const b64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');
const GrantSchema = z.object({ readKey: b64, writeKey: b64.optional() }).strict();
const GenerationSchema = z
  .object({
    id: z.string().min(1).max(64),
    created: z.string().optional(),
    writePublicKey: b64,
    grants: z.record(z.string().min(1), GrantSchema),
  })
  .strict();
export const KeyringSchema = z
  .object({
    format: z.literal(KEYRING_FORMAT),
    db: z.string().min(1),
    current: z.string().min(1),
    generations: z.array(GenerationSchema).min(1),
  })
  .strict()
  .refine((k) => k.generations.some((g) => g.id === k.current), { message: 'current must name a generation', path: ['current'] });

export type Keyring = z.infer<typeof KeyringSchema>;

/** An application that may receive keys: its id and its RSA public key (PEM or KeyObject). */
export interface AppGrant {
  id: string;
  publicKey: string | KeyObject;
  /** Also grant the write key (default false: read-only). */
  write?: boolean;
}

/** Fresh keys for a database generation. */
export function generateKeyGeneration(id: string): Required<KeyGeneration> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { id, readKey: randomBytes(32), writeKey: privateKey, writePublicKey: publicKey };
}

/** An RSA key pair for an application (PEM), e.g. to create its identity. */
export function generateAppKeyPair(modulusLength = 2048): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength });
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function wrap(publicKey: string | KeyObject, secret: Uint8Array): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret).toString('base64');
}

function unwrap(privateKey: KeyObject, wrapped: string, field: string): Buffer {
  try {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(wrapped, 'base64'));
  } catch (err) {
    throw new KeyFileError(field, 'cannot unwrap with this application key (wrong key?)', { cause: err });
  }
}

function generationEntry(gen: Required<KeyGeneration>, apps: readonly AppGrant[]): Keyring['generations'][number] {
  const grants: Record<string, z.infer<typeof GrantSchema>> = {};
  const writeDer = gen.writeKey.export({ type: 'pkcs8', format: 'der' });
  for (const app of apps) {
    grants[app.id] = { readKey: wrap(app.publicKey, gen.readKey), ...(app.write ? { writeKey: wrap(app.publicKey, writeDer) } : {}) };
  }
  return {
    id: gen.id,
    created: new Date().toISOString(),
    writePublicKey: gen.writePublicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    grants,
  };
}

/** Creates a keyring for `db` with one generation, granting each app read (and optionally write) access. */
export function createKeyring(db: string, apps: readonly AppGrant[], generationId = 'k1'): Keyring {
  const gen = generateKeyGeneration(generationId);
  return { format: KEYRING_FORMAT, db, current: generationId, generations: [generationEntry(gen, apps)] };
}

/**
 * Key rotation step 1: adds a new generation (fresh read and write keys, wrapped for `apps`) and makes it
 * current. Old generations stay so in-flight frames still decrypt; drop them with `retireGenerations`
 * once every process runs with the new file (docs/tdb.md, "Rotation").
 */
export function rotateKeyring(keyring: Keyring, apps: readonly AppGrant[], generationId: string): Keyring {
  if (keyring.generations.some((g) => g.id === generationId)) throw new KeyFileError('generationId', `${generationId} already exists`);
  const gen = generateKeyGeneration(generationId);
  return { ...keyring, current: generationId, generations: [...keyring.generations, generationEntry(gen, apps)] };
}

/** Removes every generation except the current one. */
export function retireGenerations(keyring: Keyring): Keyring {
  return { ...keyring, generations: keyring.generations.filter((g) => g.id === keyring.current) };
}

/**
 * Adds an application's grant to every generation, using an existing grant (`admin`) to recover the
 * keys. The new app gets the write key only if asked and the admin holds it.
 */
export function addGrant(keyring: Keyring, admin: { id: string; privateKey: string | KeyObject }, app: AppGrant): Keyring {
  const unwrapped = openKeyring(keyring, admin.id, admin.privateKey);
  return {
    ...keyring,
    generations: keyring.generations.map((g) => {
      const gen = unwrapped.generations.get(g.id);
      if (!gen) return g;
      if (app.write && !gen.writeKey) throw new KeyFileError(`grants.${admin.id}.writeKey`, 'admin holds no write key to grant');
      const grant = {
        readKey: wrap(app.publicKey, gen.readKey),
        ...(app.write && gen.writeKey ? { writeKey: wrap(app.publicKey, gen.writeKey.export({ type: 'pkcs8', format: 'der' })) } : {}),
      };
      return { ...g, grants: { ...g.grants, [app.id]: grant } };
    }),
  };
}

/** Validates a keyring (parsed JSON or text); errors name the field. */
export function parseKeyring(input: unknown): Keyring {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new KeyFileError('keyring', 'not JSON', { cause: err });
    }
  }
  const parsed = KeyringSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeyFileError(issue?.path.join('.') || 'keyring', issue?.message ?? 'invalid');
  }
  return parsed.data;
}

/**
 * Unwraps the keys `appId` was granted. Throws `ReadKeyRequiredError` when the keyring grants this
 * app nothing (no access), `KeyFileError` when the file is malformed or the private key does not fit.
 */
export function openKeyring(input: unknown, appId: string, appPrivateKey: string | KeyObject): TdbKeys {
  const keyring = parseKeyring(input);
  const priv = typeof appPrivateKey === 'string' ? createPrivateKey(appPrivateKey) : appPrivateKey;
  const generations = new Map<string, KeyGeneration>();
  for (const [i, g] of keyring.generations.entries()) {
    const grant = g.grants[appId];
    if (!grant) continue;
    const field = `generations.${i}.grants.${appId}`;
    const readKey = unwrap(priv, grant.readKey, `${field}.readKey`);
    if (readKey.length !== 32) throw new KeyFileError(`${field}.readKey`, 'must unwrap to 32 bytes');
    let writePublicKey: KeyObject;
    try {
      writePublicKey = createPublicKey({ key: Buffer.from(g.writePublicKey, 'base64'), format: 'der', type: 'spki' });
    } catch (err) {
      throw new KeyFileError(`generations.${i}.writePublicKey`, 'not an SPKI public key', { cause: err });
    }
    if (writePublicKey.asymmetricKeyType !== 'ed25519') throw new KeyFileError(`generations.${i}.writePublicKey`, 'must be Ed25519');
    let writeKey: KeyObject | undefined;
    if (grant.writeKey) {
      try {
        writeKey = createPrivateKey({ key: unwrap(priv, grant.writeKey, `${field}.writeKey`), format: 'der', type: 'pkcs8' });
      } catch (err) {
        if (err instanceof KeyFileError) throw err;
        throw new KeyFileError(`${field}.writeKey`, 'not a PKCS#8 private key', { cause: err });
      }
    }
    generations.set(g.id, { id: g.id, readKey, writePublicKey, ...(writeKey ? { writeKey } : {}) });
  }
  if (!generations.has(keyring.current)) {
    throw new ReadKeyRequiredError(`keyring for ${keyring.db} grants ${appId} no read key for generation ${keyring.current}`);
  }
  return { current: keyring.current, generations };
}

/** Accepts one generation or a full set. */
export function normalizeKeys(keys: TdbKeys | KeyGeneration): TdbKeys {
  if ('generations' in keys) return keys;
  return { current: keys.id, generations: new Map([[keys.id, keys]]) };
}
