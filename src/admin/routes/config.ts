// tandem apply: a new configuration validated here, then applied in place by
// every node that is up, each checking the operator's token itself.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ConfigApplyReply } from '../../cluster/messages.ts';
import { parseConfig } from '../../config/load.ts';
import { HttpError, parse, type RouteContext } from '../http.ts';
import { bearerToken } from '../tokens.ts';

const ApplyBody = z.strictObject({ yaml: z.string().min(1, "yaml is required: the configuration file's text") });

/** The answer to tandem apply: the version, who asked, and each node's outcome. */
export interface ApplyView {
  version: string;
  by: string;
  nodes: ConfigApplyReply[];
}

export function configRoutes(app: FastifyInstance, { node, view, writeLimit }: RouteContext): void {
  const { model } = node;
  // tandem apply: validate a new version here, then every node that is up applies it in place.
  app.get('/api/config', async () => ({
    version: model.version,
    nodes: view.nodes(await view.statuses({})).map((n) => ({ node: n.name, up: n.up, version: n.config_version })),
  }));
  app.post('/api/config', { ...writeLimit(), bodyLimit: 4 * 1024 * 1024 }, async (req) => {
    const body = parse(ApplyBody, req.body);
    const next = parseConfig(body.yaml);
    if (!next.ok)
      throw new HttpError(400, `configuration refused: ${next.problems.length} problem(s)`, {
        problems: next.problems,
      });
    const problems = node.configProblems(next.model);
    if (problems.length) throw new HttpError(400, `configuration refused: ${problems.length} problem(s)`, { problems });
    const client = req.principal!.name;
    node.log.info({ client, from: model.version, version: next.model.version }, 'configuration change requested');
    // The node list does not change (nodes are restart-only): ask each node, this one last so its own view stays consistent meanwhile.
    const others = [...model.nodes.keys()].filter((n) => n !== node.name);
    // Each node checks the operator's token itself: a node's key alone cannot change another's configuration.
    const authority = { token: bearerToken(req.headers.authorization)! };
    const results = await Promise.all(others.map((n) => node.applyOn(n, next.raw, next.model, authority)));
    results.unshift(await node.applyOn(node.name, next.raw, next.model, authority));
    const view: ApplyView = { version: next.model.version, by: client, nodes: results };
    return view;
  });
}
