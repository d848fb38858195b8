// The admin HTTP API of one call manager. Every input is validated; a bad
// request gets a 4xx with a message, never a 500.
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { splitHostPort } from '../config/hostPort.ts';
import { AllocationError } from '../mrm/mediaResourceManager.ts';
import { packageVersion } from '../version.ts';
import { ClusterView } from './clusterView.ts';
import { isConsoleAsset } from './consoleAssets.ts';
import type { AdminDeps } from './deps.ts';
import { HttpError, ROUTE_WORK_MAX_MS, type RouteContext, writeLimitKey } from './http.ts';
import { LiveStream } from './liveStream.ts';
import { NodeMetrics } from './metrics.ts';
import { allocationRoutes } from './routes/allocations.ts';
import { callRoutes } from './routes/calls.ts';
import { alarmRoutes } from './routes/alarms.ts';
import { configRoutes } from './routes/config.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { phoneRoutes } from './routes/phones.ts';
import { resourceRoutes } from './routes/resources.ts';
import type { AdminPrincipal, AdminTokens } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: AdminPrincipal | undefined;
  }
}

/** Requests in progress past which new ones are shed with 503 (the event loop must keep answering liveness probes). */
const MAX_IN_FLIGHT = 256;

const STATUS_OF: Record<AllocationError['code'], number> = {
  unknown_phone: 404,
  not_local: 409,
  unknown_mrgl: 400,
  no_resource: 503,
};

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export class AdminServer {
  readonly app: FastifyInstance;
  private readonly metrics: NodeMetrics;
  private readonly view: ClusterView;
  private readonly live: LiveStream;
  private inFlight = 0;
  url: string | undefined;

  constructor(
    private readonly cm: AdminDeps,
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
          ...(t.attempts ? { attempts: t.attempts } : {}),
          ...(t.failures ? { failures: t.failures } : {}),
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
      keepAliveTimeout: 5_000,
      // Silence on a socket while a route works: above the longest route's work (a
      // 15 s limit closed the socket under an apply waiting for a hung node).
      connectionTimeout: ROUTE_WORK_MAX_MS + 30_000,
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
          keyGenerator: writeLimitKey,
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
      return reply.code(STATUS_OF[err.code]).send({
        error: err.message,
        code: err.code,
        ...(err.trace ? { trace: err.trace } : {}),
        ...(err.controller ? { controller: err.controller } : {}),
      });
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
    const ctx: RouteContext = {
      node: this.cm,
      view: this.view,
      live: this.live,
      metrics: this.metrics,
      writeLimit: () => this.writeLimit(),
    };
    for (const register of [
      nodeRoutes,
      phoneRoutes,
      callRoutes,
      resourceRoutes,
      allocationRoutes,
      configRoutes,
      alarmRoutes,
    ]) {
      register(app, ctx);
    }
  }
}
