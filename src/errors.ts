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
