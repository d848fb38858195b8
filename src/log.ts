import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines, or human lines when pretty (a terminal). */
export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.TANDEM_LOG_LEVEL ?? 'info';
  if (opts.pretty) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } });
  }
  return pino({ level, base: undefined });
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
