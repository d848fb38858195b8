// The media directory rule (src/config/mediaFiles.ts): what a config may make
// a node read at call time.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OUTSIDE_MEDIA_DIR, resolveMediaFile } from '../../src/config/mediaFiles.ts';

describe('media files are read only from the media directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'tandem-media-'));
  const dir = join(root, 'media');
  mkdirSync(join(dir, 'sounds'), { recursive: true });
  writeFileSync(join(dir, 'sounds', 'hold.wav'), 'RIFF');
  writeFileSync(join(root, 'secret.wav'), 'RIFF');
  symlinkSync(join(root, 'secret.wav'), join(dir, 'escape.wav'));
  symlinkSync(join(dir, 'sounds', 'hold.wav'), join(dir, 'alias.wav'));

  it('finds files inside, by relative or absolute path, and through links that stay inside', () => {
    assert.equal(resolveMediaFile(dir, 'sounds/hold.wav'), join(dir, 'sounds', 'hold.wav'));
    assert.equal(resolveMediaFile(dir, join(dir, 'sounds', 'hold.wav')), join(dir, 'sounds', 'hold.wav'));
    assert.equal(resolveMediaFile(dir, 'alias.wav'), join(dir, 'sounds', 'hold.wav'));
  });

  it('refuses every path outside with the same message, existing or not, through .., absolute paths and links', () => {
    for (const f of [
      '../secret.wav',
      join(root, 'secret.wav'),
      '../nope.wav',
      '/etc/passwd',
      '/etc/nope',
      'escape.wav',
      'sounds/../../secret.wav',
      '.',
      '',
    ]) {
      assert.throws(() => resolveMediaFile(dir, f), { name: 'MediaFileError', message: OUTSIDE_MEDIA_DIR }, f);
    }
  });

  it('names a missing file inside relative to the directory', () => {
    assert.throws(() => resolveMediaFile(dir, 'sounds/none.wav'), {
      name: 'MediaFileError',
      message: 'no such file sounds/none.wav in the media directory',
    });
  });
});
