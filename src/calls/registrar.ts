// The SIP registrar of one call manager (RFC 3261 §10): Digest-authenticated
// REGISTER for the phones this node controls, expiry, and the binding
// published in the cluster-wide mapping table so every node knows where each
// phone is. A phone of another node is refused with the node that controls it.
// A node of the phone's Call Manager Group that does not control it now (an
// earlier node of the group is alive) keeps its binding on standby: answered,
// not published, and promoted (published) when the earlier nodes are gone.
import type { Logger } from 'pino';
import type { ClusterModel } from '../config/model.ts';
import type { PhoneProcess, Registration } from '../devices/phoneProcess.ts';
import { parseNameAddr, parseUri } from '../sip/grammar.ts';
import type { ServerTransaction } from '../sip/transactions.ts';

export const MRGL_HEADER = 'x-media-resource-group-list';

export interface RegistrarDeps {
  model: ClusterModel;
  node: string;
  phone(number: string): PhoneProcess | undefined;
  /** writes the phone's registration (or its end) into the mapping table */
  publish(number: string, registration: Registration | undefined): Promise<void>;
  /** whether this node controls the phone now (callManagerGroup.controllerOf) */
  controls(number: string): boolean;
  log: Logger;
}

export class Registrar {
  private readonly expiry = new Map<string, NodeJS.Timeout>();
  /** phones whose binding this node has published (it controls them); the other bindings here are on standby */
  private readonly active = new Set<string>();
  /** the UDP transport address of each bound phone, and how many phones are bound there (the legit, first under floods) */
  private readonly boundAt = new Map<string, string>();
  private readonly peers = new Map<string, number>();

  constructor(private readonly d: RegistrarDeps) {}

  async handle(tx: ServerTransaction): Promise<void> {
    const req = tx.request;
    const { model, node, log } = this.d;
    const to = parseNameAddr(req.headers.get('to')!);
    const number = to && parseUri(to.uri)?.user;
    if (!number) return void tx.respond(400, { reason: 'Bad Request (To has no user part)' });
    // The gate authenticated the To user before this; only now may we say where the phone lives.
    if (tx.authUser !== number) return void tx.respond(403, { reason: 'Forbidden (not authenticated)' });
    const spec = model.phones.get(number);
    if (!spec) return void tx.respond(404);
    if (!spec.callManagers.includes(node)) {
      const owner = model.nodes.get(spec.node)!;
      return void tx.respond(403, {
        reason: `Forbidden (phone ${number} is controlled by ${spec.node} at ${owner.sip})`,
      });
    }
    const proc = this.d.phone(number)!;
    const contactHeader = req.headers.get('contact');
    const contact = contactHeader ? parseNameAddr(contactHeader) : undefined;
    if (!contactHeader) {
      // A query: the current binding.
      const st = proc.snapshot();
      return void tx.respond(200, { headers: st.registration ? [['contact', `<${st.registration.contact}>`]] : [] });
    }
    if (!contact) return void tx.respond(400, { reason: 'Bad Request (malformed Contact)' });
    const hdrExpires = req.headers.get('expires');
    const asked = Number(contact.params.get('expires') ?? hdrExpires ?? model.config.sip.max_expires);
    if (!Number.isFinite(asked) || asked < 0)
      return void tx.respond(400, { reason: 'Bad Request (malformed expires)' });
    if (asked === 0 || contact.uri === '*') {
      await this.unregister(number, 'phone unregistered');
      return void tx.respond(200);
    }
    if (asked < model.config.sip.min_expires) {
      return void tx.respond(423, { headers: [['min-expires', String(model.config.sip.min_expires)]] });
    }
    const expires = Math.min(asked, model.config.sip.max_expires);
    let mrgl = req.headers.get(MRGL_HEADER)?.trim() || undefined;
    if (mrgl && !model.mrgls.has(mrgl)) {
      log.warn({ phone: number, mrgl }, `ignoring unknown MRGL in ${MRGL_HEADER}`);
      mrgl = undefined;
    }
    const before = proc.snapshot().registration;
    const now = Date.now();
    // (printable only, and short: it is shown to operators and travels in the mapping table)
    const userAgent = req.headers
      .get('user-agent')
      ?.replace(/[^\x20-\x7e]/g, '')
      .slice(0, 128);
    const registration: Registration = {
      contact: contact.uri,
      transport: tx.peer.transport,
      address: tx.peer.address,
      port: tx.peer.port,
      expires_at: now + expires * 1000,
      since: before && before.contact === contact.uri ? (before.since ?? now) : now,
      ...(userAgent ? { user_agent: userAgent } : {}),
    };
    await this.bind(number, registration, mrgl);
    if (!before || before.contact !== registration.contact) {
      log.info(
        { phone: number, contact: registration.contact, expires, mrgl, standby: !this.active.has(number) },
        'phone registered',
      );
    }
    tx.respond(200, {
      headers: [
        ['contact', `<${contact.uri}>;expires=${expires}`],
        ['date', new Date().toUTCString()],
      ],
    });
  }

