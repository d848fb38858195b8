// The deployment files agree with what a node really exports and accepts:
// every metric the alert rules and the Grafana dashboard query is one a
// node's /metrics declares, and the systemd unit's command line is one the
// CLI takes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { adminFetch } from './helpers/admin.ts';
import { NODES, useCluster } from './helpers/cluster.ts';

const run = promisify(execFile);
const metricNames = (expr: string) => [...expr.matchAll(/\btandem_[a-z_]+/g)].map((m) => m[0]);

describe('deploy/ files', () => {
  const fx = useCluster(
    `${NODES}
media_resources:
  CFB1: { type: conference_bridge, node: cm1, capacity: 2 }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: x, device_pool: DP }
`,
    { admin: true },
  );

  it('alert rules and dashboard query only metrics the nodes export', async () => {
    const text = await (await adminFetch(`${fx.cluster.node('cm1').admin!.url}/metrics`)).text();
    const declared = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
    const rules = parse(readFileSync('deploy/prometheus-alerts.yaml', 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const alerts = rules.groups.flatMap((g) => g.rules);
    assert.deepEqual(alerts.map((r) => r.alert).sort(), [
      'TandemAllocationsLost',
      'TandemConfigVersionsDiffer',
      'TandemDeviceNearCapacity',
      'TandemDeviceOutOfResources',
      'TandemMetricsUnreachable',
      'TandemMrglExhausted',
      'TandemNodeDown',
      'TandemPasswordGuessing',
    ]);
    // One node-down alert per node: grouped by the node its peers name, not also by each scrape target.
    const down = alerts.find((r) => r.alert === 'TandemNodeDown')!;
    assert.match(down.expr, /by \(peer\)/);
    assert.doesNotMatch(down.expr, /\bup\{/);
    const dashboard = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const exprs = [
      ...alerts.map((r) => [r.alert, r.expr]),
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr])),
    ] as Array<[string, string]>;
    for (const [where, expr] of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0 || /\bup\{/.test(expr), `${where}: no tandem metric in ${expr}`);
      for (const n of names)
        assert.ok(
          declared.has(n),
          `${where}: ${n} is not exported by a node (exported: ${[...declared].filter((d) => d.startsWith('tandem_')).join(', ')})`,
        );
    }
  });

  it("the systemd unit's command line is one the CLI takes", async () => {
    const unit = readFileSync('deploy/tandem@.service', 'utf8');
    const exec = /^ExecStart=\/usr\/bin\/env tandem (.+)$/m.exec(unit)?.[1];
    assert.ok(exec, 'ExecStart runs tandem');
    const help = (await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--help'])).stdout;
    for (const opt of exec.split(' ').filter((w) => w.startsWith('--')))
      assert.ok(help.includes(opt), `tandem start has no ${opt}`);
  });
});
