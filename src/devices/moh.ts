import type { DeviceKind } from './kind.ts';

/** Music on hold server: streams numbered audio sources; one unit per held stream. */
export const moh: DeviceKind = {
  type: 'moh',
  unit: 'stream',
  perCore: 2500, // one source, PCMU (bench:media): the kernel's per-packet send cost limits it
  lacks(spec, req) {
    if (req.audio_source === undefined || spec.audioSources.has(req.audio_source)) return undefined;
    return `has no audio source ${req.audio_source} (has ${[...spec.audioSources.keys()].join(', ')})`;
  },
};
