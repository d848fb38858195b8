import { Mailbox } from './mailbox.ts';
import type { Pid } from './pid.ts';
import { TandemError } from '../errors.ts';

/** Raised by a process for a message it understood but refuses; goes back to the sender as an error reply. */
export class ProcessError extends TandemError {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The signed sender of a request (absent on an unsigned bus). */
export interface Sender {
  node: string;
  boot: string;
  /** the request came sealed (encrypted between the two nodes) */
  sealed?: boolean;
}

/** What a post office routes bus messages to. */
export interface HostedProcess {
  readonly pid: Pid;
  /**
   * Validates an untrusted body and handles it in turn; rejects with
   * ProcessError('bad_request'), or ProcessError('forbidden') when the
   * sender (the node whose signature the request carries) may not ask it.
   */
  receive(body: unknown, sender?: Sender): Promise<unknown>;
}

/**
 * The owner of one device. All access to the device's state goes through
 * deliver(), which queues the message in the process mailbox.
 */
export abstract class DeviceProcess<M, R> implements HostedProcess {
  private readonly mailbox = new Mailbox<M, R>((m) => this.handle(m));

  constructor(
    readonly pid: Pid,
    readonly name: string,
  ) {}

  deliver(msg: M): Promise<R> {
    return this.mailbox.post(msg);
  }

  async receive(body: unknown, sender?: Sender): Promise<unknown> {
    return this.deliver(this.accept(body, sender));
  }

  get mailboxDepth(): number {
    return this.mailbox.depth;
  }

  /** Decodes an untrusted message from the bus into M, or throws ProcessError('bad_request'). */
  abstract accept(body: unknown, sender?: Sender): M;
  protected abstract handle(msg: M): R | Promise<R>;
}
