// Calls through SIP trunks. Out: a number that is no phone and no conference
// is matched against the dial plan's route patterns (the closest match among
// those the caller's partitions allow), translated (digits before the dot
// discarded, a prefix added) and sent through the pattern's trunks in order:
// the caller's half signals the setup to a node that carries the trunk, whose
// callee half INVITEs the trunk's peers in order. A peer that does not answer
// at all within the trunk's setup time, or answers 408 or 5xx, gives way to
// the next peer, then to the next trunk; a final answer of the callee (486,
// 404, 603...) ends the call. In: an INVITE from a trunk's peer address is a
// call from the trunk, to the phone its called number (DID) names.
//
// A trunk is a party like a phone for the rest of call control (TrunkSpec:
// its device pool's MRGL, codecs, DTMF, SRTP policy, lines), so MTPs,
// transcoders, music on hold and announcements serve its calls unchanged.
import type { PhoneSpec, RoutePattern, TrunkSpec } from '../config/model.ts';
import { digestResponse } from '../sip/digest.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { HalfCall } from './halfCall.ts';
import type { TrunkPeer } from './trunkPeers.ts';
import { errorMessage } from '../errors.ts';

/** Answers after which the next peer or trunk is tried: the far end could not take the call, the callee did not refuse it. */
const FAILOVER = new Set([408, 500, 502, 503, 504]);

export type RouteDecision =
  /** dial out: `number` as the trunks must see it, through `trunks` in order */
  | { kind: 'route'; pattern: RoutePattern; number: string; trunks: readonly string[] }
  /** a pattern matches, but none the caller's partitions allow */
  | { kind: 'not_allowed'; pattern: RoutePattern }
  | { kind: 'no_route' };

/** The closest of the patterns that match (the one matching the fewest numbers; the first listed on a tie). */
function closest(patterns: readonly RoutePattern[]): RoutePattern | undefined {
  return patterns.reduce<RoutePattern | undefined>(
    (best, p) => (best === undefined || p.size < best.size ? p : best),
    undefined,
  );
}

/** The dial plan's one rule: where a number a phone dialled leaves the cluster, if anywhere, and as what. */
export function routeOf(
  patterns: readonly RoutePattern[],
  caller: Pick<PhoneSpec, 'partitions'>,
  dialled: string,
): RouteDecision {
  const matching = patterns.filter((p) => p.matches(dialled));
  const allowed = closest(matching.filter((p) => p.partition === undefined || caller.partitions.has(p.partition)));
  if (!allowed) {
    const refused = closest(matching);
    return refused ? { kind: 'not_allowed', pattern: refused } : { kind: 'no_route' };
  }
  const digits = allowed.discardPredot ? dialled.slice(allowed.predot) : dialled;
  return { kind: 'route', pattern: allowed, number: `${allowed.prefix}${digits}`, trunks: allowed.route };
}

export type { TrunkRoute } from './halfCall.ts';

export class TrunkCalls {
  constructor(
    private readonly c: CallContext,
    /** what to do when the whole route failed */
    private readonly d: { failed(h: HalfCall, status: number, reason: string): Promise<void> },
  ) {}

  /** The phone a call in from `trunk` to `called` reaches: its DID, else a phone of that number. */
  inboundTarget(trunk: TrunkSpec, called: string): string | undefined {
    const mapped = trunk.inbound.get(called);
    if (mapped !== undefined) return mapped;
    return this.c.model.phones.has(called) ? called : undefined;
  }

  /** The node an outbound call leaves through: this one when it carries the trunk, else the first of its nodes that is up. */
  private nodeFor(trunk: TrunkSpec): string | undefined {
    if (trunk.nodes.includes(this.c.node)) return this.c.node;
    return trunk.nodes.find((n) => this.c.nodeUp(n));
  }

