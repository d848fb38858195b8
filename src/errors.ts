// What every module needs to say about an error it caught: its message,
// whatever was thrown (a library may throw a string or a plain object).
// The named error classes live with the concept they belong to (ConfigError
// in config, BusTimeoutError in the bus...), each with `name` set and its
// `cause` kept.

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/**
 * The root of every error Tandem throws on purpose (in the manner of
 * nats.js's errors): its `name` is its class's, so logs and `instanceof`
 * agree, and it keeps what it wraps as `cause` (pass `{ cause }`). Each
 * concept's errors extend it beside the concept (ConfigError in config,
 * BusTimeoutError in the bus...); `test/errors.test.ts` holds every class
 * in src/ to this.
 */
export class TandemError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
