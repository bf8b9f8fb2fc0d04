/**
 * Like `Promise.all`, but settles only once every promise has: the first rejection is thrown then.
 * For work that must not outlive the caller's reaction to a failure (a drain wait still polling
 * while the batch is put back in rotation would take it out again).
 */
export async function allDone<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
