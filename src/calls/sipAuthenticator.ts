// The door of a node's SIP service: runs before any transaction state is
// kept. Requests that need credentials (REGISTER, a new INVITE) are
// challenged statelessly until their Digest answer is right; OPTIONS is
// answered statelessly; an in-dialog request for no dialog of ours gets a
// stateless 481. So a flood of strangers' requests costs one small answer
// each and no memory, and every number, known or not, gets the same
// challenge (no enumeration): what a phone is, and where it lives, is said
// only after it authenticated.
import type { Logger } from 'pino';
import type { ClusterModel } from '../config/model.ts';
import type { DigestAuth } from '../sip/digest.ts';
import { parseNameAddr, parseUri } from '../sip/grammar.ts';
import type { SipRequest } from '../sip/message.ts';
import type { GateVerdict } from '../sip/transactions.ts';
import type { SipPeer } from '../sip/transport.ts';
import type { AuthThrottle } from './authThrottle.ts';
import { OPTIONS_ANSWER, doorRule, notTaken } from './sipMethods.ts';

export interface SipAuthenticatorDeps {
  model: ClusterModel;
  digest: DigestAuth;
  throttle: AuthThrottle;
  /** the source a phone is registered from, if this node has it registered */
  registeredFrom(number: string): { address: string; port: number; transport: string } | undefined;
  /** whether the source is a peer of a trunk this node carries (its calls come in without credentials, by address) */
  fromTrunk(from: SipPeer): boolean;
  /** whether an in-dialog request belongs to a dialog of this node */
  knowsDialog(req: SipRequest): boolean;
  /** true while the node is overloaded: new registrations and calls get 503 + Retry-After */
  overloaded(): boolean;
  /**
   * Whether a new call may start now, given how long its INVITE waited in the
   * node's queue: undefined if so, else why not (the refusal's reason, counted).
   */
  admitSetup(waitedMs: number): SetupRefusal | undefined;
  log: Logger;
}

/** why a new call was refused at the door (admission control) */
export type SetupRefusal = 'queue_delay' | 'setups_over_limit';

const userOf = (header: string | undefined) => parseUri(parseNameAddr(header ?? '')?.uri ?? '')?.user;
const hasToTag = (req: SipRequest) => /;\s*tag\s*=/i.test(req.headers.get('to') ?? '');

export class SipAuthenticator {
  constructor(private readonly d: SipAuthenticatorDeps) {}

  /** new work refused because the node was overloaded */
  shed = 0;
  /** new INVITEs refused by admission control, by reason */
  readonly setupsRefused: Record<SetupRefusal, number> = { queue_delay: 0, setups_over_limit: 0 };
  /** new INVITEs that reached admission control (offered), and those it let through (admitted) */
  readonly setups = { offered: 0, admitted: 0 };

  gate(req: SipRequest, from: SipPeer, waitedMs = 0): GateVerdict {
    const fresh = req.method === 'REGISTER' || (req.method === 'INVITE' && !hasToTag(req));
    // A registered phone refreshing from its own address is kept: dropping registrations would only add work later.
    const refresh = req.method === 'REGISTER' && this.isBoundPeer(userOf(req.headers.get('to')), from);
    if (fresh && !refresh && this.d.overloaded()) {
      // Calls in progress go on; new work waits, so the node answers its liveness probes on time.
      this.shed++;
      return { respond: 503, reason: 'Service Unavailable (overloaded)', headers: [['retry-after', '5']] };
    }
    // Admission: a new call that waited too long for the node, or beyond the setups it works on at once, is refused
    // at once, statelessly (the caller retries later or elsewhere), instead of being taken on and finished late or
    // not at all. What is in progress (ACK, BYE, answers) is never refused here: those calls finish.
    const newCall = req.method === 'INVITE' && fresh;
    const refusal = newCall ? this.d.admitSetup(waitedMs) : undefined;
    if (newCall) this.setups.offered++;
    if (newCall && !refusal) this.setups.admitted++;
    if (refusal) {
      this.setupsRefused[refusal]++;
      const why = refusal === 'queue_delay' ? 'overloaded' : 'too many calls being set up';
      return { respond: 503, reason: `Service Unavailable (${why})`, headers: [['retry-after', '1']] };
    }
    switch (doorRule(req.method)) {
      case 'register':
        return this.authenticate(req, from, userOf(req.headers.get('to')), 401);
      case 'invite':
        if (hasToTag(req)) return this.inDialog(req);
        if (!this.d.model.config.sip.authenticate_invites) return { pass: true };
        // A trunk's far end is known by its servers' addresses, on the trunk's transport (over UDP the port
        // too, so the address is where the answers go; over TCP and TLS the connection is the far end's).
        if (this.d.fromTrunk(from)) return { pass: true };
        return this.authenticate(req, from, userOf(req.headers.get('from')), 407);
      case 'options':
        if (hasToTag(req)) return this.inDialog(req);
        return { respond: 200, headers: OPTIONS_ANSWER };
      case 'in_dialog':
        return this.inDialog(req);
      case undefined: {
        // Nothing else is taken; answered without keeping a transaction.
        const { status, headers } = notTaken(req.method);
        return { respond: status, headers };
      }
    }
  }

  private inDialog(req: SipRequest): GateVerdict {
    return this.d.knowsDialog(req) ? { pass: true } : { respond: 481 };
  }

  /** The request comes from the registered phone itself: the transport address of its binding, not just its NAT address. */
  private isBoundPeer(user: string | undefined, from: SipPeer): boolean {
    const b = user !== undefined ? this.d.registeredFrom(user) : undefined;
    return b !== undefined && b.address === from.address && b.port === from.port && b.transport === from.transport;
  }

  /**
   * `user`: who the request is for (REGISTER: the To user) or from (INVITE:
   * the From user); the credentials must name the same user.
   */
  private authenticate(req: SipRequest, from: SipPeer, user: string | undefined, status: 401 | 407): GateVerdict {
    const { digest, throttle, model } = this.d;
    const header = req.headers.get(status === 401 ? 'authorization' : 'proxy-authorization');
    const challenge = (stale: boolean): GateVerdict => ({
      respond: status,
      headers: digest
        .challenges(from.address, stale)
        .map((c) => [status === 401 ? 'www-authenticate' : 'proxy-authenticate', c] as [string, string]),
    });
    if (!header) return challenge(false);
    const t = throttle.check(user, from.address, this.isBoundPeer(user, from));
    if (!t.allowed) {
      return {
        respond: 403,
        reason: 'Forbidden (too many failed authentication attempts)',
        headers: [['retry-after', String(t.retryAfterS)]],
      };
    }
    const r = digest.verify({
      header,
      method: req.method,
      requestUri: req.uri,
      source: from.address,
      // Only the user the request is about; any other username is as wrong as a wrong password.
      passwordOf: (u) => (u === user ? model.phones.get(u)?.password : undefined),
    });
    if (r.ok) {
      throttle.succeeded(r.user, from.address);
      return { pass: true, user: r.user };
    }
    // Only a tested password counts as a failure: a stale or foreign nonce says nothing about it.
    if (r.reason === 'wrong') throttle.failed(r.user ?? user, from.address, r.detail);
    else if (r.reason !== 'stale') this.d.log.debug({ peer: from, reason: r.detail }, 'SIP credentials refused');
    return challenge(r.stale);
  }
}
