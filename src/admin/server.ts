// The admin HTTP API of one call manager. Every input is validated; a bad
// request gets a 4xx with a message, never a 500.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { Codec, MEDIA_RESOURCE_TYPES } from '../config/schema.ts';
import { DEFAULT_GROUP } from '../config/model.ts';
import { Requirement } from '../cluster/messages.ts';
import { AllocationError, type Allocation } from '../mrm/mediaResourceManager.ts';
import type { CallManager } from '../node/callManager.ts';
import { NodeMetrics } from './metrics.ts';

const AllocationBody = z.strictObject({
  phone: z.string().min(1),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  requirement: Requirement.optional(),
});

const ExplainQuery = z.strictObject({
  phone: z.string().min(1, 'phone is required'),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  /** comma-separated codecs the device must handle */
  codecs: z.string().optional(),
  audio_source: z.coerce.number().int().min(0).max(999).optional(),
});

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

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
  return { id: a.id, phone: a.phone, type: a.type, resource: a.resource, node: a.node, pid: a.pid, since: a.since, trace: a.trace };
}

export class AdminServer {
  readonly app: FastifyInstance;
  private readonly metrics: NodeMetrics;
  url: string | undefined;

  constructor(private readonly cm: CallManager) {
    this.metrics = new NodeMetrics(cm.name, cm.mrm, () => cm.localResources());
    this.app = Fastify({ loggerInstance: cm.log.child({ component: 'admin' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 64 * 1024 });
    // JSON only: anything else is 415, not a string body that fails validation later.
    this.app.removeContentTypeParser('text/plain');
    this.app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => this.fail(reply, err));
    this.app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
    this.routes();
  }

  async listen(portOverride?: number): Promise<string> {
    const addr = this.cm.model.nodes.get(this.cm.name)!.admin;
    const i = addr.lastIndexOf(':');
    const host = addr.slice(0, i);
    const port = portOverride ?? Number(addr.slice(i + 1));
    await this.app.listen({ host, port });
    const a = this.app.server.address();
    this.url = `http://${host}:${typeof a === 'object' && a ? a.port : port}`;
    return this.url;
  }

  close(): Promise<void> {
    return this.app.close();
  }

  private fail(reply: FastifyReply, err: Error & { statusCode?: number }) {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.message, ...err.extra });
    if (err instanceof AllocationError) {
      return reply.code(STATUS_OF[err.code]).send({ error: err.message, code: err.code, ...(err.trace ? { trace: err.trace } : {}) });
    }
    // Fastify's own 4xx (malformed JSON, wrong content type, body too large).
    if (err.statusCode === 415) return reply.code(415).send({ error: 'unsupported content-type: send application/json' });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    this.cm.log.error({ err }, 'admin API failure');
    return reply.code(500).send({ error: 'internal error' });
  }

  private routes(): void {
    const { app, cm } = this;
    const { model } = cm;

    app.get('/healthz', async () => ({ ok: true, node: cm.name, boot: cm.boot }));

    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', this.metrics.registry.contentType);
      return this.metrics.registry.metrics();
    });

    app.get('/api/nodes', async () => {
      const seen = new Map(cm.liveness.states().map((s) => [s.node, s]));
      return [...model.nodes.values()].map((n) => {
        const self = n.name === cm.name;
        const s = seen.get(n.name);
        return {
          name: n.name,
          self,
          up: self || (s?.up ?? false),
          boot: self ? cm.boot : (s?.boot ?? null),
          admin: n.admin,
          sip: n.sip,
          last_seen: self ? Date.now() : (s?.lastSeen ?? null),
        };
      });
    });

    app.get('/api/phones', async () =>
      [...model.phones.values()].map((p) => {
        const found = cm.devices.lookup(p.number);
        return {
          number: p.number,
          node: p.node,
          device_pool: p.devicePool,
          user_class: p.userClass,
          location: p.location ?? null,
          mrgl: model.mrglFor(p) ?? null,
          mrgl_source: p.ownMrgl ? 'phone' : p.poolMrgl ? 'device_pool' : 'none',
          pid: found.entry?.pid ?? null,
          registered: found.registered,
          // SIP: where the phone registered from (cluster-wide, from the mapping table)
          sip_registration: found.registered && found.entry.registration ? found.entry.registration : null,
        };
      }),
    );

    app.get('/api/calls', async () => cm.sip?.calls.calls() ?? []);

    // The media sessions of the devices this node hosts, leg by leg (RTP counts, loss, jitter, RTCP from the far end).
    app.get('/api/media', async () => ({ node: cm.name, status: cm.media?.status() ?? null, sessions: cm.media?.describe() ?? [] }));

    app.get('/api/resources', async () => {
      // One status request per node that is up, in parallel.
      const status = new Map<string, { active: number; available: number; out_of_resources: number }>();
      await Promise.all(
        [...model.nodes.keys()]
          .filter((n) => cm.liveness.isUp(n))
          .map(async (n) => {
            try {
              for (const d of (await cm.nodeStatus(n)).devices) status.set(d.name, d);
            } catch (err) {
              cm.log.warn({ peer: n, err: (err as Error).message }, 'no status from node');
            }
          }),
      );
      return [...model.resources.values()].map((r) => {
        const found = cm.devices.lookup(r.name);
        const s = found.registered ? status.get(r.name) : undefined;
        return {
          name: r.name,
          type: r.type,
          node: r.node,
          location: r.location ?? null,
          pid: found.entry?.pid ?? null,
          registered: found.registered,
          capacity: r.capacity,
          active: s?.active ?? null,
          available: s?.available ?? null,
          out_of_resources: s?.out_of_resources ?? null,
        };
      });
    });

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

    app.post('/api/allocations', async (req, reply) => {
      const body = parse(AllocationBody, req.body);
      const a = await cm.mrm.allocate(body);
      return reply.code(201).send(allocationView(a));
    });

    app.delete<{ Params: { id: string } }>('/api/allocations/:id', async (req, reply) => {
      if (!(await cm.mrm.release(req.params.id))) throw new HttpError(404, `no allocation ${req.params.id} held by ${cm.name}`);
      return reply.code(204).send();
    });

    app.get('/api/explain', async (req) => {
      const q = parse(ExplainQuery, req.query);
      let codecs: Codec[] | undefined;
      if (q.codecs) codecs = q.codecs.split(',').map((c) => parse(Codec, c.trim().toUpperCase()));
      return cm.mrm.explain({
        phone: q.phone,
        type: q.type,
        mrgl: q.mrgl,
        requirement: { ...(codecs ? { codecs } : {}), ...(q.audio_source !== undefined ? { audio_source: q.audio_source } : {}) },
      });
    });
  }
}
