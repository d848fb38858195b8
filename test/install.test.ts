// The package as an operator installs it: `npm pack`, then `npm install -g`
// of the tarball into a scratch prefix; the installed `tandem` runs the
// compiled JavaScript (no TypeScript loader) and starts a cluster.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from './helpers/ports.ts';
import { start } from './helpers/proc.ts';

const run = promisify(execFile);

describe('installable command', () => {
  it('npm pack + npm install -g gives a tandem command that checks configs, prints the schema and starts a cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-install-'));
    await run('npm', ['pack', '--pack-destination', dir, '--silent'], { timeout: 120_000 });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '-g', '--prefix', prefix, join(dir, tarball), '--no-audit', '--no-fund', '--silent'], {
      timeout: 180_000,
    });
    const tandem = join(prefix, 'bin', 'tandem');
    // Runs from dist/: the installed package has no TypeScript sources at all.
    const pkgDir = join(prefix, 'lib', 'node_modules', 'tandem');
    assert.deepEqual(
      readdirSync(pkgDir).filter((f) => f === 'src'),
      [],
    );
    const checked = await run(tandem, ['check-config', resolve('examples/acme.yaml')]);
    assert.match(checked.stdout, /acme\.yaml: ok \(3 nodes/);
    const schema = JSON.parse((await run(tandem, ['schema'])).stdout) as {
      $schema: string;
      properties: Record<string, unknown>;
    };
    assert.match(schema.$schema, /json-schema\.org/);
    assert.ok(schema.properties.media_resource_group_lists && schema.properties.phones);
    // The schema the examples point editors at is the validator's own, as of now.
    assert.deepEqual(
      schema,
      JSON.parse(readFileSync('schema/tandem.schema.json', 'utf8')),
      'schema/tandem.schema.json is stale: tandem schema > schema/tandem.schema.json',
    );
    // A cluster from the installed command, on free ports.
    let yaml = `media_dir: "${resolve('examples')}"\n${readFileSync('examples/acme.yaml', 'utf8')}`;
    const ports: Record<string, number> = {};
    for (const old of ['8081', '8082', '8083', '5060', '5070', '5080'])
      yaml = yaml.replace(`127.0.0.1:${old}`, `127.0.0.1:${(ports[old] = await freePort())}`);
    const config = join(dir, 'acme.yaml');
    writeFileSync(config, yaml);
    const node = start(tandem, ['start', '-c', config, '--log-level', 'warn']);
    try {
      await node.waitFor(/3 call manager\(s\) up/, 30_000);
      // The console's files and its charting library come with the package.
      for (const asset of ['console', 'console/app.js', 'console/uplot.js']) {
        const res = await fetch(`http://127.0.0.1:${ports['8081']}/${asset}`);
        assert.equal(res.status, 200, `${asset} served by the installed package`);
      }
      node.kill('SIGTERM');
      assert.equal(await node.exited(), 0);
    } finally {
      node.kill('SIGKILL');
    }
  });
});
