// The SIP methods a node takes, in one table: how the door lets each in
// (SipAuthenticator.gate) and, through TakenMethod, which handler call
// control must have for it (CallControl.methods, checked by the compiler).
// A new method is a row here and its handler there; Allow is made from the
// table. ACK and CANCEL belong to the transaction layer (they reach neither).

/** How the door lets a request of the method in. */
export type DoorRule =
  /** Digest (401) against the phone in To; refreshes from the bound address kept under overload */
  | 'register'
  /** out of dialog: a new call (admission, Digest 407 or a trunk's address); in dialog: the dialog's peer only */
  | 'invite'
  /** out of dialog: answered at the door (capabilities); in dialog: the dialog's peer only */
  | 'options'
  /** only within a dialog, from its peer (else 481) */
  | 'in_dialog';

export const SIP_METHODS = {
  INVITE: 'invite',
  REGISTER: 'register',
  OPTIONS: 'options',
  BYE: 'in_dialog',
  INFO: 'in_dialog',
  REFER: 'in_dialog',
} as const satisfies Record<string, DoorRule>;

export type TakenMethod = keyof typeof SIP_METHODS;

/**
 * Methods known and not taken: answered 405 with Allow (anything else
 * unknown is 501). Those that only exist within a dialog are checked against
 * the dialog first, so a stranger learns nothing more than 481.
 */
export const NOT_TAKEN: Readonly<Record<string, 'in_dialog' | undefined>> = {
  SUBSCRIBE: undefined,
  NOTIFY: undefined,
  PUBLISH: undefined,
  MESSAGE: undefined,
  UPDATE: 'in_dialog',
  PRACK: 'in_dialog',
};

/** The Allow header's value. */
export const ALLOW = ['INVITE', 'ACK', 'CANCEL', ...Object.keys(SIP_METHODS).filter((m) => m !== 'INVITE')].join(', ');

/** The door's rule for a method: its row, an in-dialog rule of a known method not taken, or none. */
export function doorRule(method: string): DoorRule | undefined {
  return Object.hasOwn(SIP_METHODS, method)
    ? SIP_METHODS[method as TakenMethod]
    : Object.hasOwn(NOT_TAKEN, method)
      ? NOT_TAKEN[method]
      : undefined;
}

/** The answer to a method that is not taken: 405 (known) or 501, with Allow. */
export function notTaken(method: string): { status: 405 | 501; headers: Array<[string, string]> } {
  return { status: Object.hasOwn(NOT_TAKEN, method) ? 405 : 501, headers: [['allow', ALLOW]] };
}

/** What OPTIONS is answered with, at the door or in a dialog. */
export const OPTIONS_ANSWER: Array<[string, string]> = [
  ['allow', ALLOW],
  ['accept', 'application/sdp'],
];
