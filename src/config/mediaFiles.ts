// The one rule for the files a configuration makes a node read at call time
// (music-on-hold sources, annunciator prompts): they live under the media
// directory (`media_dir`, default the config file's directory), and nothing
// else is opened. Whoever can apply a configuration must not be able to make
// a node read /etc/shadow to a caller, nor learn which files exist: a path
// outside gets the same answer whether it exists or not. Symbolic links are
// followed before the check, so a link inside pointing outside is outside.
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { ClusterModel } from './model.ts';
import type { ConfigProblem } from './crossCheck.ts';
import { errorMessage, TandemError } from '../errors.ts';

export class MediaFileError extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const OUTSIDE_MEDIA_DIR = 'outside the media directory (media_dir): media files are read only from there';

/** The media directory of a model: `media_dir` relative to the config file's directory. */
export function mediaDirOf(model: ClusterModel): string {
  return resolve(model.baseDir, model.config.media_dir ?? '.');
}

const inside = (dir: string, path: string) => {
  const r = relative(dir, path);
  return r !== '' && !r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r);
};

/** The real path of a media file named in the config, or a MediaFileError (outside, or missing inside). */
export function resolveMediaFile(mediaDir: string, file: string): string {
  const dir = existsSync(mediaDir) ? realpathSync(mediaDir) : resolve(mediaDir);
  const lexical = resolve(dir, file);
  if (!inside(dir, lexical)) throw new MediaFileError(OUTSIDE_MEDIA_DIR);
  let real: string;
  try {
    real = realpathSync(lexical);
  } catch (err) {
    throw new MediaFileError(`no such file ${relative(dir, lexical)} in the media directory`, { cause: err });
  }
  if (!inside(dir, real)) throw new MediaFileError(OUTSIDE_MEDIA_DIR);
  return real;
}

/** Problems with the media files a model names (outside the media directory, or not there). */
export function mediaFileProblems(model: ClusterModel): ConfigProblem[] {
  const dir = mediaDirOf(model);
  const problems: ConfigProblem[] = [];
  for (const r of model.resources.values()) {
    const files: Array<[string, string]> = [
      ...[...r.audioSources].map(([id, f]): [string, string] => [`audio_sources.${id}`, f]),
      ...[...r.prompts].map(([id, f]): [string, string] => [`prompts.${id}`, f]),
    ];
    for (const [key, f] of files) {
      try {
        resolveMediaFile(dir, f);
      } catch (err) {
        problems.push({ path: `media_resources.${r.name}.${key}`, message: errorMessage(err) });
      }
    }
  }
  return problems;
}
