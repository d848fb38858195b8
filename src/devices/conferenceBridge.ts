import type { DeviceKind } from './kind.ts';

/** Mixes meet-me and ad-hoc conferences; one unit of capacity per participant. */
export const conferenceBridge: DeviceKind = {
  type: 'conference_bridge',
  unit: 'participant',
  perCore: 750, // rooms of 10, PCMU: tick lateness limits it
  lacks: () => undefined,
};
