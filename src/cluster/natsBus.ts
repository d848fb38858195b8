// The production bus: NATS core request/reply and pub/sub through the
// official client. Reconnects forever; subscriptions come back by themselves
// after a reconnect (the client replays them to the new server).
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { NatsReplies } from './natsReplies.ts';
import type { Bus, BusLink, EventHandler, RequestHandler, Subscription } from './bus.ts';
import { errorMessage } from '../errors.ts';

export interface NatsSettings {
  servers: string[];
  /** the node's nkey seed: authenticates it to nats-server (and signs its messages, see SignedBus) */
  seed?: Uint8Array | undefined;
  user?: string | undefined;
  pass?: string | undefined;
  token?: string | undefined;
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
}

/** Credentials come from the config, or from TANDEM_NATS_USER / _PASS / _TOKEN; never from code. */
export function natsSettings(
  bus: string,
  cfg:
    | { user?: string | undefined; pass?: string | undefined; token?: string | undefined; tls?: NatsSettings['tls'] }
    | undefined,
  env: NodeJS.ProcessEnv = process.env,
): NatsSettings {
  return {
    servers: bus
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    user: cfg?.user ?? env.TANDEM_NATS_USER,
    pass: cfg?.pass ?? env.TANDEM_NATS_PASS,
    token: cfg?.token ?? env.TANDEM_NATS_TOKEN,
    tls: cfg?.tls,
  };
}

/** Whether the settings carry any credential for nats-server. */
export function hasCredentials(s: NatsSettings): boolean {
  return s.seed !== undefined || s.user !== undefined || s.token !== undefined;
}

/**
 * inboxPrefix: replies to this connection's requests arrive under it; with
 * one per node, nats-server permissions let only that node read them.
 */
export async function connectNats(
  s: NatsSettings,
  name: string,
  log: Logger,
  inboxPrefix?: string,
): Promise<NatsConnection> {
  const nc = await connect({
    servers: s.servers,
    name,
    ...(s.seed !== undefined ? { authenticator: nkeyAuthenticator(s.seed) } : {}),
    ...(s.seed === undefined && s.user !== undefined ? { user: s.user, pass: s.pass ?? '' } : {}),
    ...(s.seed === undefined && s.token !== undefined ? { token: s.token } : {}),
    ...(inboxPrefix ? { inboxPrefix } : {}),
    ...(s.tls ? { tls: { caFile: s.tls.ca, certFile: s.tls.cert, keyFile: s.tls.key } } : {}),
    maxReconnectAttempts: -1,
    // The client gives up for good after two authentication errors in a row, and a node whose loop is busy
    // (a long start, a stall) fails the server's auth timeout that way: a call manager never gives up its bus.
    ignoreAuthErrorAbort: true,
    reconnectTimeWait: 250,
    pingInterval: 5000,
  });
  void (async () => {
    for await (const st of nc.status()) {
      if (st.type === 'disconnect' || st.type === 'reconnect' || st.type === 'error' || st.type === 'close') {
        const detail =
          'error' in st ? (st.error as Error | undefined)?.message : 'server' in st ? st.server : undefined;
        log.warn({ nats: st.type, ...(detail ? { detail } : {}) }, 'nats connection');
      }
    }
  })();
  log.info({ server: nc.getServer() }, 'connected to nats');
  return nc;
}

export class NatsBus implements Bus {
  private readonly replies: NatsReplies;
  private readonly state: BusLink = { connected: true, since: Date.now() };

  constructor(
    readonly nc: NatsConnection,
    private readonly log: Logger,
    inboxPrefix?: string,
  ) {
    this.replies = new NatsReplies(nc, inboxPrefix);
    void this.watchLink();
  }

  link(): BusLink {
    return { ...this.state };
  }

  private async watchLink(): Promise<void> {
    for await (const st of this.nc.status()) {
      const connected = st.type === 'disconnect' ? false : st.type === 'reconnect' ? true : undefined;
      if (connected === undefined || connected === this.state.connected) continue;
      this.state.connected = connected;
      this.state.since = Date.now();
    }
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.replies.request(subject, data, timeoutMs);
  }

  serve(subject: string, handler: RequestHandler): Subscription {
    return this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return this.log.warn({ subject, err: err.message }, 'subscription error');
        if (!msg.reply) return this.log.warn({ subject }, 'dropped a request without a reply subject');
        Promise.resolve()
          .then(() => handler({ subject: msg.subject, data: msg.data }))
          .then(
            (reply) => msg.respond(reply),
            (e: unknown) => this.log.error({ subject, err: e }, 'request handler failed'),
          );
      },
    });
  }

  publish(subject: string, data: Uint8Array): void {
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      // Closed or draining: the heartbeat or announcement is lost, as on a cut network.
      this.log.debug({ subject, err: errorMessage(err) }, 'publish failed');
    }
  }

  subscribe(subject: string, handler: EventHandler): Subscription {
    return this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return this.log.warn({ subject, err: err.message }, 'subscription error');
        try {
          handler({ subject: msg.subject, data: msg.data });
        } catch (e) {
          this.log.error({ subject, err: e }, 'event handler failed');
        }
      },
    });
  }

  flush(): Promise<void> {
    return this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    this.replies.close();
    await this.nc.drain().catch(() => this.nc.close());
  }
}