  /**
   * Tries the route's trunks from `h.trunkRoute.at` on: the first whose node
   * takes the setup carries the call (its answers come as signals). Returns
   * false when none did, after failing the caller's half.
   */
  async dial(h: HalfCall): Promise<boolean> {
    const route = h.as('caller').trunkRoute;
    if (!route) throw new Error(`call half ${h.key} has no route out to dial`);
    let last = { status: 503, reason: 'Service Unavailable (no trunk of the route could take the call)' };
    for (; route.at < route.trunks.length; route.at++) {
      const trunk = this.c.model.trunks.get(route.trunks[route.at]!);
      const node = trunk ? this.nodeFor(trunk) : undefined;
      if (!trunk || !node) continue;
      await this.dropInserts(h);
      h.peerNode = node;
      await route.plan(trunk);
      const reply = await this.c.peer.signal(h, {
        op: 'setup',
        call: h.call,
        caller: { number: h.phone.number, node: this.c.node },
        callee: route.number,
        trunk: trunk.number,
        offer: writeSdp(route.offer()).toString(),
      });
      if (reply.ok) {
        this.c.log.info(
          {
            call: h.call,
            caller: h.phone.number,
            trunk: trunk.number,
            via: node,
            number: route.number,
            attempt: route.at + 1,
          },
          'call leaving through a trunk',
        );
        return true;
      }
      last = { status: reply.status, reason: reply.reason };
      this.c.log.warn(
        { call: h.call, trunk: trunk.number, via: node, status: reply.status, reason: reply.reason },
        'trunk did not take the call',
      );
      if (!FAILOVER.has(reply.status)) break;
    }
    await this.d.failed(h, last.status, last.reason);
    return false;
  }

  /**
   * The trunk's far end refused the call with `status`: when that is the far
   * end's trouble rather than the callee's answer, the next trunk of the
   * route is tried. True when a new attempt was made (it reports itself).
   */
  async retry(h: HalfCall, status: number): Promise<boolean> {
    const route = h.caller?.trunkRoute;
    if (!route || !FAILOVER.has(status) || route.at + 1 >= route.trunks.length) return false;
    this.c.log.info(
      { call: h.call, trunk: route.trunks[route.at], status, next: route.trunks[route.at + 1] },
      'trunk failed the call: trying the next of the route',
    );
    route.at++;
    await this.dial(h);
    return true;
  }

  /** Whether a callee half's INVITE through a trunk should go to the trunk's next peer after this answer. */
  nextPeer(h: HalfCall, status: number): boolean {
    const trunk = h.phone as TrunkSpec;
    const setup = h.callee;
    const out = setup?.trunkOut;
    if (!out || setup.cancelWanted || h.state === 'ended' || !(status === 0 || FAILOVER.has(status))) return false;
    const next = this.firstPeer(trunk, out.servers, out.peer + 1);
    if (next === undefined) return false;
    out.peer = next;
    return true;
  }

  /** The first of the trunk's servers from index `from` on that its keep-alive does not show down. */
  firstPeer(trunk: TrunkSpec, servers: readonly TrunkPeer[], from = 0): number | undefined {
    for (let i = from; i < servers.length; i++) if (this.c.trunkPeerUp(trunk.number, servers[i]!.key)) return i;
    return undefined;
  }

  /**
   * The Authorization header answering the far end's challenge to an INVITE
   * through the trunk, once per attempt; undefined when the trunk has no
   * credentials, they were given already, or the challenge cannot be answered.
   */
  answerChallenge(h: HalfCall, req: SipRequest, challenge: SipResponse): string | undefined {
    const trunk = h.phone as TrunkSpec;
    const out = h.callee?.trunkOut;
    if (!trunk.auth || !out || out.authed === out.peer) return undefined;
    out.authed = out.peer;
    const header = challenge.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
    try {
      return digestResponse({
        user: trunk.auth.user,
        password: trunk.auth.password,
        method: req.method,
        uri: req.uri,
        challenge: challenge.headers.getAll(header),
      });
    } catch (err) {
      this.c.log.warn(
        { call: h.call, trunk: trunk.number, err: errorMessage(err) },
        "cannot answer the trunk's challenge",
      );
      return undefined;
    }
  }

  /** The devices planned for the previous trunk go: the next one may take other codecs, DTMF or SRTP. */
  private async dropInserts(h: HalfCall): Promise<void> {
    const gone = h.inserts.splice(0);
    await Promise.all(gone.map((i) => i.allocation.release()));
  }
}
