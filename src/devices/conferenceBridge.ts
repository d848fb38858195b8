import type { DeviceKind } from './kind.ts';

/** Mixes meet-me and ad-hoc conferences; one unit of capacity per participant. */
export const conferenceBridge: DeviceKind = {
  type: 'conference_bridge',
  unit: 'participant',
  perCore: 1250, // rooms of 10, PCMU (bench:media): tick lateness limits it
  lacks: () => undefined,
};
