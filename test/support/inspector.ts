/**
 * The live heap of a spawned Node process, read through its inspector (the
 * Chrome DevTools protocol over a WebSocket on loopback): a full garbage
 * collection first, so the figure is what the process keeps, not what it
 * has not collected yet. RSS says the latter too, and when V8 collects is
 * its own choice, so a memory test that must not grow measures this.
 * The process must run with `--inspect=127.0.0.1:0` (NODE_OPTIONS is enough):
 * it prints its WebSocket address on stderr.
 */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr)?.[1];
}

/** Bytes of live heap after a full collection, in the process whose inspector listens at `url`. */
export async function liveHeapBytes(url: string, timeoutMs = 20_000): Promise<number> {
  return (await liveMemory(url, timeoutMs)).heap;
}

/**
 * After a full collection: the live heap, and the octets of the process's
 * ArrayBuffers (`process.memoryUsage().arrayBuffers`: Buffers and typed
 * arrays' backing stores, which live off the V8 heap and so are not in the
 * first figure).
 */
export async function liveMemory(url: string, timeoutMs = 20_000): Promise<{ heap: number; arrayBuffers: number }> {
  const ws = new WebSocket(url);
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  let next = 1;
  const call = (method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, ...(params ? { params } : {}) }));
    });
  ws.addEventListener('message', (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer from the inspector at ${url} within ${timeoutMs} ms`)), timeoutMs).unref());
  try {
    await Promise.race([new Promise((resolve, reject) => (ws.addEventListener('open', resolve), ws.addEventListener('error', reject))), timer]);
    await Promise.race([call('HeapProfiler.collectGarbage'), timer]);
    const usage = await Promise.race([call('Runtime.getHeapUsage'), timer]);
    const evaluated = await Promise.race([call('Runtime.evaluate', { expression: 'process.memoryUsage().arrayBuffers', returnByValue: true }), timer]);
    const arrayBuffers = Number((evaluated.result as { value?: unknown } | undefined)?.value);
    if (!Number.isFinite(arrayBuffers)) throw new Error(`the inspector at ${url} did not evaluate process.memoryUsage(): ${JSON.stringify(evaluated)}`);
    return { heap: Number(usage.usedSize), arrayBuffers };
  } finally {
    ws.close();
  }
}

/**
 * Octets the process at `url` allocated while `during` ran, by V8's sampling
 * heap profiler (one sample per ~`intervalBytes` allocated, objects collected
 * meanwhile included): an estimate of the garbage a piece of work makes, to
 * compare two kinds of work, not an exact count.
 */
export async function sampledAllocationBytes(url: string, during: () => Promise<void>, intervalBytes = 512, timeoutMs = 60_000): Promise<number> {
  const ws = new WebSocket(url);
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  let next = 1;
  const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  ws.addEventListener('message', (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer from the inspector at ${url} within ${timeoutMs} ms`)), timeoutMs).unref());
  type ProfileNode = { selfSize: number; children: ProfileNode[] };
  const total = (n: ProfileNode): number => n.selfSize + n.children.reduce((s, c) => s + total(c), 0);
  try {
    await Promise.race([new Promise((resolve, reject) => (ws.addEventListener('open', resolve), ws.addEventListener('error', reject))), timer]);
    await Promise.race([call('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }), timer]);
    await during();
    const { profile } = (await Promise.race([call('HeapProfiler.stopSampling'), timer])) as { profile: { head: ProfileNode } };
    return total(profile.head);
  } finally {
    ws.close();
  }
}