  /**
   * Keeps a binding (from a REGISTER, or restored from the mapping table when
   * this node restarted) until it expires; published when this node controls
   * the phone, else on standby.
   */
  async bind(number: string, registration: Registration, mrgl: string | undefined): Promise<void> {
    const proc = this.d.phone(number);
    if (!proc) return;
    await proc.deliver({ op: 'register', registration, mrgl });
    this.forgetPeer(number);
    if (registration.transport === 'UDP') {
      const key = `${registration.address}|${registration.port}`;
      this.boundAt.set(number, key);
      this.peers.set(key, (this.peers.get(key) ?? 0) + 1);
    }
    clearTimeout(this.expiry.get(number));
    const ttl = Math.max(0, registration.expires_at - Date.now());
    this.expiry.set(
      number,
      setTimeout(() => void this.unregister(number, 'registration expired'), ttl),
    );
    if (this.d.controls(number)) {
      this.active.add(number);
      await this.d.publish(number, registration);
    } else this.active.delete(number);
  }

  /** Whether a phone is bound (over UDP) from this transport address. */
  knowsPeer(address: string, port: number): boolean {
    return this.peers.has(`${address}|${port}`);
  }

  private forgetPeer(number: string): void {
    const key = this.boundAt.get(number);
    if (key === undefined) return;
    this.boundAt.delete(number);
    const n = (this.peers.get(key) ?? 1) - 1;
    if (n <= 0) this.peers.delete(key);
    else this.peers.set(key, n);
  }

  /** Whether this node has published the phone's binding (it is where the phone is reached). */
  isActive(number: string): boolean {
    return this.active.has(number);
  }

  /**
   * The cluster changed (a node of some group went down or came back):
   * standby bindings of phones this node now controls are published.
   */
  async reevaluate(): Promise<void> {
    for (const number of this.expiry.keys()) {
      const reg = this.d.phone(number)?.snapshot().registration;
      if (!reg || this.active.has(number) || !this.d.controls(number)) continue;
      this.active.add(number);
      this.d.log.warn(
        { phone: number },
        'the earlier nodes of its Call Manager Group are down: this node takes the phone over',
      );
      await this.d.publish(number, reg);
    }
  }

  /**
   * Another node of the phone's group published it. A later node of the
   * group that took it while this one, earlier and alive, holds a live
   * binding (it had not heard of this node yet, at its start or across a
   * silence) is overruled: this node publishes the phone again, and the
   * later node yields when it sees that. Otherwise this node yields: its
   * binding stays on standby.
   */
  async takenElsewhere(number: string, by: string): Promise<void> {
    const group = this.d.model.phones.get(number)?.callManagers ?? [];
    const reg = this.d.phone(number)?.snapshot().registration;
    const earlier = group.indexOf(this.d.node) < group.indexOf(by);
    if (reg && this.expiry.has(number) && earlier && this.d.controls(number)) {
      this.active.add(number);
      this.d.log.warn(
        { phone: number, by },
        'a later node of its Call Manager Group took the phone while this one is up: taken back',
      );
      await this.d.publish(number, reg);
      return;
    }
    if (this.active.delete(number))
      this.d.log.info({ phone: number, by }, 'phone registered at another node of its group: on standby here');
  }

  async unregister(number: string, why: string): Promise<void> {
    clearTimeout(this.expiry.get(number));
    this.expiry.delete(number);
    this.forgetPeer(number);
    const proc = this.d.phone(number);
    if (!proc?.snapshot().registration) return;
    await proc.deliver({ op: 'unregister' });
    // A standby binding was never published: another node may hold the phone's entry.
    if (this.active.delete(number)) await this.d.publish(number, undefined);
    this.d.log.info({ phone: number, why }, 'phone unregistered');
  }

  close(): void {
    for (const t of this.expiry.values()) clearTimeout(t);
    this.expiry.clear();
    this.boundAt.clear();
    this.peers.clear();
  }
}
