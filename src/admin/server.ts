// The admin HTTP API of one call manager. Every input is validated; a bad
// request gets a 4xx with a message, never a 500.
import { readFileSync } from 'node:fs';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { z } from 'zod';
import { Codec, MEDIA_RESOURCE_TYPES } from '../config/schema.ts';
import { DEFAULT_GROUP } from '../config/model.ts';
import { type DeviceStatus, Requirement } from '../cluster/messages.ts';
import { AllocationError, type Allocation } from '../mrm/mediaResourceManager.ts';
import type { CallManager } from '../node/callManager.ts';
import { parseConfig } from '../config/load.ts';
import { ClusterView } from './clusterView.ts';
import { consoleRoutes, isConsoleAsset } from './consoleAssets.ts';
import { LiveStream } from './liveStream.ts';
import { cdrCsv } from './cdrCsv.ts';
import { NodeMetrics } from './metrics.ts';
import { packageVersion } from '../version.ts';
import { type AdminTokens, OperatorActRefused, bearerToken, type AdminPrincipal } from './tokens.ts';
import { splitHostPort } from '../config/hostPort.ts';
import { errorMessage } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: AdminPrincipal | undefined;
  }
}

/** Requests in progress past which new ones are shed with 503 (the event loop must keep answering liveness probes). */
const MAX_IN_FLIGHT = 256;

const AllocationBody = z.strictObject({
  phone: z.string().min(1),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  requirement: Requirement.optional(),
  codecs: z.array(Codec).min(1).max(8).optional(),
  /** released by itself after this many seconds (default admin.lease_default_s, at most admin.lease_max_s) */
  lease_s: z.number().int().min(1).max(86_400).optional(),
});

const ApplyBody = z.strictObject({ yaml: z.string().min(1, "yaml is required: the configuration file's text") });

const DeleteQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });

const ExplainQuery = z.strictObject({
  phone: z.string().min(1, 'phone is required'),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  /** comma-separated codecs the device must handle */
  codecs: z.string().optional(),
  audio_source: z.coerce.number().int().min(0).max(999).optional(),
  /** true: the call needs encrypted media (devices without SRTP show as no_capability) */
  srtp: z.enum(['true', 'false']).optional(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

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

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  throw new HttpError(400, msg);
}

const STATUS_OF: Record<AllocationError['code'], number> = {
  unknown_phone: 404,
  not_local: 409,
  unknown_mrgl: 400,
  no_resource: 503,
};

export function allocationView(a: Allocation) {
  return {
    id: a.id,
    phone: a.phone,
    type: a.type,
    resource: a.resource,
    node: a.node,
    pid: a.pid,
    since: a.since,
    holder: a.holder.kind === 'call' ? { call: a.holder.call } : { client: a.holder.client },
    expires_at: a.expiresAt ?? null,
    trace: a.trace,
  };
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export class AdminServer {
  readonly app: FastifyInstance;
  private readonly metrics: NodeMetrics;
  private readonly view: ClusterView;
  private readonly live: LiveStream;
  private inFlight = 0;
  url: string | undefined;

  constructor(
    private readonly cm: CallManager,
    private readonly tokens: AdminTokens,
  ) {
    this.metrics = new NodeMetrics({
      node: cm.name,
      mrm: cm.mrm,
      localResources: () => cm.localResources(),
      refusals: () => cm.refusals(),
      configVersion: () => cm.model.version,
      peers: () =>
        [...cm.model.nodes.keys()]
          .filter((n) => n !== cm.name)
          .map((n) => ({ node: n, up: cm.liveness.isUp(n), state: cm.liveness.statusOf(n) })),
      isolated: () => cm.liveness.isolated,
      mappingTableReads: () => cm.mappingTableReads,
      mappingTableNodes: () => cm.devices.watchedNodes.length,
      mappingTableEntries: () => cm.devices.size,
      callSetups: () => ({
        ...(cm.sip?.authenticator.setups ?? { offered: 0, admitted: 0 }),
        inProgress: cm.sip?.calls.setupsInProgress ?? 0,
      }),
      calls: () => cm.sip?.calls.calls().length ?? 0,
      registeredPhones: () => [...cm.phones.keys()].filter((n) => cm.sip?.registrar.isActive(n)).length,
      mrgls: () => [...cm.model.mrgls.keys(), '(none)'],
      trunks: () =>
        cm.trunkViews().map((t) => ({
          trunk: t.trunk,
          calls: t.calls,
          registered: t.registration ? t.registration.state === 'registered' : undefined,
          peers: t.peers,
        })),
      version: packageVersion(),
    });
    this.view = new ClusterView(cm);
    this.live = new LiveStream(() => this.view.snapshot(), cm.log);
    const tls = cm.model.config.admin.tls;
    this.app = Fastify({
      loggerInstance: cm.log.child({ component: 'admin' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 64 * 1024,
      // Slow or idle clients must not hold sockets: whole request within 10 s, idle keep-alive 5 s.
      requestTimeout: 10_000,
      connectionTimeout: 15_000,
      keepAliveTimeout: 5_000,
      ...(tls ? { https: { cert: readFileSync(this.file(tls.cert)), key: readFileSync(this.file(tls.key)) } } : {}),
    });
    this.app.decorateRequest('principal', undefined);
    // JSON only: anything else is 415, not a string body that fails validation later.
    this.app.removeContentTypeParser('text/plain');
    this.app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => this.fail(reply, err));
    this.app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
    this.guard();
    // Routes after the plugins: the rate limiter sees routes declared once it is loaded.
    void this.app.register(async (scope) => this.routes(scope));
  }

  private file(f: string): string {
    return f.startsWith('/') ? f : `${this.cm.model.baseDir}/${f}`;
  }

  /**
   * Every route but /healthz needs a bearer token; writes need an operator's.
   * Load is shed (503 + Retry-After) before it can starve the event loop that
   * also answers this node's liveness probes.
   */
  private guard(): void {
    const { app } = this;
    void app.register(underPressure, {
      maxEventLoopDelay: 500,
      retryAfter: 1,
      exposeStatusRoute: false,
      pressureHandler: (_req, reply) =>
        void reply.code(503).header('retry-after', '1').send({ error: 'node overloaded, retry later' }),
    });
    void app.register(rateLimit, { global: false });
    app.addHook('onRequest', async (req, reply) => {
      if (this.inFlight >= MAX_IN_FLIGHT) {
        return reply.code(503).header('retry-after', '1').send({ error: 'too many requests in progress, retry later' });
      }
      this.inFlight++;
      reply.raw.once('close', () => this.inFlight--);
      // Health, and the console's page and scripts (no data in them: the data routes need a token).
      if (req.url === '/healthz' || isConsoleAsset(req.url)) return;
      req.principal = this.tokens.verify(req.headers.authorization);
      if (!req.principal) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="tandem-admin"')
          .send({ error: 'authentication required: send Authorization: Bearer <token> (see SECURITY.md)' });
      }
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.principal.role !== 'operator') {
        return reply
          .code(403)
          .send({ error: `token "${req.principal.name}" is a viewer: ${req.method} needs an operator token` });
      }
    });
  }

  /** Route options of a write: rate-limited per client (token name, else address). */
  private writeLimit() {
    return {
      config: {
        rateLimit: {
          max: this.cm.model.config.admin.write_rate_per_min,
          timeWindow: 60_000,
          keyGenerator: (req: FastifyRequest) => req.principal?.name ?? req.ip,
        },
      },
    };
  }

  async listen(portOverride?: number): Promise<string> {
    const addr = this.cm.model.nodes.get(this.cm.name)!.admin;
    const { host, port: configured } = splitHostPort(addr);
    const port = portOverride ?? configured;
    if (!isLoopback(host) && !this.cm.model.config.admin.tls) {
      this.cm.log.warn(
        { admin: addr },
        'admin API listens beyond loopback without TLS: tokens cross the network in clear (set admin.tls)',
      );
    }
    this.app.server.maxConnections = 1024;
    await this.app.listen({ host, port });
    const a = this.app.server.address();
    this.url = `${this.cm.model.config.admin.tls ? 'https' : 'http'}://${host}:${typeof a === 'object' && a ? a.port : port}`;
    return this.url;
  }

  close(): Promise<void> {
    this.live.close();
    return this.app.close();
  }

  private fail(reply: FastifyReply, err: Error & { statusCode?: number }) {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.message, ...err.extra });
    if (err instanceof AllocationError) {
      return reply
        .code(STATUS_OF[err.code])
        .send({ error: err.message, code: err.code, ...(err.trace ? { trace: err.trace } : {}) });
    }
    // Fastify's own 4xx (malformed JSON, wrong content type, body too large).
    if (err.statusCode === 415)
      return reply.code(415).send({ error: 'unsupported content-type: send application/json' });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send({ error: err.message });
    this.cm.log.error({ err }, 'admin API failure');
    return reply.code(500).send({ error: 'internal error' });
  }

  private routes(app: FastifyInstance): void {
    const { cm } = this;
    const { model } = cm;

    app.get('/healthz', async () => ({ ok: true, node: cm.name, boot: cm.boot }));

    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', this.metrics.registry.contentType);
      return this.metrics.registry.metrics();
    });

    app.get('/api/nodes', async () => this.view.nodes(await this.view.statuses({})));

    app.get('/api/phones', async () =>
      [...model.phones.values()].map((p) => {
        const found = cm.devices.lookup(p.number);
        // A phone of this node may have handed over an MRGL when it registered.
        const mrgl = model.resolveMrgl(p, { registration: cm.phones.get(p.number)?.snapshot().mrgl });
        return {
          number: p.number,
          node: p.node,
          device_pool: p.devicePool,
          user_class: p.userClass,
          location: p.location ?? null,
          mrgl: mrgl.mrgl ?? null,
          mrgl_source: mrgl.source,
          // what call control assumes the phone takes: configured, else learnt from its SDP, else the default
          codecs: p.codecsConfigured ? p.codecs : (found.entry?.codecs ?? p.codecs),
          codecs_source: p.codecsConfigured ? 'config' : found.entry?.codecs ? 'learnt' : 'default',
          pid: found.entry?.pid ?? null,
          registered: found.registered,
          // SIP: where the phone registered from (cluster-wide, from the mapping table)
          sip_registration: found.registered && found.entry.registration ? found.entry.registration : null,
          // the node it is registered at now: its own, or another of its Call Manager Group
          registered_at: found.registered && found.entry.registration ? found.entry.node : null,
          call_managers: p.callManagers,
        };
      }),
    );

    app.get('/api/calls', async () => cm.sip?.calls.calls() ?? []);
    app.get('/api/trunks', async () => cm.trunkViews());
    // A call's SIP ladder from every node (recent calls; keys and Digest responses removed).
    app.get<{ Params: { call: string } }>('/api/calls/:call/ladder', async (req) => {
      const { call } = parse(LadderParams, req.params);
      return cm.ladder(call);
    });
    // Call detail records of the whole cluster (every node keeps its own; nodes that do not answer are named).
    app.get('/api/cdrs', async (req, reply) => {
      const { format, ...filter } = parse(CdrQuery, req.query);
      const found = await cm.cdrs(filter);
      if (format === 'csv') {
        void reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', 'attachment; filename="cdrs.csv"');
        if (found.missing.length) void reply.header('x-tandem-missing-nodes', found.missing.join(','));
        return cdrCsv(found.records);
      }
      return found;
    });

    // The media sessions of the devices this node hosts, leg by leg (RTP counts, loss, jitter, RTCP from the far end).
    app.get('/api/media', async () => ({
      node: cm.name,
      status: (await cm.media?.status()) ?? null,
      sessions: (await cm.media?.describe()) ?? [],
    }));

    app.get('/api/resources', async () => this.view.resources());

    // Drain: the device takes no new allocations, those in use finish; undrain reverses it. A device of
    // another node is drained by that node, which checks the operator's token itself (a node's key is not enough).
    for (const [verb, draining] of [
      ['drain', true],
      ['undrain', false],
    ] as const) {
      app.post<{ Params: { name: string } }>(`/api/resources/:name/${verb}`, this.writeLimit(), async (req) => {
        const r = model.resources.get(req.params.name);
        if (!r) throw new HttpError(404, `no media resource ${req.params.name}`);
        const operator = req.principal!.name;
        let s: DeviceStatus | { error: string };
        if (r.node === cm.name) s = await cm.drainLocal(r.name, draining, operator);
        else {
          if (!cm.liveness.isUp(r.node)) throw new HttpError(503, `${r.name}'s node ${r.node} is not up`);
          s = await cm
            .drainOn(r.node, r.name, draining, { token: bearerToken(req.headers.authorization)! })
            .catch((err: unknown) => {
              throw err instanceof OperatorActRefused
                ? new HttpError(403, err.message)
                : new HttpError(503, `${r.node} did not answer: ${errorMessage(err)}`);
            });
        }
        if ('error' in s) throw new HttpError(503, s.error);
        return { name: r.name, draining: s.draining ?? draining, active: s.active, capacity: s.capacity };
      });
    }

    app.get('/api/mrgls', async () => {
      const group = (name: string) => {
        const g = name === DEFAULT_GROUP ? model.defaultGroup : model.groups.get(name)!;
        return {
          name: g.name,
          location: g.location ?? null,
          user_class: g.userClass ?? null,
          policy: g.policy,
          devices: g.devices.map((d) => ({ name: d, type: model.resources.get(d)!.type })),
        };
      };
      return {
        mrgls: [...model.mrgls].map(([name, groups]) => ({ name, groups: groups.map(group) })),
        default_group: group(DEFAULT_GROUP),
      };
    });

    app.get('/api/allocations', async () => cm.mrm.allocations().map(allocationView));

    app.post('/api/allocations', this.writeLimit(), async (req, reply) => {
      const body = parse(AllocationBody, req.body);
      const client = req.principal!.name;
      const adminCfg = model.config.admin;
      const mine = cm.mrm.allocations().filter((a) => a.holder.kind === 'api' && a.holder.client === client).length;
      if (mine >= adminCfg.max_allocations_per_client) {
        throw new HttpError(
          429,
          `client "${client}" already holds ${mine} allocations through the API (admin.max_allocations_per_client)`,
        );
      }
      const leaseS = Math.min(body.lease_s ?? adminCfg.lease_default_s, adminCfg.lease_max_s);
      const requirement = body.codecs ? { ...body.requirement, codecs: body.codecs } : body.requirement;
      const a = await cm.mrm.allocate({
        phone: body.phone,
        type: body.type,
        mrgl: body.mrgl,
        requirement,
        holder: { kind: 'api', client },
        leaseMs: leaseS * 1000,
      });
      cm.log.info({ allocation: a.id, device: a.resource, client, lease_s: leaseS }, 'allocated through the admin API');
      return reply.code(201).send(allocationView(a));
    });

    app.delete<{ Params: { id: string } }>('/api/allocations/:id', this.writeLimit(), async (req, reply) => {
      const q = parse(DeleteQuery, req.query);
      const a = cm.mrm.get(req.params.id);
      if (!a) throw new HttpError(404, `no allocation ${req.params.id} held by ${cm.name}`);
      const client = req.principal!.name;
      if (a.holder.kind === 'call') {
        if (q.force !== 'true') {
          throw new HttpError(
            409,
            `allocation ${a.id} carries the media of call ${a.holder.call}; add ?force=true to take it (the call moves to another device or ends)`,
            {
              call: a.holder.call,
            },
          );
        }
        cm.log.warn({ allocation: a.id, device: a.resource, holder: a.holder, client }, 'allocation revoked');
        await a.revoke(`released by operator ${client}`);
      } else {
        await a.release();
      }
      cm.log.info({ allocation: a.id, device: a.resource, client, holder: a.holder }, 'released through the admin API');
      return reply.code(204).send();
    });

    // tandem apply: validate a new version here, then every node that is up applies it in place.
    app.get('/api/config', async () => ({
      version: model.version,
      nodes: this.view
        .nodes(await this.view.statuses({}))
        .map((n) => ({ node: n.name, up: n.up, version: n.config_version })),
    }));
    app.post('/api/config', { ...this.writeLimit(), bodyLimit: 4 * 1024 * 1024 }, async (req) => {
      const body = parse(ApplyBody, req.body);
      const next = parseConfig(body.yaml);
      if (!next.ok)
        throw new HttpError(400, `configuration refused: ${next.problems.length} problem(s)`, {
          problems: next.problems,
        });
      const problems = cm.configProblems(next.model);
      if (problems.length)
        throw new HttpError(400, `configuration refused: ${problems.length} problem(s)`, { problems });
      const client = req.principal!.name;
      cm.log.info({ client, from: model.version, version: next.model.version }, 'configuration change requested');
      // The node list does not change (nodes are restart-only): ask each node, this one last so its own view stays consistent meanwhile.
      const others = [...model.nodes.keys()].filter((n) => n !== cm.name);
      // Each node checks the operator's token itself: a node's key alone cannot change another's configuration.
      const authority = { token: bearerToken(req.headers.authorization)! };
      const results = await Promise.all(others.map((n) => cm.applyOn(n, next.raw, next.model, authority)));
      results.unshift(await cm.applyOn(cm.name, next.raw, next.model, authority));
      return { version: next.model.version, by: client, nodes: results };
    });

    // The console's picture of the whole cluster, now and over the last hour, and live.
    app.get('/api/cluster', async () => this.view.snapshot());
    app.get('/api/cluster/history', async () => this.view.history());
    app.get('/api/cluster/stream', async (req, reply) => this.live.subscribe(req, reply));
    consoleRoutes(app);

    app.get('/api/explain', async (req) => {
      const q = parse(ExplainQuery, req.query);
      let codecs: Codec[] | undefined;
      if (q.codecs) codecs = q.codecs.split(',').map((c) => parse(Codec, c.trim().toUpperCase()));
      // A phone of another node: that node walks, as it would for a real allocation.
      return cm.explainAnywhere({
        phone: q.phone,
        type: q.type,
        mrgl: q.mrgl,
        requirement: {
          ...(codecs ? { codecs } : {}),
          ...(q.audio_source !== undefined ? { audio_source: q.audio_source } : {}),
          ...(q.srtp === 'true' ? { srtp: true } : {}),
        },
      });
    });
  }
}
