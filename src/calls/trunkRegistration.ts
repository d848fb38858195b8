// Outbound registration of a trunk (trunks.<t>.register): a node that
// carries the trunk registers its own contact at the trunk's first peer, as
// carriers want before they send calls in, answering the Digest challenge
// with the trunk's credentials. Refreshed at half the lifetime the far end
// grants; a failure (no answer, refused, credentials not accepted) is
// retried with backoff (2 s doubling to 5 min) and the state is shown in
// the API and the metrics. Unregistered (Expires: 0) when the node stops.
import type { Logger } from 'pino';
import type { TrunkSpec } from '../config/model.ts';
import { digestResponse } from '../sip/digest.ts';
import { parseNameAddr } from '../sip/grammar.ts';
import type { SipResponse } from '../sip/message.ts';
import type { SipStack } from '../sip/transactions.ts';
import { Dialog } from './dialog.ts';
import type { TrunkPeer } from './trunkPeers.ts';
import { errorMessage } from '../errors.ts';

export type TrunkRegistrationState = 'registering' | 'registered' | 'failed' | 'stopped';

const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 300_000;

export interface TrunkRegistrationView {
  trunk: string;
  state: TrunkRegistrationState;
  /** when the registration runs out (ms epoch), while registered */
  expires_at: number | null;
  /** the far end's last refusal, or why nothing came */
  last_error: string | null;
  /** registrations that went through since start */
  successes: number;
  failures: number;
}

export class TrunkRegistration {
  state: TrunkRegistrationState = 'registering';
  private expiresAt: number | undefined;
  private lastError: string | undefined;
  private successes = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  /** one Call-ID for every REGISTER of this binding, the CSeq going up (RFC 3261 10.2) */
  private readonly dialog: Dialog;

  constructor(
    private readonly trunk: TrunkSpec,
    private readonly d: {
      /** the server registered at: the trunk's first, as its peers' lookup finds it now */
      server: () => TrunkPeer | undefined;
      stack: SipStack;
      sipAddress: string;
      log: Logger;
      onChange?: (r: TrunkRegistration) => void;
    },
  ) {
    const p = trunk.peers[0]!;
    const user = trunk.auth?.user ?? trunk.number;
    const aor = `sip:${user}@${trunk.register!.domain}`;
    this.dialog = Dialog.outgoing({
      fromUri: aor,
      toUri: aor,
      target: `sip:${trunk.register!.domain === p.host && p.port !== undefined ? `${p.host}:${p.port}` : trunk.register!.domain}`,
      // (placed before each REGISTER: the lookup may have found another server since)
      peer: { transport: trunk.transport, address: p.host, port: p.port ?? 5060 },
      contact: `sip:${user}@${d.sipAddress}`,
      callIdHost: d.sipAddress.split(':')[0]!,
    });
  }

  start(): void {
    this.send(this.trunk.register!.expiresS, false);
  }

  /** Stops refreshing; `unregister` also tells the far end (Expires: 0), without waiting for its answer. */
  stop(unregister: boolean): void {
    clearTimeout(this.timer);
    if (unregister && this.state === 'registered')
      this.d.stack.request(this.request(0), this.dialog.peer, () => undefined);
    this.state = 'stopped';
  }

  view(): TrunkRegistrationView {
    return {
      trunk: this.trunk.number,
      state: this.state,
      expires_at: this.state === 'registered' ? (this.expiresAt ?? null) : null,
      last_error: this.lastError ?? null,
      successes: this.successes,
      failures: this.failures,
    };
  }

  private request(expires: number, auth?: { header: string; value: string }) {
    const req = this.dialog.request('REGISTER', undefined, [['expires', String(expires)]]);
    if (auth) req.headers.append(auth.header, auth.value);
    return req;
  }

  private send(expires: number, authed: boolean, auth?: { header: string; value: string }): void {
    if (this.state === 'stopped') return;
    const server = this.d.server();
    if (!server) return this.failed('no address found for the first peer');
    this.dialog.peer = server;
    const req = this.request(expires, auth);
    this.d.stack.request(req, server, (res) => {
      if (res.status < 200 || this.state === 'stopped') return;
      if ((res.status === 401 || res.status === 407) && !authed && this.trunk.auth) {
        const header = res.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
        try {
          const value = digestResponse({
            user: this.trunk.auth.user,
            password: this.trunk.auth.password,
            method: 'REGISTER',
            uri: req.uri,
            challenge: res.headers.getAll(header),
          });
          return this.send(expires, true, {
            header: res.status === 401 ? 'authorization' : 'proxy-authorization',
            value,
          });
        } catch (err) {
          return this.failed(`cannot answer the challenge: ${errorMessage(err)}`);
        }
      }
      if (res.status >= 300) return this.failed(`${res.status} ${res.reason}`);
      this.registered(res, expires);
    });
  }

  private registered(res: SipResponse, asked: number): void {
    // The lifetime granted: our contact's expires parameter, else the Expires header, else what we asked.
    let granted = asked;
    for (const c of res.headers.getAll('contact')) {
      for (const one of c.split(',')) {
        const na = parseNameAddr(one.trim());
        if (na?.uri.includes(this.d.sipAddress) && na.params.get('expires') !== undefined)
          granted = Number(na.params.get('expires'));
      }
    }
    if (granted === asked && res.headers.get('expires') !== undefined) granted = Number(res.headers.get('expires'));
    if (!Number.isFinite(granted) || granted <= 0) return this.failed(`the far end granted no lifetime (${granted})`);
    const was = this.state;
    this.state = 'registered';
    this.successes++;
    this.lastError = undefined;
    this.retryMs = FIRST_RETRY_MS;
    this.expiresAt = Date.now() + granted * 1000;
    if (was !== 'registered')
      this.d.log.info(
        { trunk: this.trunk.number, peer: `${this.dialog.peer.address}:${this.dialog.peer.port}`, expires_s: granted },
        'trunk registered',
      );
    this.d.onChange?.(this);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(this.trunk.register!.expiresS, false), Math.max(5, granted / 2) * 1000);
    this.timer.unref();
  }

  private failed(why: string): void {
    const was = this.state;
    this.failures++;
    this.lastError = why;
    // Still registered until the lifetime runs out; the next try comes sooner than it does.
    if (this.state !== 'registered' || (this.expiresAt ?? 0) <= Date.now()) this.state = 'failed';
    this.d.log.warn(
      {
        trunk: this.trunk.number,
        peer: `${this.dialog.peer.address}:${this.dialog.peer.port}`,
        err: why,
        retry_in_ms: this.retryMs,
      },
      'trunk registration failed',
    );
    if (was !== this.state) this.d.onChange?.(this);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(this.trunk.register!.expiresS, false), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }
}
