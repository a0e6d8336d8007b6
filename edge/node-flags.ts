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
 *
 * `--single-threaded-gc`: V8 otherwise marks the old generation on helper threads, concurrently.
 * A media node that has its core to itself (pinned, or one shard per core under full load) then
 * shares that core between the event loop and the markers, and the scheduler gives the loop a
 * fraction of it until marking ends. Measured: event-loop gaps of 17–44 ms at each major GC.
 * Every such gap delays the caller audio of every call at once, so the echoes come back as
 * bursts, and the playout queues them for the rest of the talk spurt. Marking incrementally on
 * the loop itself keeps each pause to a few ms. At 200 calls the bot→caller p99 went from 53–59 ms
 * to 27–46 ms, with no CPU cost (docs/benchmarks/capacity.md, "GC on the media node's core").
 * Node refuses it in NODE_OPTIONS: it goes on the command line.
 *
 * `--heap-growing-percent=200`: after each major GC V8 lets the old generation grow by a factor
 * it derives from its own speed figures; for a media node's small heap (≈ 24 MB at 400 mux calls)
 * it chose ≈ 1.5, and with the mux connection's large per-tick messages a new marking began
 * almost as soon as the last one ended: a major GC every 0.5–1 s that frees 1–2 MB, 38–66 ms of
 * marking per second at 400 calls (12.7 % of the node's CPU samples). A fixed factor of 3 leaves
 * room enough that the old generation's real growth sets the pace: none or one per run, the same
 * resident memory, 9–15 % less CPU per call-second at 600 `native-mux` calls
 * (docs/benchmarks/capacity.md, "Measured: major GCs and the filters"). A node that really grows its heap still collects: at three times what was live.
 *
 * V8 reads both only at start-up (v8.setFlagsFromString is too late), hence flags, not code.
 */
export const MEDIA_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=4', '--single-threaded-gc', '--heap-growing-percent=200']);
