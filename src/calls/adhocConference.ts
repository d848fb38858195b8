// Ad hoc conference (CUCM's Conference/Join keys, for phones without them):
// a phone with calls in progress (held or not) dials the ad hoc conference
// number (sip.adhoc_conference_number). Its node allocates a bridge from that
// phone's MRGL and answers the new call from it; the far party of each of
// the phone's other calls is moved onto the same room (their halves, on
// their own nodes, take a seat on that bridge and re-INVITE their phones),
// and the phone's own legs of those calls end. Dialled again by the phone
// that started a conference (the conference held, a new call made), the new
// calls join that conference. The node of the initiator
// owns the conference: participants' halves report when they leave, and
// when only two remain they are paired into a plain two-party call again
// and the bridge seats are released. The owner sends the roll to every
// participant's node whenever it changes; if the owner's node dies, the
// participants' nodes agree without a word on the next owner (the first of
// their names), which takes the conference over from its copy of the roll.
import { randomUUID } from 'node:crypto';
import type { SessionDescription } from 'sdp-transform';
import { answerDirection, audioOf, withDirection, writeSdp } from '../sip/sdp.ts';
import type { CallContext } from './callContext.ts';
import type { CallSetup } from './callSetup.ts';
import { otherRole, type HalfCall, type Role } from './halfCall.ts';
import { NoResource } from './mediaPath.ts';
import { bridgeCodec } from './mediaPlan.ts';
import type { CallSignal, CallSignalReply } from './signals.ts';

interface Participant {
  number: string;
  node: string;
  call: string;
  role: Role;
}

interface Conference {
  room: string;
  initiator: string;
  bridge: string;
  /** by `${call}/${role}` */
  participants: Map<string, Participant>;
}

type RollSignal = Extract<CallSignal, { op: 'conference_roll' }>;

export class AdhocConference {
  /** the conferences this node owns (its phones started them, or it took them over), by room */
  private readonly owned = new Map<string, Conference>();
  /** copies of the rolls of conferences other nodes own that this node's phones are in, by room */
  private readonly replicas = new Map<string, { owner: string; conf: Conference }>();

  constructor(
    private readonly c: CallContext,
    private readonly setup: CallSetup,
  ) {}

  /** The rooms whose roll this node keeps a copy of (conferences other nodes own, with its phones in them). */
  get copies(): string[] {
    return [...this.replicas.keys()];
  }

  /** How many ad hoc conferences this node owns (admin view). */
  get count(): number {
    return this.owned.size;
  }

  /** Our phone dialled the ad hoc conference number: it and the parties of its other calls meet on one bridge. */
  async start(half: HalfCall, offer: SessionDescription): Promise<void> {
    const { table, media, teardown, log } = this.c;
    const mine = table.all().filter((x) => x !== half && x.phone.number === half.phone.number && x.state === 'up');
    const others = mine.filter((x) => x.peerNode && !x.conference);
    // Dialled again from a conference it started (held meanwhile): the new calls join that conference.
    const current = mine.find(
      (x) => x.conference && this.owned.get(x.conference.room)?.initiator === half.phone.number,
    );
    const existing = current?.conference ? this.owned.get(current.conference.room) : undefined;
    if (!others.length) return teardown.fail(half, 488, 'Not Acceptable Here (no call in progress to conference)');
    const room = existing?.room ?? `adhoc-${half.call}`;
    // Kept for the day the conference is down to two and this phone is paired again.
    half.lastPhoneSdp = offer;
    const codec = bridgeCodec(audioOf(offer));
    // NoResource goes up to CallSetup: the caller hears the no_resource prompt.
    const ins = (await media.insert(half, 'conference_bridge', `ad hoc conference of ${half.phone.number}`, {
      ...(existing ? { preferred: { device: existing.bridge, group: `(ad hoc conference ${room})` } } : {}),
      requirement: { codecs: [codec] },
      codecs: [codec, undefined],
      room,
    }))!;
    if (existing && ins.allocation.resource !== existing.bridge) {
      await ins.allocation.release();
      half.inserts = [];
      return teardown.fail(half, 503, `Service Unavailable (no seat left on ${existing.bridge})`);
    }
    const bridge = ins.allocation.resource;
    half.joinRoom(room, this.c.node, half.far);
    half.answer();
    half
      .as('caller')
      .invite?.respond(
        200,
        this.c.phone.answerOpts(half, half.own(ins.phoneSide, [codec], answerDirection(audioOf(offer).direction))),
      );
    const conf: Conference = existing ?? { room, initiator: half.phone.number, bridge, participants: new Map() };
    conf.participants.set(half.key, { number: half.phone.number, node: this.c.node, call: half.call, role: half.role });
    this.owned.set(room, conf);
    log.info(
      { room, initiator: half.phone.number, bridge, calls: others.map((x) => x.far), extended: existing !== undefined },
      'ad hoc conference',
    );
    for (const x of others) {
      const party: Participant = { number: x.far, node: x.peerNode!, call: x.call, role: otherRole(x.role) };
      const reply = await this.c.peer.signal(x, {
        op: 'conference',
        call: x.call,
        room,
        bridge,
        owner: this.c.node,
        number: half.far,
      });
      if (!reply.ok) {
        log.warn(
          { room, party: x.far, status: reply.status, reason: reply.reason },
          'a party could not join the ad hoc conference; its call stays as it was',
        );
        continue;
      }
      conf.participants.set(`${party.call}/${party.role}`, party);
      // Our phone's leg of that call is replaced by its leg into the conference.
      await teardown.hangup(x, `${x.far} joined ad hoc conference ${room}`, true);
    }
    // The phone's earlier seat in the room is replaced by this one (its leaving is counted when reported).
    if (current) await teardown.hangup(current, `${half.phone.number} rejoined ad hoc conference ${room}`, true);
    if (conf.participants.size < 3) await this.shrink(conf);
    else await this.sendRoll(conf);
  }

