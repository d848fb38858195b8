// The README's quick start, as written: `npm start`, then the commands of
// its second shell block, run by bash one after the other in the repository.
// Each must succeed and answer what the README promises (no error bodies).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from './helpers/cluster.ts';
import { start } from './helpers/proc.ts';

const run = promisify(execFile);

/** The shell blocks of the README's "Quick start" section, each as a list of commands (continuation lines joined). */
function quickStart(): string[][] {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('## Quick start');
  assert.ok(start >= 0, 'the README has a Quick start section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.trim()),
  );
}

describe('README quick start', () => {
  it('npm start, then every command of the quick start works as written', async () => {
    const [first, second] = quickStart();
    assert.deepEqual(first, ['npm ci && npm start'], 'the first block starts the example');
    assert.ok(second && second.length >= 4, 'the second block has the commands to try');
    const node = start('npm', ['start', '--silent', '--', '--log-level', 'warn'], {}, { group: true });
    try {
      await node.waitFor(/3 call manager\(s\) up/, 60_000);
      // One bash for the block (TOKEN=... must reach the next lines); a marker before each command.
      // (curl prints JSON without a final newline: each marker starts a line of its own)
      const script = [
        'set -e',
        ...second.map((cmd, i) => `printf '\\n@@@ ${i}\\n'\n${cmd}`),
        "printf '\\n@@@ end\\n'",
      ].join('\n');
      const { stdout } = await run('bash', ['-c', script], { timeout: 120_000 });
      const outputs = stdout.split(/\n@@@ \S+\n/).slice(1, -1);
      assert.equal(outputs.length, second.length, stdout);
      for (const [i, cmd] of second.entries())
        assert.doesNotMatch(outputs[i]!, /"error"/, `${cmd} answered an error:\n${outputs[i]}`);
      const out = (prefix: string) => outputs[second.findIndex((c) => c.includes(prefix))]!;
      assert.match(out('explain'), /would_allocate|allocated/, 'explain shows the walk');
      assert.match(out('-XPOST localhost:8081/api/allocations'), /"resource":"CFB/, 'the allocation names a bridge');
      const resources = JSON.parse(out('localhost:8081/api/resources')) as Array<{ type: string; active: number }>;
      assert.ok(
        resources.some((r) => r.type === 'conference_bridge' && r.active === 1),
        'the bridge shows the allocation',
      );
      assert.match(out('/api/config'), /"version":"[0-9a-f]{12}"/);
      assert.match(out('apply -c examples/acme.yaml'), /cm1: unchanged/);
      // And the console page it points at.
      const page = await fetch('http://127.0.0.1:8081/console');
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<title>Tandem console<\/title>/);
      // SIGTERM to npm and tandem (its process group): tandem stops gracefully and frees its ports.
      node.kill('SIGTERM');
      await node.exited();
      await eventually(
        async () =>
          fetch('http://127.0.0.1:8081/healthz').then(
            () => false,
            () => true,
          ),
        10_000,
        'the example stopped',
      );
    } finally {
      node.kill('SIGKILL');
    }
  });
});
