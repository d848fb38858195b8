// The cluster's configuration: its version on every node; tandem apply (a new
// version validated here, then applied in place by every node that is up,
// each checking the operator's token itself); the check the console's editor
// runs as the operator types (the same checks, what would change on each
// node, and a diff against the running text); the versions each node keeps,
// and rollback to one of them. Texts hold the phones' passwords: only an
// operator reads them.
import { createTwoFilesPatch } from 'diff';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { changesFor, describeChanges } from '../../config/configChange.ts';
import type { ConfigVersionView } from '../../config/configVersions.ts';
import { parseConfig } from '../../config/load.ts';
import type { ClusterModel } from '../../config/model.ts';
import { HttpError, parse, type RouteContext } from '../http.ts';
import type { ConfigDeps } from '../deps.ts';
import { bearerToken } from '../tokens.ts';
import type { ApplyView, ConfigCheckView, ConfigTextView } from '../views.ts';

export type { ApplyView, ConfigCheckView, ConfigTextView } from '../views.ts';

const ApplyBody = z.strictObject({ yaml: z.string().min(1, "yaml is required: the configuration file's text") });
const RollbackBody = z.strictObject({ version: z.string().regex(/^[0-9a-f]{1,64}$/, 'a configuration version') });
const VersionParams = z.strictObject({ version: z.string().regex(/^[0-9a-f]{1,64}$/, 'a configuration version') });

export function configRoutes(app: FastifyInstance, { node, view, writeLimit }: RouteContext<ConfigDeps>): void {
  const { model } = node;
  const operatorOnly = (req: FastifyRequest, what: string) => {
    if (req.principal?.role !== 'operator')
      throw new HttpError(403, `token "${req.principal?.name}" is a viewer: ${what} needs an operator token`);
  };
  /** Validates a text as check-config and this running cluster would; throws a 400 naming every problem. */
  const validated = (text: string): ClusterModel => {
    const next = parseConfig(text);
    if (!next.ok)
      throw new HttpError(400, `configuration refused: ${next.problems.length} problem(s)`, {
        problems: next.problems,
      });
    const problems = node.configProblems(next.model);
    if (problems.length) throw new HttpError(400, `configuration refused: ${problems.length} problem(s)`, { problems });
    return next.model;
  };
  /** Every node that is up applies it, this one last so its own view stays consistent meanwhile. */
  const applyEverywhere = async (req: FastifyRequest, next: ClusterModel, what: string): Promise<ApplyView> => {
    const client = req.principal!.name;
    node.log.info({ client, from: model.version, version: next.version }, what);
    // (the node list does not change: nodes are restart-only)
    const others = [...model.nodes.keys()].filter((n) => n !== node.name);
    // Each node checks the operator's token itself: a node's key alone cannot change another's configuration.
    const authority = { token: bearerToken(req.headers.authorization)! };
    const raw = next.config as unknown as Record<string, unknown>;
    const results = await Promise.all(others.map((n) => node.applyOn(n, raw, next, authority, client)));
    results.unshift(await node.applyOn(node.name, raw, next, authority, client));
    return { version: next.version, by: client, nodes: results };
  };

  app.get('/api/config', async () => ({
    version: model.version,
    nodes: view.nodes(await view.statuses({})).map((n) => ({ node: n.name, up: n.up, version: n.config_version })),
  }));

  app.get('/api/config/text', async (req): Promise<ConfigTextView> => {
    operatorOnly(req, 'the configuration text');
    return { version: model.version, text: node.configText(model) };
  });

  app.get('/api/config/versions', async (): Promise<ConfigVersionView[]> => node.configVersions.list(model.version));

  app.get('/api/config/versions/:version', async (req): Promise<ConfigTextView> => {
    operatorOnly(req, 'a configuration text');
    const { version } = parse(VersionParams, req.params);
    const v = node.configVersions.get(version);
    if (!v) throw new HttpError(404, `version ${version} is not in ${node.name}'s history`);
    return v;
  });

  app.post('/api/config/check', { bodyLimit: 4 * 1024 * 1024 }, async (req): Promise<ConfigCheckView> => {
    const { yaml } = parse(ApplyBody, req.body);
    const next = parseConfig(yaml);
    const problems = next.ok ? node.configProblems(next.model) : next.problems;
    const running = node.configText(model);
    const diff = createTwoFilesPatch(`running ${model.version}`, 'edited', running, yaml, undefined, undefined, {
      context: 3,
    });
    if (!next.ok || problems.length) return { ok: false, version: null, problems, changes: [], diff };
    const changes = [...model.nodes.keys()].map((n) => ({
      node: n,
      changes: describeChanges(changesFor(model, next.model, n)),
    }));
    return { ok: true, version: next.model.version, problems: [], changes, diff };
  });

  app.post('/api/config', { ...writeLimit(), bodyLimit: 4 * 1024 * 1024 }, async (req): Promise<ApplyView> => {
    const body = parse(ApplyBody, req.body);
    return applyEverywhere(req, validated(body.yaml), 'configuration change requested');
  });

  // Rollback: an earlier version's text, from this node's history, applied as any new version is.
  app.post('/api/config/rollback', writeLimit(), async (req): Promise<ApplyView> => {
    const { version } = parse(RollbackBody, req.body);
    const v = node.configVersions.get(version);
    if (!v) throw new HttpError(404, `version ${version} is not in ${node.name}'s history`);
    if (version === model.version) throw new HttpError(409, `version ${version} is the one running`);
    return applyEverywhere(req, validated(v.text), `rollback to ${version} requested`);
  });
}
