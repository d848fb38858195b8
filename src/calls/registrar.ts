// The SIP registrar of one call manager (RFC 3261 §10): Digest-authenticated
// REGISTER for the phones this node controls, expiry, and the binding
// published in the cluster-wide mapping table so every node knows where each
// phone is. A phone of another node is refused with the node that controls it.
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
  log: Logger;
}

export class Registrar {
  private readonly expiry = new Map<string, NodeJS.Timeout>();

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
    if (spec.node !== node) {
      const owner = model.nodes.get(spec.node)!;
      return void tx.respond(403, { reason: `Forbidden (phone ${number} is controlled by ${spec.node} at ${owner.sip})` });
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
    if (!Number.isFinite(asked) || asked < 0) return void tx.respond(400, { reason: 'Bad Request (malformed expires)' });
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
    const registration: Registration = {
      contact: contact.uri,
      transport: tx.peer.transport,
      address: tx.peer.address,
      port: tx.peer.port,
      expires_at: Date.now() + expires * 1000,
    };
    const before = proc.snapshot().registration;
    await proc.deliver({ op: 'register', registration, mrgl });
    await this.d.publish(number, registration);
    clearTimeout(this.expiry.get(number));
    this.expiry.set(
      number,
      setTimeout(() => void this.unregister(number, 'registration expired'), expires * 1000),
    );
    if (!before || before.contact !== registration.contact) {
      log.info({ phone: number, contact: registration.contact, expires, mrgl }, 'phone registered');
    }
    tx.respond(200, { headers: [['contact', `<${contact.uri}>;expires=${expires}`], ['date', new Date().toUTCString()]] });
  }

  async unregister(number: string, why: string): Promise<void> {
    clearTimeout(this.expiry.get(number));
    this.expiry.delete(number);
    const proc = this.d.phone(number);
    if (!proc?.snapshot().registration) return;
    await proc.deliver({ op: 'unregister' });
    await this.d.publish(number, undefined);
    this.d.log.info({ phone: number, why }, 'phone unregistered');
  }

  close(): void {
    for (const t of this.expiry.values()) clearTimeout(t);
    this.expiry.clear();
  }
}
