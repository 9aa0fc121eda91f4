/**
 * The probing thread's young generation, set on the thread itself
 * (Worker resourceLimits), not taken from the process's flags.
 *
 * `npm start` and the image run node with `--max-semi-space-size=1`: the
 * answering thread allocates next to nothing per query, and a young
 * generation V8 has grown is kept resident (with 10,000 zones, the 8 MB
 * semi-spaces the flag allowed before grew RSS by ~6 MB between start-up and
 * the end of 120 reloads). The probing thread is the other kind: undici
 * allocates a few kilobytes per probe, and probes live for milliseconds. With
 * 1 MB semi-spaces, 5,000 probes a second would run a scavenge every few
 * ticks and promote every probe in flight into the old generation; so it
 * keeps the young generation it had before (8 MB semi-spaces: V8 sizes the
 * young generation at three semi-spaces), whatever the process was given.
 */
export const PROBING_YOUNG_GENERATION_MB = 24;

/** The resourceLimits every probing thread starts with (monitor-worker.ts, checker-worker.ts). */
export const PROBING_RESOURCE_LIMITS = Object.freeze({ maxYoungGenerationSizeMb: PROBING_YOUNG_GENERATION_MB });
