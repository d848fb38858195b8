// What every admin route shares: the error that carries an HTTP status, and
// the parse of a request's parts against its schema into a 400 that names
// each problem.
import type { FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { z } from 'zod';
import type { AdminDeps } from './deps.ts';
import type { ClusterView } from './clusterView.ts';
import type { LiveStream } from './liveStream.ts';
import type { NodeMetrics } from './metrics.ts';
import { TandemError } from '../errors.ts';

/**
 * The longest a route may work before it answers (apply waiting for every
 * node is the slowest). The server's socket idle timeout sits well above it:
 * an operator gets the answer, never a socket closed halfway through.
 */
export const ROUTE_WORK_MAX_MS = 30_000;

export class HttpError extends TandemError {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  throw new HttpError(400, msg);
}

export type { ApiError } from './views.ts';

/** What a route module is given: the node, the views built over it, and the write limit. */
/** What a route module is given: its part of the node (D), the cluster view, the live stream, the metrics. */
export interface RouteContext<D = AdminDeps> {
  readonly node: D;
  readonly view: ClusterView;
  readonly live: LiveStream;
  readonly metrics: NodeMetrics;
  /** route options of a write: rate-limited per client (token name, else address) */
  writeLimit(): RouteShorthandOptions;
}

/** The client a write is counted against. */
export const writeLimitKey = (req: FastifyRequest) => req.principal?.name ?? req.ip;
