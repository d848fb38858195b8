// Retries of bus operations that fail because the bus is busy or away (a
// JetStream API call that timed out while twenty nodes start at once, a
// server being restarted), with exponential backoff and a log line per
// attempt. Errors that another attempt cannot mend (permissions, bad
// arguments, a closed connection) are thrown at once.
import type { Logger } from 'pino';
import { errorMessage, TandemError } from '../errors.ts';

/** Whether an error of the NATS client (or ours) says "not now" rather than "never". */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (/^(TimeoutError|NoRespondersError|BusTimeoutError|RequestError)$/.test(err.name)) return true;
  // (the JetStream client reports its API's "no responders" as "jetstream is not enabled": in a cluster of
  // servers that is their JetStream layer busy or electing a leader, seen at 50 nodes; a server really
  // without JetStream is retried too, with a warning per attempt that says so)
  return /timeout|timed out|no responders|503|jetstream (is )?(not enabled|temporarily unavailable)|disconnect|reconnect/i.test(
    err.message,
  );
}

export class RetryAbortedError extends TandemError {
  constructor(what: string, options?: ErrorOptions) {
    super(`${what}: stopped before it succeeded`, options);
  }
}

export interface RetryOptions {
  /** what is being done, for the log ("creating the mapping table bucket") */
  what: string;
  log: Logger;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** stops retrying (the node is stopping) */
  signal?: AbortSignal | undefined;
}

/** Runs `fn` until it succeeds, retrying transient failures with backoff (jittered, capped); other errors are thrown. */
export async function retryTransient<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  let delay = o.firstDelayMs ?? 200;
  const max = o.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (o.signal?.aborted) throw new RetryAbortedError(o.what, { cause: err });
      const wait = Math.round(delay * (0.75 + Math.random() / 2));
      o.log.warn({ attempt, retry_in_ms: wait, err: errorMessage(err) }, `${o.what} failed; retrying`);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(max, delay * 2);
    }
  }
}
