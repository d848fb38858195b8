import type { DeviceKind } from './kind.ts';

/** Plays announcements and tones; one unit per stream. */
export const annunciator: DeviceKind = {
  type: 'annunciator',
  unit: 'stream',
  lacks: () => undefined,
};
