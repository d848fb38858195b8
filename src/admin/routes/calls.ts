// Calls: those up on this node, a call's SIP ladder from every node, the call
// detail records of the cluster, the trunks, and the media sessions of this
// node's devices.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { cdrCsv } from '../cdrCsv.ts';
import { parse, type RouteContext } from '../http.ts';
import type { CallDeps } from '../deps.ts';

/** A time in a query: milliseconds since 1970, or an ISO 8601 date. */
const QueryTime = z
  .string()
  .transform((v, ctx) => {
    const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(t)) ctx.addIssue({ code: 'custom', message: `not a time: ${v} (ms since 1970, or ISO 8601)` });
    return t;
  })
  .optional();
const LadderParams = z.strictObject({ call: z.string().min(1).max(100) });
const CdrQuery = z.strictObject({
  number: z.string().max(64).optional(),
  since: QueryTime,
  until: QueryTime,
  reason: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
  format: z.enum(['json', 'csv']).default('json'),
});

export function callRoutes(app: FastifyInstance, { node }: RouteContext<CallDeps>): void {
  app.get('/api/calls', async () => node.sip?.calls.calls() ?? []);
  app.get('/api/trunks', async () => node.trunkViews());
  // A call's SIP ladder from every node (recent calls; keys and Digest responses removed).
  app.get<{ Params: { call: string } }>('/api/calls/:call/ladder', async (req) => {
    const { call } = parse(LadderParams, req.params);
    return node.ladder(call);
  });
  // Call detail records of the whole cluster (every node keeps its own; a node that does not answer is read from
  // the cluster's archive when there is one, else named as missing).
  app.get('/api/cdrs', async (req, reply) => {
    const { format, ...filter } = parse(CdrQuery, req.query);
    const found = await node.cdrs(filter);
    if (format === 'csv') {
      void reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="cdrs.csv"');
      if (found.missing.length) void reply.header('x-tandem-missing-nodes', found.missing.join(','));
      if (found.archived.length) void reply.header('x-tandem-archived-nodes', found.archived.join(','));
      return cdrCsv(found.records);
    }
    return found;
  });

  // The media sessions of the devices this node hosts, leg by leg (RTP counts, loss, jitter, RTCP from the far end).
  app.get('/api/media', async () => ({
    node: node.name,
    status: (await node.media?.status()) ?? null,
    sessions: (await node.media?.describe()) ?? [],
  }));
}
