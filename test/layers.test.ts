// The house rule of the source tree: dependencies point down
// (config -> cluster -> media -> sip/devices -> mrm -> calls/admin -> node -> cli),
// type-only imports included, and two layers of one rank never import each other.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';

/** A layer's rank: a file may import from its own rank or below. The files at src/ itself (errors, log, version) are the base. */
const RANK: Record<string, number> = {
  base: 0,
  config: 1,
  cluster: 2,
  media: 3,
  sip: 4,
  devices: 4,
  mrm: 5,
  calls: 6,
  admin: 6,
  node: 7,
  cli: 8,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(file: string): string {
  const parts = relative('src', file).split(sep);
  if (parts.length === 1) return parts[0] === 'cli.ts' ? 'cli' : 'base';
  return parts[0]!;
}

/** Every relative import and re-export of a file (value and type), as paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\b[^'"]*?from '(\.[^']+)'/gm)].map((m) => join(dirname(file), m[1]!));
}

describe('source layers', () => {
  const files = sources('src');
  const edges = files.flatMap((from) => importsOf(from).map((to) => ({ from, to })));

  it('finds the tree (the check reads what it claims to)', () => {
    assert.ok(files.length > 100, `${files.length} source files`);
    assert.ok(edges.length > 500, `${edges.length} imports`);
    for (const f of files) assert.ok(layerOf(f) in RANK, `${f}: a directory of src/ that has no layer here`);
  });

  it('no file imports from a higher layer', () => {
    const up = edges
      .filter(({ from, to }) => RANK[layerOf(to)]! > RANK[layerOf(from)]!)
      .map(({ from, to }) => `${from} (${layerOf(from)}) imports ${to} (${layerOf(to)})`);
    assert.deepEqual(up, []);
  });

  it('two layers never import each other', () => {
    const pairs = new Set(edges.map(({ from, to }) => `${layerOf(from)}>${layerOf(to)}`));
    const both = [...pairs].filter((p) => {
      const [a, b] = p.split('>');
      return a !== b && pairs.has(`${b}>${a}`);
    });
    assert.deepEqual(both, []);
  });

  it('no import cycles between files, type-only imports included (a module reads as a whole before the ones it uses)', () => {
    const next = new Map<string, string[]>();
    for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
    // Depth-first: a file met again while still on the path closes a cycle.
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      state.set(f, 'open');
      for (const t of next.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...path.slice(path.indexOf(t)), t].join(' -> '));
        else if (!state.has(t)) visit(t, [...path, t]);
      }
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f, [f]);
    assert.deepEqual(cycles, []);
  });
});
