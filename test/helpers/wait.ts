// Waiting in tests: on the event itself, never for a fixed time. A ceiling only turns a hang into a clear failure;
// it is set far above what the wait takes on a busy machine, so that load can slow a test down but not fail it.

/** Ceiling for a process to start and answer (tap's own per-file timeout, 120 s, is the hard limit). */
export const STARTUP_CEILING_MS = 90_000;
/** Ceiling for something a running system does by itself: a background check, a reconnect, a reload. */
export const EVENT_CEILING_MS = 60_000;

/**
 * Resolves with the first truthy value of `check`, polled every intervalMs; throws after timeoutMs, naming what
 * was awaited.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { what: string | (() => string); timeoutMs?: number; intervalMs?: number },
): Promise<NonNullable<T>> {
  const { timeoutMs = EVENT_CEILING_MS, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      const what = typeof options.what === 'function' ? options.what() : options.what;
      throw new Error(`gave up waiting after ${timeoutMs} ms for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
