import { resolveMediaFile } from '../config/mediaFiles.ts';
import { errorMessage } from '../errors.ts';
import { MediaError } from '../media/mediaPlane.ts';
import { MohSource } from '../media/mohSource.ts';
import { readWav8k } from '../media/wav.ts';
import type { DeviceKind } from './kind.ts';

/** Music on hold server: streams numbered audio sources; one unit per held stream. */
export const moh: DeviceKind = {
  type: 'moh',
  label: 'music on hold',
  unit: 'stream',
  perCore: 500, // one source, PCMU (bench:media, 40 ms jitter buffer criterion: 437 and 1,000 in two runs; kept low)
  legs: 1,
  rooms: false,
  lacks(spec, req) {
    if (req.audio_source === undefined || spec.audioSources.has(req.audio_source)) return undefined;
    return `has no audio source ${req.audio_source} (has ${[...spec.audioSources.keys()].join(', ')})`;
  },
  /** a listener of the asked audio source (the lowest numbered by default), one source per device and number shared by all */
  async open(host, spec, req) {
    const id = req.source ?? Math.min(...spec.audioSources.keys());
    const file = spec.audioSources.get(id);
    if (!file) throw new MediaError(`${spec.name} has no audio source ${id}`);
    const key = `${spec.name}/${id}`;
    const source = host.shared(key, () => {
      try {
        return new MohSource(key, readWav8k(resolveMediaFile(host.mediaDir, file)), host.clock);
      } catch (err) {
        throw new MediaError(`${spec.name} audio source ${id}: ${errorMessage(err)}`, { cause: err });
      }
    });
    const leg = await host.leg(req.legs[0]!.codec);
    source.add(leg);
    return host.sessionOf(spec, [leg], req, () => source.remove(leg));
  },
};
