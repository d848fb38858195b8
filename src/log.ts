import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines, or human lines when pretty (a terminal). */
export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.TANDEM_LOG_LEVEL ?? 'info';
  if (opts.pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { colorize: process.stdout.isTTY === true, singleLine: true, ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level, base: undefined });
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Logs a kind of event at most once per interval, with how many happened
 * since the last line: bad input from the network must not flood the log.
 * Remembers at most `maxKeys` kinds (oldest forgotten).
 */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 30_000,
    private readonly maxKeys = 1000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const e = this.last.get(key);
    if (e && now - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    if (!e && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, { at: now, suppressed: 0 });
    this.log.warn({ ...fields, ...(e?.suppressed ? { suppressed_since_last: e.suppressed } : {}) }, msg);
  }
}
