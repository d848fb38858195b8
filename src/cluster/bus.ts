// The only way call managers talk to each other. Payloads are bytes: every
// implementation serializes, so the in-memory bus behaves like NATS does.
import { TandemError } from '../errors.ts';

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** the node (and its boot) whose signature the message carries; absent on an unsigned (--insecure) bus */
  from?: { node: string; boot: string } | undefined;
  /** it came encrypted under the key the two nodes share (a sealed request); what carries secrets must be */
  sealed?: boolean | undefined;
  /** reports that the content contradicts its signer (counted and logged by the signing layer) */
  refuse?: ((why: string) => void) | undefined;
}

/**
 * Whether a message's claim (the node, and boot, it says it speaks for) is
 * its signer's. True on an unsigned bus, where nothing can be checked.
 */
export function claimedBy(m: BusMessage, node: string, boot?: string): boolean {
  if (!m.from) return true;
  if (m.from.node === node && (boot === undefined || m.from.boot === boot)) return true;
  m.refuse?.(`${m.from.node} claimed to speak for ${node}${boot ? `~${boot}` : ''}`);
  return false;
}

/** Answers a request; the returned bytes go back to the requester. */
export type RequestHandler = (msg: BusMessage) => Promise<Uint8Array> | Uint8Array;
export type EventHandler = (msg: BusMessage) => void;

export interface Subscription {
  unsubscribe(): void;
}

export class BusTimeoutError extends TandemError {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no answer on ${subject} within ${timeoutMs} ms`);
  }
}

/**
 * A confidential request to a node this one has not heard from (so it does
 * not know the key they share): refused rather than sent in clear.
 */
export class ConfidentialChannelError extends TandemError {
  constructor(
    /** the node (or the subject) the channel was to */
    readonly node: string,
    readonly waitedMs: number,
    why?: string,
  ) {
    super(
      why
        ? `no sealed channel to ${node}: ${why}`
        : `no sealed channel to node ${node}: nothing heard from it within ${waitedMs} ms`,
    );
  }
}

export interface RequestOptions {
  /** carries secrets (SDP with SRTP keys): a signed bus sends it sealed or not at all */
  confidential?: boolean;
}

/** Nobody serves the subject (NATS "no responders"); fails fast instead of waiting for the timeout. */
export class NoRespondersError extends TandemError {
  constructor(readonly subject: string) {
    super(`no responders on ${subject}`);
  }
}

export interface Bus {
  /** Request/reply with a deadline; rejects with BusTimeoutError or NoRespondersError. */
  request(subject: string, data: Uint8Array, timeoutMs: number, opts?: RequestOptions): Promise<Uint8Array>;
  /** Serves requests on a subject (one server per subject in Tandem). */
  serve(subject: string, handler: RequestHandler): Subscription;
  /** Fire-and-forget fan-out to every subscriber. */
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: EventHandler): Subscription;
  /** Resolves once everything sent so far (subscriptions included) has reached the bus. */
  flush(): Promise<void>;
  /**
   * Whether this client is connected to the bus now, as the client knows it
   * (a cut cable shows only once the client's own pings fail).
   */
  link(): BusLink;
  close(): Promise<void>;
}

/** The bus client's own view of its link to the bus (NATS: connected or reconnecting). */
export interface BusLink {
  connected: boolean;
  /** when `connected` last changed (ms since the epoch) */
  since: number;
}