  /** A copy of the roll of a conference another node owns, that some of this node's phones are in. */
  roll(s: RollSignal): CallSignalReply {
    // Only the owner our own participants report to may send it.
    const ours = this.c.table.all().some((h) => h.conference?.room === s.room && h.conference.owner === s.owner);
    if (!ours)
      return { ok: false, status: 403, reason: `no participant of ${s.room} here takes orders from ${s.owner}` };
    const participants = new Map(s.participants.map((p) => [`${p.call}/${p.role}`, p]));
    this.replicas.set(s.room, {
      owner: s.owner,
      conf: { room: s.room, initiator: s.initiator, bridge: s.bridge, participants },
    });
    this.prune();
    return { ok: true };
  }

  /** Copies of rolls of conferences none of this node's phones is in any more go. */
  private prune(): void {
    const rooms = new Set(this.c.table.all().map((h) => h.conference?.room));
    for (const room of this.replicas.keys()) if (!rooms.has(room)) this.replicas.delete(room);
  }

  /**
   * A node died: conferences it owned go on without it. Every participant's
   * node picks the same next owner (the first name among the nodes still in
   * the roll); that node takes the conference over, the others report to it.
   */
  async ownerLost(dead: string): Promise<void> {
    this.prune();
    for (const [room, r] of [...this.replicas]) {
      if (r.owner !== dead) continue;
      for (const [key, p] of r.conf.participants) if (p.node === dead) r.conf.participants.delete(key);
      const next = [...new Set([...r.conf.participants.values()].map((p) => p.node))].sort()[0];
      for (const h of this.c.table.all()) if (h.conference?.room === room && next) h.roomTakenOverBy(next);
      if (next !== this.c.node) {
        if (next) r.owner = next;
        else this.replicas.delete(room);
        continue;
      }
      this.replicas.delete(room);
      this.owned.set(room, r.conf);
      this.c.log.warn(
        { room, dead, remaining: r.conf.participants.size },
        'the owner of an ad hoc conference died: this node takes it over',
      );
      if (r.conf.participants.size < 3) await this.shrink(r.conf);
      else await this.sendRoll(r.conf);
    }
  }

