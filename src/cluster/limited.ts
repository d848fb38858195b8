// Many bus operations at once, but never more than a few in flight: a node
// writing its hundreds of mapping table entries at start must not put them
// all on the bus in one burst (with every node doing the same at a cluster
// start, JetStream's answers come later than their timeouts, each timed-out
// write is tried again, and the retries feed the congestion).

/** Runs fn on every item with at most `limit` in flight; rejects with the first failure, after the others settled. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}
