// The web console in a real browser (Debian's chromium driven by
// playwright-core): sign-in, the three nodes, a device's bar moving after an
// allocation made through the API, the explain view's verdicts, a call of
// two real phones (baresip) with its transcoder, that call found in the
// history (call detail records) and exported as CSV, and a node turning "down"
// when it dies. The page is served by cm1 and shows the whole cluster.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { OPERATOR_TOKEN, VIEWER_TOKEN, adminFetch } from '../helpers/admin.ts';
import { Baresip } from '../helpers/baresip.ts';
import { mediaNodes, startCluster } from '../helpers/cluster.ts';

describe('web console (chromium)', () => {
  let cluster: EmbeddedCluster;
  let browser: Browser;
  let page: Page;
  let url: string;
  const sip: Record<string, string> = {};
  const phones: Baresip[] = [];

  before(async () => {
    const nodes = await mediaNodes(['cm1', 'cm2', 'cm3'], 51200, 60, sip);
    cluster = await startCluster(
      `
cluster: { name: console, heartbeat_ms: 200, node_down_after_ms: 1000 }
${nodes}
media_resources:
  XCODE3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
  CFB2: { type: conference_bridge, node: cm2, capacity: 8 }
media_resource_groups:
  MRG: { devices: [XCODE3, CFB2] }
media_resource_group_lists:
  MRGL: [MRG]
device_pools:
  DP: { mrgl: MRGL }
trunks:
  # a carrier whose server is gone (nothing listens on the loopback's discard port): its keep-alive marks it down
  CARRIER: { nodes: [cm2], peers: ["127.0.0.1:9"], device_pool: DP, options_ping_s: 1, setup_timeout_ms: 300 }
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: pw2001, device_pool: DP, codecs: [PCMA] }
`,
      { sip: true, admin: true },
    );
    url = cluster.node('cm1').admin!.url!;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage();
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await browser?.close();
    await cluster?.stop();
  });

  it('refuses a wrong token and signs in with a viewer token; signed in, the sign-in form and its token are gone', async () => {
    // A trailing slash reaches the page as well (it was a 401 of the API).
    const res = await page.goto(`${url}/console/`);
    assert.equal(res?.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/console');
    assert.match(res!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    // Before signing in, no empty dashboard.
    assert.equal(await page.isVisible('#app'), false);
    await page.fill('#token', 'not-a-token');
    await page.click('#signin-form button');
    await page.waitForSelector('#signin-error:has-text("not valid")');
    await page.fill('#token', VIEWER_TOKEN);
    await page.click('#signin-form button');
    await page.waitForSelector('#app:not([hidden])');
    // The token is never put in a URL the server could log.
    assert.ok(!page.url().includes(VIEWER_TOKEN));
    assert.equal(await page.isVisible('#app'), true);
    assert.equal(await page.isVisible('#signin'), false, 'the sign-in form is not shown once signed in');
    assert.equal(await page.inputValue('#token'), '', 'the token left the form');
    assert.equal(await page.textContent('#signin-error'), '', 'no stale error');
  });

  it('fits a 390 px wide screen, and follows a dark colour scheme', async () => {
    const narrow = await browser.newPage({ viewport: { width: 390, height: 800 } });
    try {
      await narrow.goto(`${url}/console`);
      await narrow.fill('#token', VIEWER_TOKEN);
      await narrow.click('#signin-form button');
      await narrow.waitForSelector('#nodes tr[data-node="cm3"]');
      await narrow.waitForSelector('.device');
      const width = await narrow.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `the page is ${width} px wide at 390`);
      await narrow.emulateMedia({ colorScheme: 'dark' });
      const bg = await narrow.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
      assert.equal(bg, 'rgb(18, 20, 22)');
    } finally {
      await narrow.close();
    }
  });

  it('shows the three nodes up, with the config version each runs', async () => {
    for (const n of ['cm1', 'cm2', 'cm3'])
      await page.waitForSelector(`#nodes tr[data-node="${n}"] .state:has-text("up")`);
    const version = cluster.node('cm1').model.version;
    await page.waitForFunction(
      (v) => [...document.querySelectorAll('#nodes .config')].every((c) => c.textContent === v),
      version,
    );
  });

  it('shows each trunk on the node that carries it: a far end that does not answer its keep-alive is down', async () => {
    const row = '#trunks tr[data-trunk="CARRIER"][data-node="cm2"]';
    await page.waitForSelector(`${row} .peers .peer:has-text("127.0.0.1:9 down")`, { timeout: 10_000 });
    assert.equal(await page.textContent(`${row} .trunk-calls`), '0 / 100');
    assert.equal(await page.textContent(`${row} .registration`), '-', 'a trunk that does not register');
    assert.equal((await page.$$('#trunks tbody tr')).length, 1, 'only the node that carries it shows it');
    // The same in the carrying node's metrics, with its call counts there from the start.
    const metrics = await (await adminFetch(`${cluster.node('cm2').admin!.url}/metrics`)).text();
    assert.match(metrics, /tandem_trunk_peer_up\{trunk="CARRIER",peer="127\.0\.0\.1:9",node="cm2"\} 0/);
    assert.match(metrics, /tandem_trunk_calls_total\{trunk="CARRIER",direction="out",node="cm2"\} 0/);
    assert.match(metrics, /tandem_trunk_calls_total\{trunk="CARRIER",direction="in",node="cm2"\} 0/);
  });

  it("moves a device's bar within 2 s of an allocation made through the API", async () => {
    await page.waitForSelector('#resources [data-device="CFB2"] progress');
    assert.equal(
      await page.$eval('#resources [data-device="CFB2"] progress', (p) => (p as HTMLProgressElement).value),
      0,
    );
    const r = await adminFetch(`${url}/api/allocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '1001', type: 'conference_bridge' }),
    });
    assert.equal(r.status, 201);
    const t0 = Date.now();
    await page.waitForFunction(
      () => (document.querySelector('#resources [data-device="CFB2"] progress') as HTMLProgressElement).value === 1,
      undefined,
      { timeout: 2000 },
    );
    assert.ok(Date.now() - t0 < 2000);
    const a = (await r.json()) as { id: string };
    assert.equal((await adminFetch(`${url}/api/allocations/${a.id}`, { method: 'DELETE' })).status, 204);
    await page.waitForFunction(
      () => (document.querySelector('#resources [data-device="CFB2"] progress') as HTMLProgressElement).value === 0,
      undefined,
      { timeout: 2000 },
    );
    // The chart of the device's last hour is drawn, with its axes (uPlot's time and count axes).
    await page.waitForSelector('#resources [data-device="CFB2"] .chart canvas');
    assert.equal((await page.$$('#resources [data-device="CFB2"] .chart .u-axis')).length, 2);
    // The last day: each minute's peak (the allocation above is in this minute's).
    const day = (await (await adminFetch(`${url}/api/cluster/history?range=day`)).json()) as Record<
      string,
      Array<[number, number]>
    >;
    assert.ok(day.CFB2!.every(([t]) => t % 60_000 === 0));
    await page.selectOption('#chart-range', 'day');
    await page.waitForSelector('#resources [data-device="CFB2"] .chart canvas');
    await page.selectOption('#chart-range', 'hour');
    await page.waitForSelector('#resources [data-device="CFB2"] .chart canvas');
    assert.equal((await adminFetch(`${url}/api/cluster/history?range=week`)).status, 400);
  });

  it('draws the walk of an allocation with its verdicts (explain)', async () => {
    await page.selectOption('#explain-phone', '1001');
    await page.selectOption('#explain-type', 'transcoder');
    await page.click('#explain-form button');
    await page.waitForSelector('#explain-steps li[data-device="XCODE3"][data-verdict="would_allocate"]');
    assert.match((await page.textContent('#explain-head')) ?? '', /MRGL MRGL \(device_pool\)/);
    // A phone of another node (2001 is cm2's; the page is cm1's), with codecs and SRTP: cm2 walks it.
    await page.selectOption('#explain-phone', '2001');
    await page.fill('#explain-codecs', 'G722');
    await page.click('#explain-form button');
    await page.waitForSelector('#explain-steps li[data-device="XCODE3"][data-verdict="no_capability"]');
    assert.match((await page.textContent('#explain-head')) ?? '', /transcoder for 2001/);
    await page.fill('#explain-codecs', '');
    await page.check('#explain-srtp');
    await page.click('#explain-form button');
    await page.waitForSelector('#explain-steps li[data-device="XCODE3"][data-verdict="would_allocate"]');
  });

  it('shows a call of two real phones with the transcoder it needs', async () => {
    const a = await Baresip.start({
      number: '1001',
      password: 'pw1001',
      registrar: sip.cm1!,
      toneHz: 500,
      codecs: ['PCMU'],
    });
    phones.push(a);
    const b = await Baresip.start({
      number: '2001',
      password: 'pw2001',
      registrar: sip.cm2!,
      toneHz: 700,
      codecs: ['PCMA'],
    });
    phones.push(b);
    assert.equal((await a.registration()).status, 200);
    assert.equal((await b.registration()).status, 200);
    await a.callUntilEstablished(b);
    await page.waitForSelector('#calls tr[data-phone="1001"] [data-resource="XCODE3"]', { timeout: 5000 });
    // One row for the call (its two halves, on cm1 and cm2), with both parties, both nodes, its start and duration.
    await page.waitForSelector('#calls tr[data-phones="1001 2001"]');
    assert.equal((await page.$$('#calls tbody tr')).length, 1, 'one row per call, not per half');
    assert.equal(await page.textContent('#calls tr[data-phone="1001"] .parties'), '1001 → 2001');
    assert.match((await page.textContent('#calls tr[data-phone="1001"]')) ?? '', /cm1 → cm2/);
    await page.waitForFunction(
      () =>
        /^0:0[1-9]|^0:[1-5]\d/.test(
          document.querySelector('#calls tr[data-phone="1001"] .duration')?.textContent ?? '',
        ),
      undefined,
      { timeout: 5000 },
    );
    // Media quality of the transcoder's legs, from its node (cm3), shown with the call of cm1.
    await page.waitForFunction(
      () =>
        /XCODE3 127\.0\.0\.1:\d+: [1-9]\d* \//.test(
          document.querySelector('#calls tr[data-phone="1001"] .quality')?.textContent ?? '',
        ),
      undefined,
      { timeout: 5000 },
    );
    // The live call's SIP ladder: the setup as both nodes saw it, so far.
    await page.click('#calls tr[data-phone="1001"] button.ladder');
    await page.waitForSelector('#ladder tbody tr[data-node="cm2"][data-dir="out"] .first:has-text("INVITE")', {
      timeout: 5000,
    });
    await page.waitForSelector('#ladder tbody tr[data-node="cm1"][data-dir="in"] .first:has-text("INVITE")');
  });

  it('finds the ended call in the history: one row, both parties, its talk time, the transcoder and its node; CSV of the same search', async () => {
    const [a] = phones;
    await a!.command('hangup');
    await page.fill('#history-number', '2001');
    await page.waitForFunction(
      async () => {
        (document.querySelector('#history-form button[type=submit]') as HTMLButtonElement).click();
        await new Promise((r) => setTimeout(r, 300));
        return document.querySelectorAll('#history tbody tr[data-phones="1001 2001"]').length === 1;
      },
      undefined,
      { timeout: 8000 },
    );
    assert.equal((await page.$$('#history tbody tr')).length, 1, 'one row per call');
    assert.equal(await page.textContent('#history tr[data-phones="1001 2001"] .parties'), '1001 → 2001');
    assert.equal(await page.textContent('#history tr[data-phones="1001 2001"] .answered'), 'yes');
    assert.match(
      (await page.textContent('#history tr[data-phones="1001 2001"] .devices')) ?? '',
      /transcoder XCODE3 on cm3/,
    );
    assert.match((await page.textContent('#history tr[data-phones="1001 2001"] .duration')) ?? '', /^0:\d\d$/);
    // What the transcoder's legs received of the phones' audio (from its answer to release).
    assert.match(
      (await page.textContent('#history tr[data-phones="1001 2001"] .quality')) ?? '',
      /^\d+ lost of [1-9]\d*, jitter ≤ \d+\.\d ms$/,
    );
    // Its SIP ladder: both nodes' messages, the INVITE taken by 1001's node and the one 2001's node sent, no Digest response.
    await page.click('#history tr[data-phones="1001 2001"] button.ladder');
    await page.waitForSelector('#ladder-head:has-text("messages")');
    const ladder = await page.$$eval('#ladder tbody tr', (rows) =>
      rows.map(
        (r) =>
          `${r.getAttribute('data-node')} ${r.getAttribute('data-dir')} ${r.querySelector('.first')?.textContent?.split(' ')[0]}`,
      ),
    );
    assert.ok(
      ladder.includes('cm1 in INVITE') && ladder.includes('cm2 out INVITE') && ladder.some((l) => /BYE$/.test(l)),
      ladder.join(', '),
    );
    const texts = await page.$$eval('#ladder pre.sip', (ps) => ps.map((p) => p.textContent ?? '').join('\n'));
    assert.match(texts, /response="\[redacted\]"/);
    assert.doesNotMatch(texts, /response="?[0-9a-f]{32}/i);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#history-csv')]);
    const csv = readFileSync((await download.path())!, 'utf8');
    assert.equal(csv.trim().split('\r\n').length, 3, 'a header and the two halves');
    await page.fill('#history-number', '9999');
    await page.click('#history-form button[type=submit]');
    await page.waitForSelector('#history-head:has-text("0 calls")');
  });

  it('finds a registered phone: where, from which address and transport, since when, its user agent; the filters narrow the list', async () => {
    const row = '#phones tr[data-phone="1001"]';
    await page.waitForSelector(`${row}.registered`, { timeout: 8000 });
    assert.equal(await page.textContent(`${row} .where`), 'cm1');
    assert.match((await page.textContent(`${row} .from`)) ?? '', /^127\.0\.0\.1:\d+ \(UDP\)$/);
    assert.match((await page.textContent(`${row} .ua`)) ?? '', /baresip/i, "the phone's own User-Agent");
    assert.match((await page.textContent(`${row} .codecs`)) ?? '', /PCMU \(config\)/);
    await page.fill('#phones-filter', 'baresip');
    await page.waitForFunction(() => document.querySelectorAll('#phones tbody tr').length === 2);
    await page.fill('#phones-filter', '');
    await page.selectOption('#phones-state', 'unregistered');
    await page.waitForFunction(() => document.querySelectorAll('#phones tbody tr').length === 0);
    await page.selectOption('#phones-state', 'all');
    assert.match((await page.textContent('#phones-head')) ?? '', /^2 of 2 registered/);
  });

  it('turns a node "down" within the liveness timeout when it dies, and logs it', async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
    await cluster.crash('cm3');
    const t0 = Date.now();
    await page.waitForSelector('#nodes tr[data-node="cm3"] .state:has-text("down")', { timeout: 4000 });
    assert.ok(Date.now() - t0 < 1000 + 2500, 'within node_down_after_ms and a refresh');
    await page.waitForSelector('#events li[data-kind="node_down"]:has-text("cm3 down")');
    // Each event has its date, not only a time of day; the filter narrows the log and survives live updates.
    const when = await page.getAttribute('#events li[data-kind="node_down"] time', 'datetime');
    assert.ok(when && Math.abs(Date.parse(when) - Date.now()) < 60_000, `datetime ${when}`);
    assert.match(
      (await page.textContent('#events li[data-kind="node_down"] time')) ?? '',
      new RegExp(String(new Date().getFullYear())),
    );
    await page.fill('#events-filter', 'node_down');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#events li')].every((li) => li.getAttribute('data-kind') === 'node_down'),
    );
    assert.ok((await page.$$('#events li')).length >= 1);
    await page.fill('#events-filter', 'no such event anywhere');
    await page.waitForFunction(() => document.querySelectorAll('#events li').length === 0);
    await page.fill('#events-filter', '');
    // "OOR" is spelled out: units in use and refusals, with a title saying what they are.
    assert.match(
      (await page.textContent('#resources [data-device="CFB2"] .count')) ?? '',
      /\d+\/8 in use · \d+ refused/,
    );
    assert.match(
      (await page.getAttribute('#resources [data-device="CFB2"] .count', 'title')) ?? '',
      /out of resources/,
    );
  });

  it('an operator token is not needed to watch, and the API refuses the console routes without a token', async () => {
    assert.equal((await fetch(`${url}/api/cluster`)).status, 401);
    assert.equal((await fetch(`${url}/api/cluster/stream`)).status, 401);
    assert.equal((await adminFetch(`${url}/api/cluster`, {}, VIEWER_TOKEN)).status, 200);
  });

  it('a viewer token cannot take every live-stream slot: four per token, and an operator still gets one', async () => {
    const open: AbortController[] = [];
    const follow = async (token: string) => {
      const c = new AbortController();
      const res = await adminFetch(`${url}/api/cluster/stream`, { signal: c.signal }, token);
      if (res.status === 200) open.push(c);
      else c.abort();
      return res.status;
    };
    try {
      const viewer: number[] = [];
      for (let i = 0; i < 6; i++) viewer.push(await follow(VIEWER_TOKEN));
      // (the page above may follow with the viewer token too)
      const ok = viewer.filter((st) => st === 200).length;
      assert.ok(ok >= 3 && ok <= 4, `viewer: ${viewer.join(', ')}`);
      assert.ok(viewer.slice(-2).every((st) => st === 503));
      assert.equal(await follow(OPERATOR_TOKEN), 200, 'the operator follows');
    } finally {
      for (const c of open) c.abort();
    }
  });

  it('an operator changes the configuration in the page (a bad value named as typed, a good one applied on every node), rolls it back, drains a device, acknowledges alarms and signs out; a viewer sees none of it', async () => {
    // The viewer's page has no write actions.
    assert.equal(await page.isVisible('#config-section'), false);
    assert.equal(await page.$$('#resources button.drain').then((b) => b.length), 0);
    const op = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    op.on('dialog', (d) => void d.accept());
    const shots = process.env.TANDEM_ARTIFACTS ?? mkdtempSync(join(tmpdir(), 'tandem-console-shots-'));
    try {
      await op.goto(`${url}/console`);
      await op.fill('#token', OPERATOR_TOKEN);
      await op.click('#signin-form button');
      await op.waitForSelector('#config-section:not([hidden])');
      await op.waitForFunction(() =>
        (document.querySelector('#config-text') as HTMLTextAreaElement).value.includes('CFB2'),
      );
      const before = cluster.node('cm1').model.version;
      await op.waitForSelector('#config-status:has-text("the running version")');
      const text = await op.inputValue('#config-text');
      // A bad value: named with its path as it is typed, and nothing to apply.
      await op.fill('#config-text', text.replace('capacity: 8', 'capacity: eight'));
      await op.waitForSelector('#config-problems li[data-path="media_resources.CFB2.capacity"]');
      assert.equal(await op.isDisabled('#config-apply'), true);
      assert.equal(await op.getAttribute('#config-text', 'aria-invalid'), 'true');
      // A good one: what each node would do, the diff, then applied on every node.
      await op.fill('#config-text', text.replace('capacity: 8', 'capacity: 10'));
      await op.waitForSelector('#config-changes [data-node="cm2"] li');
      assert.match((await op.textContent('#config-diff')) ?? '', /\+.*capacity: 10/);
      await op.screenshot({ path: join(shots, 'console-config-1366.png'), fullPage: true });
      await op.click('#config-apply');
      // (cm3 died in an earlier case: it is reported down, and runs its own file when it starts)
      await op.waitForSelector('#config-result:has-text("cm2 applied")');
      assert.match((await op.textContent('#config-result')) ?? '', /cm1 applied, cm2 applied, cm3 down/);
      const after = cluster.node('cm2').model.version;
      assert.notEqual(after, before);
      for (const n of ['cm1', 'cm2']) assert.equal(cluster.node(n).model.version, after, n);
      await op.waitForSelector('#resources [data-device="CFB2"] .count:has-text("/10 in use")');
      await op.waitForSelector(`#config-versions tr[data-version="${before}"] button.rollback`);
      // The event log names the operator.
      await op.waitForSelector('#events li:has-text("by test-operator")');
      // Roll back (confirmed in a dialog): every node runs the first version again.
      await op.click(`#config-versions tr[data-version="${before}"] button.rollback`);
      await op.waitForSelector('#config-result:has-text("rolled back to")');
      for (const n of ['cm1', 'cm2']) assert.equal(cluster.node(n).model.version, before, n);
      await op.waitForSelector('#resources [data-device="CFB2"] .count:has-text("/8 in use")');
      // Drain and undrain a device of another node (confirmed), as the device's own node reports it.
      await op.click('#resources [data-device="CFB2"] button.drain');
      await op.waitForSelector('#resources [data-device="CFB2"].draining');
      assert.equal(await op.textContent('#resources [data-device="CFB2"] button.drain'), 'Undrain');
      await op.click('#resources [data-device="CFB2"] button.drain');
      await op.waitForSelector('#resources [data-device="CFB2"]:not(.draining)');
      await op.screenshot({ path: join(shots, 'console-operator-1366.png'), fullPage: true });
      // Alarms: cm3 died earlier (seen down by cm1 and cm2: one alarm); CFB2 filled to 80 % raises one of its own.
      await op.waitForSelector('#alarms tr[data-alarm="node_down:cm3"]:has-text("cm1, cm2")');
      const held: string[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await adminFetch(`${url}/api/allocations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ phone: '1001', type: 'conference_bridge' }),
        });
        assert.equal(r.status, 201);
        held.push(((await r.json()) as { id: string }).id);
      }
      const busy = '#alarms tr[data-alarm="device_busy:CFB2"]';
      await op.waitForSelector(`${busy}.open:has-text("7/8")`);
      await page.waitForSelector(busy);
      assert.equal((await page.$$(`${busy} button.ack`)).length, 0, 'a viewer cannot acknowledge');
      await op.click(`${busy} button.ack`);
      await op.waitForSelector(`${busy} .state:has-text("standing, acknowledged by test-operator")`);
      for (const id of held)
        assert.equal((await adminFetch(`${url}/api/allocations/${id}`, { method: 'DELETE' })).status, 204);
      await op.waitForSelector(busy, { state: 'detached' });
      // Acknowledged on every node that raised it.
      const ack = await adminFetch(`${url}/api/alarms/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'node_down:cm3' }),
      });
      assert.deepEqual(((await ack.json()) as { acknowledged_on: string[] }).acknowledged_on, ['cm1', 'cm2']);
      await op.waitForSelector(
        '#alarms tr[data-alarm="node_down:cm3"] .state:has-text("acknowledged by test-operator")',
      );
      await op.screenshot({ path: join(shots, 'console-alarms-1366.png'), fullPage: true });
      // Force-release an allocation another node holds, from this node (the console's release of a call's device):
      // the token is checked there, a viewer's refused, the release in the event log with the operator's name.
      const cm2Url = cluster.node('cm2').admin!.url!;
      const taken = await adminFetch(`${cm2Url}/api/allocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ phone: '2001', type: 'conference_bridge' }),
      });
      assert.equal(taken.status, 201);
      const id = ((await taken.json()) as { id: string }).id;
      const remote = (token?: string) =>
        adminFetch(`${url}/api/allocations/${id}?force=true&node=cm2`, { method: 'DELETE' }, token);
      assert.equal((await remote(VIEWER_TOKEN)).status, 403);
      assert.equal((await remote()).status, 204);
      assert.equal((await remote()).status, 404, 'gone');
      const left = (await (await adminFetch(`${cm2Url}/api/allocations`)).json()) as Array<{ id: string }>;
      assert.ok(!left.some((x) => x.id === id));
      await op.waitForSelector('#events li:has-text("released by test-operator")');
      await op.setViewportSize({ width: 390, height: 900 });
      const width = await op.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `the operator's page is ${width} px wide at 390`);
      await op.screenshot({ path: join(shots, 'console-operator-390.png'), fullPage: true });
      // Sign out: the page goes back to its sign-in form, and the token is not kept for a reload.
      await op.click('#signout');
      await op.waitForSelector('#signin:not([hidden])');
      assert.equal(await op.isVisible('#app'), false);
      await op.reload();
      await op.waitForSelector('#signin:not([hidden])');
      assert.equal(await op.isVisible('#app'), false, 'signed out stays signed out');
      assert.equal(await op.evaluate(() => sessionStorage.length), 0);
    } finally {
      await op.close();
    }
  });
});
