import { resolveMediaFile } from '../config/mediaFiles.ts';
import { errorMessage } from '../errors.ts';
import { MediaError } from '../media/mediaPlane.ts';
import { Prompt } from '../media/prompt.ts';
import { readWav8k } from '../media/wav.ts';
import type { DeviceKind } from './kind.ts';

/** Plays announcements (prompts) and tones; one unit per stream. */
export const annunciator: DeviceKind = {
  type: 'annunciator',
  label: 'annunciator',
  unit: 'stream',
  perCore: 500, // a prompt is played like music on hold
  legs: 1,
  rooms: false,
  lacks(spec, req) {
    if (req.prompt === undefined || spec.prompts.has(req.prompt)) return undefined;
    return `has no prompt ${req.prompt} (has ${[...spec.prompts.keys()].join(', ') || 'none'})`;
  },
  /** the asked prompt from its start; the session says how long it plays */
  async open(host, spec, req) {
    const name = req.prompt;
    const file = name ? spec.prompts.get(name) : undefined;
    if (!name || !file) throw new MediaError(`${spec.name} has no prompt ${name ?? '(none asked)'}`);
    const key = `${spec.name}/${name}`;
    const prompt = host.shared(key, () => {
      try {
        return new Prompt(key, readWav8k(resolveMediaFile(host.mediaDir, file)), host.clock);
      } catch (err) {
        throw new MediaError(`${spec.name} prompt ${name}: ${errorMessage(err)}`, { cause: err });
      }
    });
    const leg = await host.leg(req.legs[0]!.codec);
    prompt.add(leg);
    const session = host.sessionOf(spec, [leg], req, () => prompt.remove(leg));
    session.durationMs = prompt.durationMs;
    return session;
  },
};
