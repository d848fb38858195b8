// The device process of a phone: the only writer of its registration (where
// it is, until when, the MRGL it handed over) and of its line state (the
// calls it is in). Over the bus it answers status only; registration and
// line changes come from its own node's SIP layer through deliver().
import type { PhoneSpec } from '../config/model.ts';
import type { Codec } from '../config/schema.ts';
import { DeviceProcess, ProcessError } from '../cluster/deviceProcess.ts';
import { StatusRequest, type DeviceStatus, type RegistryEntry } from '../cluster/messages.ts';
import type { Pid } from '../cluster/pid.ts';

export type Registration = NonNullable<RegistryEntry['registration']>;

export interface PhoneState {
  registration: Registration | undefined;
  /** an MRGL the phone named in X-Media-Resource-Group-List on REGISTER */
  mrgl: string | undefined;
  /** the codecs its SDP showed last (an offer: all it can do) */
  codecs: Codec[] | undefined;
  calls: string[];
}

export type PhoneMessage =
  | { op: 'status' }
  | { op: 'register'; registration: Registration; mrgl: string | undefined }
  | { op: 'unregister' }
  /**
   * takes a line for a call: an incoming call finds the phone busy at its
   * busy trigger, an outgoing one (a consultation call) at its maximum
   */
  | { op: 'seize'; call: string; incoming: boolean }
  /** the call on a line got a new identity (transferred, joined, dropped back from a conference) */
  | { op: 'swap'; from: string; to: string }
  | { op: 'free'; call: string }
  /** codecs seen in the phone's SDP; an answer's (a subset) only while nothing better is known */
  /**
   * what the phone's SDP showed: an offer (all it can do) replaces what was
   * learnt; an answer only when nothing learnt includes what it answered;
   * `refused` (it answered 488/606 to codecs learnt from it) forgets them
   */
  | { op: 'codecs'; codecs: Codec[]; from: 'offer' | 'answer' | 'refused' }
  | { op: 'state' }
  /** tandem apply changed the phone's entry (password, pool, codecs, lines) */
  | { op: 'reconfigure'; spec: PhoneSpec };

export type PhoneReply = DeviceStatus | PhoneState | { seized: boolean };

export class PhoneProcess extends DeviceProcess<PhoneMessage, PhoneReply> {
  private state: PhoneState = { registration: undefined, mrgl: undefined, codecs: undefined, calls: [] };
  /** the contact (device) the learnt codecs came from */
  private codecsOf: string | undefined;

  constructor(
    pid: Pid,
    private spec_: PhoneSpec,
  ) {
    super(pid, spec_.number);
  }

  get spec(): PhoneSpec {
    return this.spec_;
  }

  accept(body: unknown): PhoneMessage {
    const r = StatusRequest.safeParse(body);
    if (!r.success) throw new ProcessError('bad_request', 'a phone process answers only {"op":"status"} over the bus');
    return r.data;
  }

  /** The current state (a copy; changes go through the mailbox). */
  snapshot(): PhoneState {
    return { ...this.state, calls: [...this.state.calls] };
  }

  protected handle(msg: PhoneMessage): PhoneReply {
    switch (msg.op) {
      case 'codecs': {
        const known = this.state.codecs;
        if (msg.from === 'refused') this.state = { ...this.state, codecs: undefined };
        else if (msg.codecs.length && (msg.from === 'offer' || !known || !msg.codecs.some((c) => known.includes(c)))) {
          this.state = { ...this.state, codecs: [...msg.codecs] };
          this.codecsOf = this.state.registration?.contact;
        }
        return this.snapshot();
      }
      case 'register': {
        // Another device (or instance) registering as this number: what was learnt of the last one goes.
        const other = this.state.codecs !== undefined && this.codecsOf !== msg.registration.contact;
        this.state = {
          ...this.state,
          registration: msg.registration,
          mrgl: msg.mrgl,
          ...(other ? { codecs: undefined } : {}),
        };
        return this.snapshot();
      }
      case 'unregister':
        this.state = { ...this.state, registration: undefined, mrgl: undefined };
        return this.snapshot();
      case 'seize':
        if (this.state.calls.includes(msg.call)) return { seized: true };
        if (this.state.calls.length >= (msg.incoming ? this.spec.busyTrigger : this.spec.maxCalls))
          return { seized: false };
        this.state.calls.push(msg.call);
        return { seized: true };
      case 'swap':
        this.state.calls = [...this.state.calls.filter((c) => c !== msg.from && c !== msg.to), msg.to];
        return this.snapshot();
      case 'free':
        this.state.calls = this.state.calls.filter((c) => c !== msg.call);
        return this.snapshot();
      case 'state':
        return this.snapshot();
      case 'reconfigure':
        this.spec_ = msg.spec;
        return this.snapshot();
      case 'status':
        return {
          name: this.name,
          kind: 'phone',
          pid: this.pid,
          capacity: this.spec.maxCalls,
          active: this.state.calls.length,
          available: Math.max(0, this.spec.maxCalls - this.state.calls.length),
          out_of_resources: 0,
          allocations: [],
        };
    }
  }
}
