// Docs that match the code: the configuration reference is the schema's own
// (every key described, the committed file current), every `tandem` command
// the documents show exists, and every link between documents leads somewhere.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { referenceMarkdown, referenceRows } from '../src/config/reference.ts';

const DOCS = ['README.md', 'SECURITY.md', 'BENCHMARKS.md', ...readdirSync('docs').map((f) => join('docs', f))];

/** The code of a Markdown text: fenced blocks and inline spans. */
function codeOf(text: string): string[] {
  const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const spans = [...text.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...blocks, ...spans];
}

describe('documentation', () => {
  it('every configuration key has a description, and docs/configuration.md is made from the schema as it is now', () => {
    const rows = referenceRows();
    assert.ok(rows.length > 100, `${rows.length} keys`);
    assert.deepEqual(
      rows.filter((r) => !r.description).map((r) => r.key),
      [],
      'keys without a description (add .describe() in src/config/schema.ts)',
    );
    assert.equal(
      readFileSync('docs/configuration.md', 'utf8'),
      referenceMarkdown(),
      'docs/configuration.md is stale: node --import tsx src/cli.ts schema --markdown > docs/configuration.md',
    );
    const doc = readFileSync('docs/configuration.md', 'utf8');
    for (const r of rows) assert.ok(doc.includes(`\`${r.key}\``), `${r.key} is in the reference`);
  });

  it('every tandem command the documents show exists', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--help'], { encoding: 'utf8' });
    const commands = new Set([...help.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!));
    assert.ok(commands.has('start') && commands.has('apply'), `commands read from --help: ${[...commands]}`);
    const shown = new Map<string, string>();
    for (const file of DOCS) {
      for (const code of codeOf(readFileSync(file, 'utf8'))) {
        for (const m of code.matchAll(/(?:^|[\s(])(?:tandem|npm run tandem --) ([a-z][a-z-]*)/gm)) {
          shown.set(m[1]!, file);
        }
      }
    }
    assert.ok(shown.size >= 5, `commands found in the docs: ${[...shown.keys()]}`);
    for (const [command, file] of shown)
      assert.ok(commands.has(command), `${file} shows "tandem ${command}", which does not exist`);
  });

  it('every relative link between documents leads to a file that exists', () => {
    for (const file of DOCS) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        assert.ok(existsSync(join(dirname(file), target)), `${file} links to ${target}, which does not exist`);
      }
    }
  });

  it('the README is a front page: short, with the quick start and the way to every document', () => {
    const readme = readFileSync('README.md', 'utf8');
    assert.ok(readme.split('\n').length <= 160, `README.md has ${readme.split('\n').length} lines`);
    for (const f of readdirSync('docs')) assert.ok(readme.includes(`docs/${f}`), `README.md links to docs/${f}`);
  });
});
