import type { DeviceKind } from './kind.ts';

/** Plays announcements (prompts) and tones; one unit per stream. */
export const annunciator: DeviceKind = {
  type: 'annunciator',
  unit: 'stream',
  perCore: 500, // a prompt is played like music on hold
  lacks(spec, req) {
    if (req.prompt === undefined || spec.prompts.has(req.prompt)) return undefined;
    return `has no prompt ${req.prompt} (has ${[...spec.prompts.keys()].join(', ') || 'none'})`;
  },
};
