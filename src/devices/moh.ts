import type { DeviceKind } from './kind.ts';

/** Music on hold server: streams numbered audio sources; one unit per held stream. */
export const moh: DeviceKind = {
  type: 'moh',
  unit: 'stream',
  perCore: 500, // one source, PCMU (bench:media, 40 ms jitter buffer criterion: 437 and 1,000 in two runs; kept low)
  lacks(spec, req) {
    if (req.audio_source === undefined || spec.audioSources.has(req.audio_source)) return undefined;
    return `has no audio source ${req.audio_source} (has ${[...spec.audioSources.keys()].join(', ')})`;
  },
};
