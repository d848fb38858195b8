// The versions a node keeps of its configuration: recorded newest last,
// listed newest first without their texts, kept on disk owner-only and read
// back, bounded, a damaged file not fatal; and a node that starts from a
// file older than a version applied live says so.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigVersions } from '../../src/config/configVersions.ts';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { freePort } from '../helpers/ports.ts';

describe('configuration versions', () => {
  it('records, lists newest first without texts, keeps them owner-only on disk and reads them back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-versions-'));
    const file = join(dir, '.tandem', 'c-cm1.config-versions.json');
    const v = new ConfigVersions(file, silentLogger());
    v.record('aaa', 'text a', '(file)', 1000);
    v.record('bbb', 'text b', 'alice', 2000);
    v.record('aaa', 'text a', 'bob', 3000); // a rollback: the same version again, newest now
    assert.deepEqual(v.list('aaa'), [
      { version: 'aaa', applied_at: 3000, by: 'bob', running: true },
      { version: 'bbb', applied_at: 2000, by: 'alice', running: false },
    ]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = new ConfigVersions(file, silentLogger());
    assert.equal(again.get('bbb')?.text, 'text b');
    assert.equal(again.list('bbb')[0]!.version, 'aaa');
  });

  it('keeps the newest 50; a damaged file starts a new history instead of stopping the node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-versions-'));
    const file = join(dir, 'v.json');
    const v = new ConfigVersions(file, silentLogger());
    for (let i = 0; i < 60; i++) v.record(`v${i}`, `t${i}`, 'alice', i);
    assert.equal(v.list('v59').length, 50);
    assert.equal(v.get('v9'), undefined);
    assert.equal(v.get('v10')?.text, 't10');
    writeFileSync(file, '{ not json');
    assert.deepEqual(new ConfigVersions(file, silentLogger()).list('x'), []);
    writeFileSync(file, JSON.stringify([{ version: 1 }]));
    assert.deepEqual(new ConfigVersions(file, silentLogger()).list('x'), []);
  });

  it('a node started from a file older than a version applied live says so, and lists both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-behind-'));
    const file = join(dir, 'c.yaml');
    const [sipPort, adminPort] = [await freePort(), await freePort()];
    const yaml = (capacity: number) => `cluster: { name: behind }
nodes:
  cm1: { sip: "127.0.0.1:${sipPort}", admin: "127.0.0.1:${adminPort}" }
media_resources:
  CFB: { type: conference_bridge, node: cm1, capacity: ${capacity} }
`;
    writeFileSync(file, yaml(4));
    const first = new EmbeddedCluster(loadConfigFile(file), silentLogger(), { admin: false, sip: false });
    await first.start();
    const next = parseConfig(yaml(6));
    assert.ok(next.ok);
    assert.equal((await first.node('cm1').applyConfig(next.model, 'alice')).status, 'applied');
    await first.stop();
    const kept = JSON.parse(readFileSync(join(dir, '.tandem', 'behind-cm1.config-versions.json'), 'utf8')) as Array<{
      by: string;
    }>;
    assert.deepEqual(
      kept.map((v) => v.by),
      ['(file)', 'alice'],
    );
    // Restarted from the same (older) file.
    const second = new EmbeddedCluster(loadConfigFile(file), silentLogger(), { admin: false, sip: false });
    await second.start();
    try {
      const events = second.node('cm1').events.recent(10);
      const behind = events.find((e) => e.kind === 'config_behind');
      assert.ok(behind, JSON.stringify(events));
      assert.match(behind.text, new RegExp(`version ${next.model.version} was applied live by alice`));
      const listed = second.node('cm1').configVersions.list(second.node('cm1').model.version);
      assert.equal(listed[0]!.running, true);
      assert.equal(listed[0]!.by, '(file)');
      assert.equal(listed[1]!.by, 'alice');
    } finally {
      await second.stop();
    }
  });
});
