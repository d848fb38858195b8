// The nodes of the cluster as this one sees them, its metrics, and the
// console's picture of the cluster (now, the last hour, live) with the
// console's own files.
import type { FastifyInstance } from 'fastify';
import { consoleRoutes } from '../consoleAssets.ts';
import { z } from 'zod';
import { parse, type RouteContext } from '../http.ts';
import type { NodeSelf } from '../deps.ts';

const HistoryQuery = z.strictObject({ range: z.enum(['hour', 'day']).default('hour') });

export function nodeRoutes(app: FastifyInstance, { node, view, live, metrics }: RouteContext<NodeSelf>): void {
  app.get('/healthz', async () => ({ ok: true, node: node.name, boot: node.boot }));

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // Who the token is: the console shows write actions to operators only (the API refuses them to viewers anyway).
  app.get('/api/whoami', async (req) => ({ name: req.principal!.name, role: req.principal!.role }));
  app.get('/api/nodes', async () => view.nodes(await view.statuses({})));

  // The console's picture of the whole cluster, now and over the last hour, and live.
  app.get('/api/cluster', async () => view.snapshot());
  // The last hour, 10 s samples; ?range=day: the last day, each minute's peak.
  app.get('/api/cluster/history', async (req) => view.history(parse(HistoryQuery, req.query).range === 'day'));
  app.get('/api/cluster/stream', async (req, reply) => live.subscribe(req, reply));
  consoleRoutes(app);
}
