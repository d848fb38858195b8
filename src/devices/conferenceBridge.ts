import type { DeviceKind } from './kind.ts';

/** Mixes meet-me and ad-hoc conferences; one unit of capacity per participant. */
export const conferenceBridge: DeviceKind = {
  type: 'conference_bridge',
  unit: 'participant',
  perCore: 625, // rooms of 10, PCMU (bench:media, 40 ms jitter buffer criterion, two runs agree)
  lacks: () => undefined,
};
