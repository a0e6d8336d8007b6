/**
 * Node/V8 flags a media node runs with (`botedge up` and the capacity bench start it with them;
 * an operator's own unit passes them on the `node` command line or in NODE_OPTIONS).
 *
 * `--max-semi-space-size=4`: a media node allocates short-lived objects at a steady tens of MB a
 * second (packet and frame views, stream bookkeeping), and V8 answers by growing the young
 * generation to its 16 MB-per-semi-space default — 32 MB of resident memory that holds only
 * garbage, ≈ 150 kB per call at 200 calls. With 4 MB the scavenges come more often but each costs
 * what is live, not what is dead: at 200 calls the resident memory per call halves and CPU per call
 * stays within run-to-run noise (docs/benchmarks/capacity.md, "Young generation").
 * V8 reads it only at start-up (v8.setFlagsFromString is too late), hence a flag, not code.
 */
export const MEDIA_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=4']);