  /**
   * An order from this node as the conference's owner. Just after a takeover
   * a participant's node may not yet have seen the old owner go down (each
   * node judges liveness itself) and refuses (403): asked again until it has.
   */
  private async asOwner(node: string, msg: CallSignal): Promise<CallSignalReply> {
    const deadline = Date.now() + 2 * this.c.model.config.cluster.node_down_after_ms + 1000;
    for (;;) {
      const reply = await this.c.peer.send(node, msg);
      if (reply.ok || reply.status !== 403 || Date.now() > deadline) return reply;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The roll to every other participant's node (each keeps it in case this node dies). */
  private async sendRoll(conf: Conference): Promise<void> {
    const participants = [...conf.participants.values()];
    const nodes = new Set(participants.map((p) => p.node).filter((n) => n !== this.c.node));
    const msg = {
      op: 'conference_roll' as const,
      room: conf.room,
      owner: this.c.node,
      initiator: conf.initiator,
      bridge: conf.bridge,
      participants,
    };
    await Promise.all([...nodes].map((n) => this.asOwner(n, msg)));
  }

  /** The other half's phone started a conference: our phone takes a seat in its room, on its bridge. */
  async join(h: HalfCall, s: Extract<CallSignal, { op: 'conference' }>): Promise<CallSignalReply> {
    const { media, log } = this.c;
    if (h.state !== 'up' || !h.phoneAudio)
      return { ok: false, status: 488, reason: 'Not Acceptable Here (the call is not established)' };
    const codec = bridgeCodec(h.phoneAudio);
    const oldInserts = h.inserts;
    const old = h.allocations();
    h.inserts = [];
    let seat: Awaited<ReturnType<typeof media.insert>>;
    try {
      seat = await media.insert(h, 'conference_bridge', `ad hoc conference ${s.room}`, {
        preferred: { device: s.bridge, group: `(ad hoc conference ${s.room})` },
        requirement: { codecs: [codec] },
        codecs: [codec, undefined],
        room: s.room,
      });
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
    }
    if (!seat || seat.allocation.resource !== s.bridge) {
      // Another bridge would be another room: the call stays as it was.
      if (seat) await seat.allocation.release();
      h.inserts = oldInserts;
      return { ok: false, status: 503, reason: `Service Unavailable (no seat on ${s.bridge})` };
    }
    await Promise.all(old.map((a) => a.release()));
    h.joinRoom(s.room, s.owner, s.number);
    log.info({ call: h.call, phone: h.phone.number, room: s.room, bridge: s.bridge }, 'moved to an ad hoc conference');
    void this.c.phone.reinvite(h, h.own(seat.phoneSide, [codec], 'sendrecv'));
    return { ok: true };
  }

  /** A participant's half ended (reported to the owner, from any node). */
  async left(s: Extract<CallSignal, { op: 'conference_left' }>): Promise<CallSignalReply> {
    const conf = this.owned.get(s.room);
    if (!conf) return { ok: false, status: 481, reason: 'no such conference' };
    conf.participants.delete(`${s.call}/${s.role}`);
    this.c.log.info(
      { room: s.room, left: `${s.call}/${s.role}`, remaining: conf.participants.size },
      'left the ad hoc conference',
    );
    if (conf.participants.size < 3) await this.shrink(conf);
    else await this.sendRoll(conf);
    return { ok: true };
  }

  /**
   * This participant is one of the last two: it leaves the bridge and
   * becomes a party of a two-party call with the other. The caller of the
   * new call offers its phone's media to the callee and moves its own phone
   * when the answer comes (InCall.reanswered).
   */
  async pair(h: HalfCall, s: Extract<CallSignal, { op: 'pair' }>): Promise<CallSignalReply> {
    const { media, peer, model } = this.c;
    const far = model.phones.get(s.far);
    if (!far || !h.conference) return { ok: false, status: 404, reason: `Not Found (${s.far})` };
    await Promise.all(h.inserts.map((i) => i.allocation.release()));
    h.inserts = [];
    h.leaveRoom();
    await this.c.phone.rekey(h, { call: s.new_call, role: s.role, far: s.far, peerNode: s.far_node });
    this.c.log.info(
      { call: h.call, phone: h.phone.number, far: s.far, role: s.role },
      'ad hoc conference down to two: back to a two-party call',
    );
    if (s.role === 'callee' || !h.lastPhoneSdp) return { ok: true };
    try {
      if (h.phoneAudio) await this.setup.planCallerLeg(h, h.phoneAudio, far);
    } catch (err) {
      if (!(err instanceof NoResource)) throw err;
      void this.c.teardown.hangup(h, `back to two parties: ${err.message}`, false);
      return { ok: true };
    }
    h.selfReoffer = 'phone';
    void peer.signal(h, {
      op: 'reoffer',
      call: h.call,
      sdp: writeSdp(media.farView(h, withDirection(h.lastPhoneSdp, 'sendrecv'))).toString(),
    });
    return { ok: true };
  }

  /** Two left: pair them into a call; one left: end its call; none: forget the conference. */
  private async shrink(conf: Conference): Promise<void> {
    const rest = [...conf.participants.values()];
    if (rest.length >= 3) return;
    this.owned.delete(conf.room);
    const pair = (p: Participant, new_call: string, role: Role, far: Participant) =>
      this.asOwner(p.node, {
        op: 'pair',
        call: p.call,
        to: p.role,
        new_call,
        role,
        far: far.number,
        far_node: far.node,
      });
    if (rest.length === 2) {
      const [a, b] = rest as [Participant, Participant];
      const call = randomUUID();
      // The callee first: it must carry the new identity before the caller's offer reaches it.
      await pair(b, call, 'callee', a);
      await pair(a, call, 'caller', b);
    } else if (rest.length === 1) {
      const p = rest[0]!;
      await this.asOwner(p.node, {
        op: 'hangup',
        call: p.call,
        to: p.role,
        reason: `ad hoc conference ${conf.room} ended`,
      });
    }
  }
}
