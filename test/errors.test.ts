// Every error Tandem throws on purpose is a TandemError (src/errors.ts): one
// root, its name its class's. A class in src/ that extends Error directly,
// or an error whose name differs from its class, fails here.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { TandemError, errorMessage } from '../src/errors.ts';

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
const sources = files('src').map((f) => ({ f, text: readFileSync(f, 'utf8') }));

describe('errors', () => {
  it('no class in src/ extends Error but TandemError itself', () => {
    const direct = sources
      .filter(({ f, text }) => f !== join('src', 'errors.ts') && /class \w+ extends Error\b/.test(text))
      .map(({ f }) => f);
    assert.deepEqual(direct, []);
  });

  it('every error class is named after itself and is a TandemError', async () => {
    let checked = 0;
    for (const { f, text } of sources.filter(({ text }) => /extends TandemError\b/.test(text))) {
      const mod = (await import(pathToFileURL(join(process.cwd(), f)).href)) as Record<string, unknown>;
      for (const name of [...text.matchAll(/export class (\w+) extends TandemError\b/g)].map((m) => m[1]!)) {
        const C = mod[name] as new (...args: unknown[]) => Error;
        // Constructors differ; strings are enough for the name (a constructor that needs more is skipped).
        let e: Error | undefined;
        try {
          e = Reflect.construct(C, ['x', 'y', 'z']) as Error;
        } catch {
          continue;
        }
        assert.ok(e instanceof TandemError, `${name} (${f})`);
        assert.equal(e.name, name, `${f}: ${name}'s name`);
        checked++;
      }
    }
    assert.ok(checked >= 20, `${checked} error classes checked`);
  });

  it('keeps the cause, and says what anything thrown was', () => {
    const cause = new Error('socket closed');
    class Wrapped extends TandemError {}
    const e = new Wrapped('bus down', { cause });
    assert.equal(e.name, 'Wrapped');
    assert.equal(e.cause, cause);
    assert.equal(errorMessage(e), 'bus down');
    assert.equal(errorMessage('plain'), 'plain');
    assert.equal(errorMessage({ code: 7 }), '{"code":7}');
  });
});
