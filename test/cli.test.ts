// The tandem command as an operator uses it: real processes, real HTTP.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from './helpers/ports.ts';
import { start } from './helpers/proc.ts';

const run = promisify(execFile);

/** The bundled example with its admin and SIP ports moved to free ones. */
async function exampleOnFreePorts(): Promise<{ file: string; admin: string[] }> {
  // The copy lives elsewhere: its media files are the example's (media_dir).
  let text = `media_dir: "${resolve('examples')}"\n${readFileSync('examples/acme.yaml', 'utf8')}`;
  const admin: string[] = [];
  for (const old of ['8081', '8082', '8083']) {
    const p = String(await freePort());
    admin.push(`127.0.0.1:${p}`);
    text = text.replace(`admin: 127.0.0.1:${old}`, `admin: 127.0.0.1:${p}`);
  }
  for (const old of ['5060', '5070', '5080'])
    text = text.replace(`sip: 127.0.0.1:${old}`, `sip: 127.0.0.1:${await freePort()}`);
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-cli-')), 'acme.yaml');
  writeFileSync(file, text);
  return { file, admin };
}

describe('tandem CLI', () => {
  it('start runs the example cluster, explain prints the walk as a table and as JSON, SIGTERM stops cleanly', async () => {
    const { file, admin } = await exampleOnFreePorts();
    const node = start('node', ['--import', 'tsx', 'src/cli.ts', 'start', '--config', file, '--log-level', 'warn']);
    try {
      await node.waitFor(/3 call manager\(s\) up/, 20_000);
      // No tokens in the config: the first start made an owner-only token file beside it, and said where (not what).
      const tokenFile = join(dirname(file), '.tandem', 'acme.admin-token');
      assert.match(node.output(), new RegExp(`admin API token created in ${tokenFile.replaceAll('.', '\\.')}`));
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
      const token = readFileSync(tokenFile, 'utf8').trim();
      assert.doesNotMatch(node.output(), new RegExp(token));
      assert.equal((await fetch(`http://${admin[0]}/api/resources`)).status, 401);
      assert.equal(
        (await fetch(`http://${admin[0]}/api/resources`, { headers: { authorization: `Bearer ${token}` } })).status,
        200,
      );
      for (const [i, n] of ['cm1', 'cm2', 'cm3'].entries()) {
        assert.match(
          node.output(),
          new RegExp(`${n}: admin http://${admin[i]!.replace('.', '\\.')}\\s+sip 127\\.0\\.0\\.1:\\d+`),
        );
      }
      const cli = ['--import', 'tsx', 'src/cli.ts', 'explain', '--admin', `http://${admin[0]}`, '-c', file];
      // Without the token file's config and without a token: refused by the node.
      await assert.rejects(
        run('node', [
          '--import',
          'tsx',
          'src/cli.ts',
          'explain',
          '--admin',
          `http://${admin[0]}`,
          '--token',
          'wrong-token-1234567890',
          '--phone',
          '1001',
          '--type',
          'mtp',
        ]),
        /authentication required/,
      );
      // 2003 is on cm3: explain asks cm1, learns the owner and asks cm3.
      const table = await run('node', [...cli, '--phone', '2003', '--type', 'transcoder', '--codecs', 'G722']);
      assert.match(table.stdout, /MRGL MRGL_EAST \(from phone\)/);
      assert.match(table.stdout, /XCODE_EAST_1\s+cm2\s+would_allocate/);
      assert.match(table.stdout, /XCODE_SPARE\s+cm1\s+no_capability\s+does not transcode G722/);
      assert.match(table.stdout, /=> would allocate XCODE_EAST_1 on cm2/);
      const json = await run('node', [...cli, '--phone', '1001', '--type', 'conference_bridge', '--json']);
      const trace = JSON.parse(json.stdout) as { mrgl: string; steps: Array<{ device: string; verdict: string }> };
      assert.equal(trace.mrgl, 'MRGL_EXEC');
      assert.equal(trace.steps.find((s) => s.verdict === 'would_allocate')!.device, 'CFB_EXEC');
      await assert.rejects(
        run('node', [...cli, '--phone', '7777', '--type', 'mtp']),
        (e: { code: number; stderr: string }) => {
          assert.equal(e.code, 1);
          assert.match(e.stderr, /unknown phone "7777"/);
          return true;
        },
      );
      // Without --admin, -c FILE sends to that file's first node (not to 127.0.0.1:8081, another cluster's port).
      const byFile = await run('node', [
        '--import',
        'tsx',
        'src/cli.ts',
        'explain',
        '-c',
        file,
        '--phone',
        '1001',
        '--type',
        'conference_bridge',
      ]);
      assert.match(byFile.stdout, /would allocate CFB_EXEC/);
      // drain / undrain by hand
      const drain = await run('node', ['--import', 'tsx', 'src/cli.ts', 'drain', 'XCODE_EAST_1', '-c', file]);
      assert.match(drain.stdout, /XCODE_EAST_1: draining \(0\/16 active\)/);
      const drainedWalk = await run('node', [...cli, '--phone', '2003', '--type', 'transcoder', '--codecs', 'G722']);
      assert.match(drainedWalk.stdout, /XCODE_EAST_1\s+cm2\s+unavailable\s+draining, active 0\/16/);
      const undrain = await run('node', [
        '--import',
        'tsx',
        'src/cli.ts',
        'undrain',
        'XCODE_EAST_1',
        '--admin',
        `http://${admin[0]}`,
        '-c',
        file,
      ]);
      assert.match(undrain.stdout, /XCODE_EAST_1: taking allocations/);
      node.kill('SIGTERM');
      assert.equal(await node.exited(), 0);
    } finally {
      node.kill('SIGKILL');
    }
  });

  it('token prints a new token and the config entry with its hash, never the same twice', async () => {
    const outs = await Promise.all(
      [0, 1].map(() => run('node', ['--import', 'tsx', 'src/cli.ts', 'token', '--name', 'ops', '--role', 'operator'])),
    );
    const parsed = outs.map(({ stdout }) => {
      const token = /^token: (\S+)$/m.exec(stdout)![1]!;
      const hash = /- \{ name: ops, role: operator, sha256: ([0-9a-f]{64}) \}/.exec(stdout)![1]!;
      return { token, hash };
    });
    for (const p of parsed) assert.equal(p.hash, createHash('sha256').update(p.token).digest('hex'));
    assert.notEqual(parsed[0]!.token, parsed[1]!.token);
    assert.ok(parsed[0]!.token.length >= 40);
  });

  it('check-config takes the file as an argument or with -c; --version; a usage error is one line and a pointer, not the whole help', async () => {
    for (const args of [['examples/acme.yaml'], ['-c', 'examples/acme.yaml']]) {
      const { stdout } = await run('node', ['--import', 'tsx', 'src/cli.ts', 'check-config', ...args]);
      assert.match(stdout, /^examples\/acme\.yaml: ok \(3 nodes/);
    }
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'check-config']),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 2);
        assert.match(e.stderr, /which file\?/);
        return true;
      },
    );
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
    assert.equal((await run('node', ['--import', 'tsx', 'src/cli.ts', '--version'])).stdout.trim(), version);
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'explain', '--phone', '1001']),
      (e: { code: number; stderr: string }) => {
        assert.match(e.stderr, /required option '-t, --type <type>' not specified/);
        assert.match(e.stderr, /tandem <command> --help/);
        assert.doesNotMatch(e.stderr, /Options:/, 'not the whole help');
        return true;
      },
    );
  });

  it('start refuses an unknown node and a bad config with a message', async () => {
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'start', '--node', 'cm9']),
      /unknown node "cm9"/,
    );
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'start', '--config', '/nonexistent.yaml']),
      /ENOENT/,
    );
  });
});
