/** tdb: in-process SQL databases replicated over NATS (docs/tdb.md). */
export {
  Tdb,
  resolveTdbOptions,
  type BindParams,
  type ResolvedTdbOptions,
  type Row,
  type RunResult,
  type SqlValue,
  type TdbChange,
  type TdbLogger,
  type TdbOptions,
  type TdbSnapshot,
  type TdbStatement,
  type TdbStats,
  type WriteOptions,
} from './tdb.js';
export * from './errors.js';
export {
  addGrant,
  createKeyring,
  generateAppKeyPair,
  generateKeyGeneration,
  KEYRING_FORMAT,
  openKeyring,
  parseKeyring,
  retireGenerations,
  rotateKeyring,
  type AppGrant,
  type KeyGeneration,
  type Keyring,
  type TdbKeys,
} from './keys.js';
export { MemoryBus, MemoryEndpoint, natsTransport, NoRespondersError, TransportTimeoutError, type TdbTransport } from './transport.js';
