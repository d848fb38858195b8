// Tandem's console: signs in with an admin token (kept for this tab only),
// follows the cluster's live snapshot (server-sent events read through
// fetch, so the token travels in the Authorization header, never in a URL),
// and draws it. Everything shown goes in through textContent: data from the
// cluster is never parsed as HTML.

// The API's own types (the console is checked against them: tsc -p console/jsconfig.json).
/** @typedef {import('../src/admin/clusterView.ts').ClusterSnapshot} ClusterSnapshot */
/** @typedef {import('../src/admin/views.ts').ConfigCheckView} ConfigCheckView */
/** @typedef {import('../src/admin/views.ts').ApplyView} ApplyView */
/** @typedef {import('../src/admin/views.ts').ApiError} ApiError */
/** @typedef {import('../src/config/configVersions.ts').ConfigVersionView} ConfigVersionView */
/** @typedef {import('../src/cluster/messages.ts').CallDetailRecord} CallDetailRecord */
/** @typedef {import('../src/admin/views.ts').PhoneView} PhoneView */
/** @typedef {import('../src/mrm/trace.ts').Trace} Trace */

const TOKEN_KEY = 'tandem-admin-token';
const RANGE_S = { hour: 3600, day: 86_400 };
/** What a caught error says. */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/** An element of the page by id (the page is ours: a missing id is a bug, said at once). */
const $ = (id) => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e;
};
/** A form field of the page by id. */
const field = (id) => /** @type {HTMLInputElement} */ ($(id));
/** A table of the page by id. */
const table = (id) => /** @type {HTMLTableElement} */ ($(id));

/** Elements by tag with text and attributes; children appended. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

/** The button that opens a call's SIP ladder. */
function ladderButton(call, open) {
  const b = el('button', {
    type: 'button',
    class: 'ladder',
    text: 'ladder',
    'aria-label': `SIP ladder of call ${call}`,
  });
  b.addEventListener('click', open);
  return b;
}

/** m:ss of a number of seconds. */
function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Halves of calls (live or recorded) grouped by their call, in first-seen order. */
function byCallId(halves) {
  const m = new Map();
  for (const h of halves) m.set(h.call, [...(m.get(h.call) ?? []), h]);
  return m;
}

class Api {
  constructor(token) {
    this.token = token;
  }

  async get(path) {
    const r = await fetch(path, { headers: { authorization: `Bearer ${this.token}` } });
    if (r.status === 401) throw new SignedOut();
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ?? `${r.status}`);
    return body;
  }

  /** A write: its status and body (a refusal's body names what was wrong: the caller shows it). */
  async post(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    if (r.status === 401) throw new SignedOut();
    return { status: r.status, ok: r.ok, body: await r.json().catch(() => ({})) };
  }

  /** Follows an event stream; calls onEvent(name, data) per event until the stream ends. */
  async follow(path, onEvent, signal) {
    const r = await fetch(path, { headers: { authorization: `Bearer ${this.token}` }, signal });
    if (r.status === 401) throw new SignedOut();
    if (!r.ok || !r.body) throw new Error(`stream: ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let name = 'message';
        let data = '';
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data) onEvent(name, JSON.parse(data));
      }
    }
  }
}

class SignedOut extends Error {}

/** One small chart per device, with its axes: its use over the last hour (live), or the last day (minute peaks). */
class Charts {
  constructor() {
    this.series = new Map(); // device -> { t: [], v: [], plot, capacity }
    /** @type {'hour' | 'day'} */
    this.range = 'hour';
  }

  /** Starts again from a node's history (`range` as it covers). */
  seed(history, range = this.range) {
    this.range = range;
    for (const s of this.series.values()) s.plot?.destroy();
    this.series.clear();
    for (const [device, samples] of Object.entries(history)) {
      const s = this.get(device);
      for (const [t, v] of samples) this.push(s, t / 1000, v);
    }
  }

  get(device) {
    let s = this.series.get(device);
    if (!s) this.series.set(device, (s = { t: [], v: [], plot: undefined, mount: undefined }));
    return s;
  }

  push(s, t, v) {
    if (s.t.length && t <= s.t[s.t.length - 1]) return;
    s.t.push(t);
    s.v.push(v);
    while (s.t.length && s.t[0] < t - RANGE_S[this.range]) {
      s.t.shift();
      s.v.shift();
    }
  }

  /** Adds the snapshot's point and redraws the chart in `mount` (uPlot, when loaded). */
  draw(device, at, active, capacity, mount) {
    const s = this.get(device);
    // (the day's chart is of minute peaks: it is read again each minute, not drawn from live points)
    if (active !== null && this.range === 'hour') this.push(s, at / 1000, active);
    if (typeof uPlot === 'undefined') return;
    if (!s.plot || s.mount !== mount) {
      mount.replaceChildren();
      s.mount = mount;
      const axis = { stroke: '#888', grid: { stroke: 'rgba(128,128,128,.2)', width: 1 }, ticks: { show: false } };
      s.plot = new uPlot(
        {
          width: 320,
          height: 110,
          legend: { show: false },
          cursor: { show: false },
          axes: [
            { ...axis, size: 28 },
            { ...axis, size: 32, label: '', values: (_u, ticks) => ticks.map((x) => String(Math.round(x))) },
          ],
          scales: { x: { time: true }, y: { range: [0, Math.max(1, capacity)] } },
          series: [{}, { stroke: '#2271b1', fill: 'rgba(34,113,177,.15)' }],
        },
        [s.t, s.v],
        mount,
      );
    } else s.plot.setData([s.t, s.v]);
  }
}

/** The text of a refusal from the API: its message and each problem with its path. */
function refusalText(body) {
  const problems = (body.problems ?? []).map((p) => `${p.path}: ${p.message}`);
  return [body.error ?? 'refused', ...problems].join('; ');
}

/**
 * The configuration editor (operators only): the running text, checked as
 * the operator types (problems with their paths, what each node would do, the
 * diff), applied to every node, and the versions the cluster ran with a roll
 * back to any of them.
 */
class ConfigEditor {
  constructor(api) {
    this.api = api;
    this.running = '';
    this.runningText = '';
    /** the version the text checks as (null: it does not) */
    this.checked = null;
    this.seq = 0;
    this.timer = undefined;
    this.text = /** @type {HTMLTextAreaElement} */ ($('config-text'));
  }

  async start() {
    this.text.addEventListener('input', () => {
      clearTimeout(this.timer);
      $('config-status').textContent = 'checking…';
      this.timer = setTimeout(() => void this.check(), 400);
    });
    $('config-apply').addEventListener('click', () => void this.apply());
    $('config-reset').addEventListener('click', () => void this.reset());
    await this.reset();
  }

  /** Whether the operator has changed the text (a new running version does not replace their work). */
  get edited() {
    return this.text.value !== this.runningText;
  }

  /** The running version's text in the editor, and the versions. */
  async reset() {
    const { version, text } = await this.api.get('/api/config/text');
    this.running = version;
    this.runningText = text;
    this.text.value = text;
    $('config-running').textContent = version;
    await Promise.all([this.check(), this.versions()]);
  }

  /** Another operator (or tandem apply) changed the running version: shown at once unless this one is editing. */
  follow(version) {
    if (version !== this.running && !this.edited) void this.reset();
  }

  async check() {
    const seq = ++this.seq;
    /** @type {ConfigCheckView} */
    const body = (await this.api.post('/api/config/check', { yaml: this.text.value })).body;
    if (seq !== this.seq) return; // an older check answering late
    this.checked = body.ok ? body.version : null;
    this.text.setAttribute('aria-invalid', body.ok ? 'false' : 'true');
    const problems = body.problems ?? [];
    $('config-problems').replaceChildren(
      ...problems.map((p) => el('li', { 'data-path': p.path, text: `${p.path}: ${p.message}` })),
    );
    const changed = (body.changes ?? []).filter((c) => c.changes.length);
    $('config-changes').replaceChildren(
      ...changed.map((c) =>
        el(
          'div',
          { class: 'node-changes', 'data-node': c.node },
          el('h4', { text: `${c.node} would` }),
          el('ul', {}, ...c.changes.map((x) => el('li', { text: x }))),
        ),
      ),
    );
    $('config-diff').textContent = body.diff ?? '';
    const same = body.ok && body.version === this.running;
    $('config-status').textContent = !body.ok
      ? `${problems.length} problem${problems.length === 1 ? '' : 's'}: not applicable as it is`
      : same
        ? 'valid: the running version'
        : `valid: version ${body.version}${changed.length ? '' : ' (no node would change anything it runs)'}`;
    /** @type {HTMLButtonElement} */ ($('config-apply')).disabled = !body.ok || same;
  }

  /**
   * Each node's outcome of an apply or a rollback, in one line each.
   * @param {string} what
   * @param {{ ok: boolean, body: ApplyView & ApiError }} res
   */
  showResult(what, res) {
    $('config-result').replaceChildren(
      el('span', {
        text: res.ok
          ? `${what} ${res.body.version} by ${res.body.by}: ${res.body.nodes.map((n) => `${n.node} ${n.status}`).join(', ')}`
          : `${what} refused: ${refusalText(res.body)}`,
      }),
    );
  }

  async apply() {
    if (!this.checked) return;
    $('config-result').textContent = 'applying…';
    const res = await this.api.post('/api/config', { yaml: this.text.value });
    this.showResult('applied', res);
    if (res.ok) await this.reset();
  }

  async rollback(version) {
    if (!window.confirm(`Roll the whole cluster back to version ${version}?`)) return;
    $('config-result').textContent = `rolling back to ${version}…`;
    const res = await this.api.post('/api/config/rollback', { version });
    this.showResult('rolled back to', res);
    if (res.ok) await this.reset();
  }

  async versions() {
    /** @type {ConfigVersionView[]} */
    const list = await this.api.get('/api/config/versions');
    table('config-versions').tBodies[0].replaceChildren(
      ...list.map((v) => {
        const at = new Date(v.applied_at);
        const action = v.running
          ? el('span', { text: 'running' })
          : el('button', {
              type: 'button',
              class: 'rollback',
              text: 'Roll back',
              'aria-label': `Roll back to ${v.version}`,
            });
        if (!v.running) action.addEventListener('click', () => void this.rollback(v.version));
        return el(
          'tr',
          { 'data-version': v.version },
          el('td', { text: v.version }),
          el('td', {}, el('time', { datetime: at.toISOString(), text: at.toLocaleString() })),
          el('td', { text: v.by }),
          el('td', {}, action),
        );
      }),
    );
  }
}

class Console {
  constructor(api) {
    this.api = api;
    this.charts = new Charts();
    this.rows = new Map(); // device -> row element
    this.abort = new AbortController();
  }

  /** A kind of device's name for people (from /api/kinds). */
  label(type) {
    return this.labels?.get(type) ?? type;
  }

  async start() {
    const [me, kinds, phones, mrgls, history] = await Promise.all([
      this.api.get('/api/whoami'),
      this.api.get('/api/kinds'),
      this.api.get('/api/phones'),
      this.api.get('/api/mrgls'),
      this.api.get('/api/cluster/history').catch(() => ({})),
    ]);
    this.charts.seed(history, 'hour');
    $('chart-range').addEventListener('change', () => void this.chartRange());
    // Write actions for operators only (the API refuses them to viewers anyway).
    this.operator = me.role === 'operator';
    for (const e of document.querySelectorAll('.operator-only')) /** @type {HTMLElement} */ (e).hidden = !this.operator;
    if (this.operator) {
      this.editor = new ConfigEditor(this.api);
      await this.editor.start();
    }
    this.renderMrgls(mrgls);
    $('explain-phone').replaceChildren(
      ...phones.map((p) =>
        el('option', { value: p.number, text: `${p.number} (${p.node}, MRGL ${p.mrgl ?? 'none'})` }),
      ),
    );
    this.labels = new Map(kinds.map((k) => [k.type, k.label]));
    $('explain-type').replaceChildren(...kinds.map((k) => el('option', { value: k.type, text: k.label })));
    $('events-filter').addEventListener('input', () => this.renderEvents(this.lastEvents ?? []));
    this.phones = phones;
    this.renderPhones();
    $('phones-filter').addEventListener('input', () => this.renderPhones());
    $('phones-state').addEventListener('change', () => this.renderPhones());
    $('phones-form').addEventListener('submit', (e) => e.preventDefault());
    // Registrations are not in the live snapshot: read again every few seconds.
    this.phonesTimer = setInterval(() => void this.refreshPhones(), 5000);
    $('history-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.history();
    });
    $('history-csv').addEventListener('click', () => void this.historyCsv());
    $('explain-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.explain(
        field('explain-phone').value,
        field('explain-type').value,
        field('explain-codecs').value.trim(),
        field('explain-srtp').checked,
      );
    });
    this.render(await this.api.get('/api/cluster'));
    void this.followForever();
  }

  stop() {
    this.abort.abort();
    clearInterval(this.phonesTimer);
    clearInterval(this.dayTimer);
  }

  /** The charts' range chosen: the last hour (live), or the last day (read again every minute). */
  async chartRange() {
    const range = /** @type {'hour' | 'day'} */ (/** @type {HTMLSelectElement} */ ($('chart-range')).value);
    clearInterval(this.dayTimer);
    try {
      this.charts.seed(await this.api.get(`/api/cluster/history?range=${range}`), range);
    } catch (err) {
      if (err instanceof SignedOut) return signOut('signed out: the token was refused');
    }
    if (range === 'day') this.dayTimer = setInterval(() => void this.chartRange(), 60_000);
  }

  async refreshPhones() {
    try {
      /** @type {PhoneView[]} */
      const phones = await this.api.get('/api/phones');
      this.phones = phones;
      this.renderPhones();
    } catch (err) {
      if (err instanceof SignedOut) signOut('signed out: the token was refused');
    }
  }

  /** Every phone with its registration, filtered by the search and the state chosen. */
  renderPhones() {
    const words = field('phones-filter').value.trim().toLowerCase();
    const state = /** @type {HTMLSelectElement} */ ($('phones-state')).value;
    /** @type {PhoneView[]} */
    const all = this.phones ?? [];
    const shown = all.filter((p) => {
      if (state === 'registered' && !p.sip_registration) return false;
      if (state === 'unregistered' && p.sip_registration) return false;
      if (!words) return true;
      const r = p.sip_registration;
      return [p.number, p.node, p.registered_at, p.device_pool, r?.user_agent, r?.address]
        .filter(Boolean)
        .some((x) => String(x).toLowerCase().includes(words));
    });
    const when = (ms) => {
      const d = new Date(ms);
      return el('time', { datetime: d.toISOString(), text: d.toLocaleString() });
    };
    table('phones').tBodies[0].replaceChildren(
      ...shown.map((p) => {
        const r = p.sip_registration;
        return el(
          'tr',
          { 'data-phone': p.number, class: r ? 'registered' : 'unregistered' },
          el('td', { text: p.number }),
          el('td', { class: 'where', text: r ? p.registered_at : `not registered (home ${p.node})` }),
          el('td', { class: 'from', text: r ? `${r.address}:${r.port} (${r.transport})` : '-' }),
          el('td', {}, r?.since ? when(r.since) : '-'),
          el('td', {}, r ? when(r.expires_at) : '-'),
          el('td', { class: 'ua', text: r?.user_agent ?? '-' }),
          el('td', { class: 'codecs', text: `${p.codecs.join(', ')} (${p.codecs_source})` }),
          el('td', { text: p.srtp }),
          el('td', { text: `${p.mrgl ?? 'none'} (${p.mrgl_source})` }),
        );
      }),
    );
    const registered = all.filter((p) => p.sip_registration).length;
    $('phones-head').textContent =
      `${registered} of ${all.length} registered${shown.length === all.length ? '' : `; ${shown.length} shown`}`;
  }

  /** The history form as an /api/cdrs query. */
  historyQuery(extra = {}) {
    const q = new URLSearchParams(extra);
    const number = field('history-number').value.trim();
    const since = field('history-since').value;
    const reason = field('history-reason').value.trim();
    if (number) q.set('number', number);
    if (since) q.set('since', new Date(since).toISOString());
    if (reason) q.set('reason', reason);
    return q.toString();
  }

  /** Searches the call detail records of every node; one row per call, its halves joined. */
  async history() {
    try {
      /** @type {{ records: CallDetailRecord[], missing: string[], archived: string[] }} */
      const { records, missing, archived } = await this.api.get(`/api/cdrs?${this.historyQuery()}`);
      const rows = [...byCallId(records)].map(([call, halves]) => {
        const caller = halves.find((h) => h.role === 'caller');
        const callee = halves.find((h) => h.role === 'callee');
        const parties = caller ? `${caller.party} → ${caller.far}` : `${callee.far} → ${callee.party}`;
        const answered = halves.map((h) => h.answered_at).find((t) => t !== null);
        const talk = Math.max(...halves.map((h) => h.duration_s));
        const devices = halves.flatMap((h) => h.resources.map((d) => `${d.type} ${d.resource} on ${d.node}`));
        const codecs = [...new Set(halves.flatMap((h) => [h.codec_party, h.codec_far]).filter(Boolean))];
        const started = new Date(Math.min(...halves.map((h) => h.started_at)));
        const legs = halves.flatMap((h) => h.quality ?? []);
        const quality = legs.length
          ? `${legs.reduce((n, q) => n + Math.max(0, q.lost), 0)} lost of ${legs.reduce((n, q) => n + q.received, 0)}, jitter ≤ ${Math.max(...legs.map((q) => q.jitter_ms)).toFixed(1)} ms`
          : '-';
        return el(
          'tr',
          { 'data-call': call, 'data-phones': [caller?.party, callee?.party].filter(Boolean).join(' ') },
          el('td', {}, el('time', { datetime: started.toISOString(), text: started.toLocaleString() })),
          el('td', { class: 'parties', text: parties }),
          el('td', { class: 'answered', text: answered ? 'yes' : 'no' }),
          el('td', { class: 'duration', text: formatDuration(talk) }),
          el('td', { class: 'reason', text: halves.map((h) => `${h.node}: ${h.reason}`).join('; ') }),
          el('td', { class: 'devices', text: devices.join(', ') || '-' }),
          el('td', { text: codecs.join(' / ') || '-' }),
          el('td', { class: 'quality', text: quality }),
          el(
            'td',
            {},
            ladderButton(call, () => void this.ladder(call, parties)),
          ),
        );
      });
      table('history').tBodies[0].replaceChildren(...rows);
      $('history-head').textContent =
        `${rows.length} call${rows.length === 1 ? '' : 's'}${archived.length ? ` (down, read from the cluster's archive: ${archived.join(', ')})` : ''}${missing.length ? ` (not answering, their records missing: ${missing.join(', ')})` : ''}`;
    } catch (err) {
      if (err instanceof SignedOut) return signOut('signed out: the token was refused');
      $('history-head').textContent = `search failed: ${messageOf(err)}`;
    }
  }

  /** A call's SIP ladder: every node's messages for it, oldest first, each opening to its text (secrets removed by the nodes). */
  async ladder(call, parties) {
    $('ladder-box').hidden = false;
    $('ladder-head').textContent = `SIP ladder of ${parties}: loading`;
    try {
      const { messages, missing } = await this.api.get(`/api/calls/${encodeURIComponent(call)}/ladder`);
      const t0 = messages[0]?.at ?? 0;
      const rows = messages.map((m) =>
        el(
          'tr',
          { 'data-node': m.node, 'data-dir': m.dir },
          el('td', { text: String(m.at - t0) }),
          el('td', { text: m.node }),
          el('td', {
            class: 'dir',
            text: m.dir === 'in' ? '←' : '→',
            'aria-label': m.dir === 'in' ? 'received from' : 'sent to',
          }),
          el('td', { text: m.peer }),
          el(
            'td',
            {},
            el(
              'details',
              {},
              el('summary', { class: 'first', text: m.first }),
              el('pre', { class: 'sip', text: m.text }),
            ),
          ),
        ),
      );
      table('ladder').tBodies[0].replaceChildren(...rows);
      $('ladder-head').textContent =
        `SIP ladder of ${parties}: ${rows.length} messages${missing.length ? ` (not answering: ${missing.join(', ')})` : ''}`;
    } catch (err) {
      if (err instanceof SignedOut) return signOut('signed out: the token was refused');
      $('ladder-head').textContent = `SIP ladder failed: ${messageOf(err)}`;
    }
  }

  /** Takes a device from a call (on the node of the call's half that holds it), after the operator confirms. */
  async release(allocation, node, device) {
    if (!window.confirm(`Release ${device} from this call? The call moves to another device, or ends if none is free.`))
      return;
    const r = await fetch(
      `/api/allocations/${encodeURIComponent(allocation)}?force=true&node=${encodeURIComponent(node)}`,
      { method: 'DELETE', headers: { authorization: `Bearer ${this.api.token}` } },
    );
    if (r.status === 401) return signOut('signed out: the token was refused');
    if (!r.ok) window.alert(`release of ${device} refused: ${refusalText(await r.json().catch(() => ({})))}`);
  }

  /** Drains a device (no new allocations; its calls keep it) or takes it back, after the operator confirms. */
  async drain(device, verb) {
    const question =
      verb === 'drain'
        ? `Drain ${device}? It takes no new allocations; the calls using it keep it.`
        : `Undrain ${device}? It takes allocations again.`;
    if (!window.confirm(question)) return;
    const res = await this.api.post(`/api/resources/${encodeURIComponent(device)}/${verb}`);
    if (!res.ok) window.alert(`${verb} of ${device} refused: ${refusalText(res.body)}`);
  }

  /** The same search as CSV, saved by the browser (fetched with the token, never put in a URL). */
  async historyCsv() {
    const r = await fetch(`/api/cdrs?${this.historyQuery({ format: 'csv' })}`, {
      headers: { authorization: `Bearer ${this.api.token}` },
    });
    if (r.status === 401) return signOut('signed out: the token was refused');
    if (!r.ok) return void ($('history-head').textContent = `export failed: ${r.status}`);
    const link = el('a', { href: URL.createObjectURL(await r.blob()), download: 'tandem-cdrs.csv' });
    link.click();
    URL.revokeObjectURL(link.href);
  }

  async followForever() {
    while (!this.abort.signal.aborted) {
      try {
        $('live').hidden = false;
        await this.api.follow(
          '/api/cluster/stream',
          (name, data) => name === 'snapshot' && this.render(data),
          this.abort.signal,
        );
      } catch (err) {
        if (err instanceof SignedOut) return signOut('signed out: the token was refused');
      }
      $('live').hidden = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  /** @param {ClusterSnapshot} snap */
  render(snap) {
    const up = snap.nodes.filter((n) => n.up).length;
    $('summary').textContent =
      `${up}/${snap.nodes.length} nodes up · ${snap.calls.length} call halves · config ${snap.config_version} · via ${snap.served_by}`;
    this.renderNodes(snap.nodes);
    this.renderResources(snap);
    this.renderCalls(snap.calls);
    this.renderTrunks(snap.trunks ?? []);
    this.renderAlarms(snap.alarms ?? []);
    this.renderEvents(snap.events);
    this.editor?.follow(snap.config_version);
  }

  /** Alarms not yet acknowledged, or still standing; operators acknowledge them (on every node that raised one). */
  /** @param {ClusterSnapshot['alarms']} alarms */
  renderAlarms(alarms) {
    const open = alarms.filter((a) => a.acked_by === null);
    $('alarms-head').textContent = alarms.length
      ? `${open.length} to acknowledge, ${alarms.length - open.length} acknowledged and still standing`
      : 'no alarms';
    table('alarms').tBodies[0].replaceChildren(
      ...alarms.map((a) => {
        const at = new Date(a.raised_at);
        const state = `${a.active ? 'standing' : 'over'}${a.count > 1 ? ` (${a.count} times)` : ''}${a.acked_by ? `, acknowledged by ${a.acked_by}` : ''}`;
        const cell = el('td');
        if (this.operator && a.acked_by === null) {
          const b = el('button', {
            type: 'button',
            class: 'ack',
            text: 'Acknowledge',
            'aria-label': `Acknowledge ${a.text}`,
          });
          b.addEventListener('click', () => void this.acknowledge(a.key));
          cell.append(b);
        }
        return el(
          'tr',
          { 'data-alarm': a.key, 'data-kind': a.kind, class: a.acked_by === null ? 'alarm open' : 'alarm' },
          el('td', {}, el('time', { datetime: at.toISOString(), text: at.toLocaleString() })),
          el('td', { class: 'text', text: a.text }),
          el('td', { text: a.nodes.join(', ') }),
          el('td', { class: 'state', text: state }),
          cell,
        );
      }),
    );
  }

  async acknowledge(key) {
    const res = await this.api.post('/api/alarms/ack', { key });
    if (!res.ok) window.alert(`not acknowledged: ${refusalText(res.body)}`);
  }

  /** Each trunk on each node that carries it: its peers as the keep-alive sees them, its registration, its calls. */
  /** @param {ClusterSnapshot['trunks']} trunks */
  renderTrunks(trunks) {
    const peer = (p) =>
      el(
        'span',
        {
          class: `peer badge ${p.up ? 'up' : 'down'}`,
          title: p.last_status === null ? 'not probed yet' : `last answer ${p.last_status || 'none'}`,
        },
        `${p.peer} ${p.up ? 'up' : 'down'}`,
      );
    const registration = (r) => (r === null ? '-' : `${r.state}${r.last_error ? ` (${r.last_error})` : ''}`);
    table('trunks').tBodies[0].replaceChildren(
      ...(trunks.length
        ? trunks.map((t) =>
            el(
              'tr',
              { 'data-trunk': t.trunk, 'data-node': t.node },
              el('td', { text: t.trunk }),
              el('td', { text: t.node }),
              el('td', { class: 'peers' }, ...t.peers.map(peer)),
              el('td', { class: 'registration', text: registration(t.registration) }),
              el('td', { class: 'trunk-calls', text: `${t.calls} / ${t.max_calls}` }),
            ),
          )
        : [el('tr', {}, el('td', { colspan: '5', text: 'no trunks' }))]),
    );
  }

  /** @param {ClusterSnapshot['nodes']} nodes */
  renderNodes(nodes) {
    table('nodes').tBodies[0].replaceChildren(
      ...nodes.map((n) =>
        el(
          'tr',
          { 'data-node': n.name },
          el('td', { text: n.name + (n.self ? ' (this node)' : '') }),
          el('td', {}, el('span', { class: `state badge ${n.up ? 'up' : 'down'}`, text: n.up ? 'up' : 'down' })),
          el('td', { text: n.boot ?? '' }),
          el('td', { class: 'config', text: n.config_version ?? '' }),
          el('td', { text: n.sip }),
          el('td', { text: n.admin }),
        ),
      ),
    );
  }

  /** @param {ClusterSnapshot} snap */
  renderResources(snap) {
    const root = $('resources');
    const byNode = new Map();
    for (const r of snap.resources) {
      if (!byNode.has(r.node)) byNode.set(r.node, []);
      byNode.get(r.node).push(r);
    }
    for (const [node, list] of byNode) {
      const found = root.querySelector(`[data-node-block="${CSS.escape(node)}"]`);
      const block = found ?? el('div', { class: 'node-block', 'data-node-block': node }, el('h3', { text: node }));
      if (!found) root.append(block);
      list.sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
      for (const r of list) {
        let row = this.rows.get(r.name);
        if (!row?.isConnected) {
          row = el(
            'div',
            { class: 'device', 'data-device': r.name },
            el('span', { class: 'name', text: r.name }),
            el('span', { class: 'type', text: this.label(r.type) }),
            el('progress', { max: r.capacity ?? 1, value: 0, 'aria-label': `${r.name} in use` }),
            el('span', { class: 'count' }),
            el('div', { class: 'chart' }),
          );
          if (this.operator) {
            const b = el('button', { type: 'button', class: 'drain' });
            b.addEventListener('click', () => void this.drain(r.name, b.dataset.verb ?? 'drain'));
            row.append(b);
          }
          block.append(row);
          this.rows.set(r.name, row);
        }
        const bar = row.querySelector('progress');
        bar.max = r.capacity ?? 1;
        bar.value = r.active ?? 0;
        row.dataset.active = String(r.active ?? '');
        row.classList.toggle('full', r.active !== null && r.active >= r.capacity);
        row.classList.toggle('draining', r.draining === true);
        row.classList.toggle('unregistered', !r.registered);
        const drainButton = /** @type {HTMLButtonElement | null} */ (row.querySelector('button.drain'));
        if (drainButton) {
          drainButton.dataset.verb = r.draining ? 'undrain' : 'drain';
          drainButton.textContent = r.draining ? 'Undrain' : 'Drain';
          drainButton.setAttribute('aria-label', `${r.draining ? 'Undrain' : 'Drain'} ${r.name}`);
        }
        const count = row.querySelector('.count');
        count.textContent =
          r.active === null ? 'no status' : `${r.active}/${r.capacity} in use · ${r.out_of_resources ?? 0} refused`;
        count.title =
          'units in use of its capacity; refused: allocation requests it answered "unavailable" because it was full (out of resources)';
        this.charts.draw(r.name, snap.at, r.active, r.capacity ?? 1, row.querySelector('.chart'));
      }
    }
  }

  /** @param {ClusterSnapshot['calls']} calls */
  renderCalls(calls) {
    // One row per call: its two halves (the caller's node and the callee's, one node or two) share the call id.
    const byCall = byCallId(calls);
    const duration = (ms) => formatDuration(ms / 1000);
    const now = Date.now();
    table('calls').tBodies[0].replaceChildren(
      ...[...byCall.values()].map((halves) => {
        halves.sort((a, b) => (a.role === 'caller' ? -1 : 1) - (b.role === 'caller' ? -1 : 1));
        const first = halves[0];
        const caller = halves.find((h) => h.role === 'caller');
        const callee = halves.find((h) => h.role === 'callee');
        const parties = first.conference
          ? `${first.phone} in conference ${first.conference.slice(0, 14)}`
          : `${caller?.phone ?? first.far} → ${callee?.phone ?? first.far}`;
        const nodes = [...new Set(halves.map((h) => h.node))].join(' → ');
        const since = Math.min(...halves.map((h) => h.since));
        const flags = (h) =>
          `${h.held ? ' (held)' : ''}${h.holding ? ' (holding)' : ''}${h.srtp?.phone ? ' (SRTP)' : ''}`;
        return el(
          'tr',
          { 'data-call': first.call, 'data-phone': first.phone, 'data-phones': halves.map((h) => h.phone).join(' ') },
          el(
            'td',
            {},
            `${first.call.slice(0, 8)} `,
            ladderButton(first.call, () => void this.ladder(first.call, parties)),
          ),
          el('td', { class: 'parties', text: parties }),
          el('td', { text: nodes }),
          el('td', { text: halves.map((h) => `${h.phone}: ${h.state}${flags(h)}`).join(', ') }),
          el(
            'td',
            {},
            el('time', { datetime: new Date(since).toISOString(), text: new Date(since).toLocaleTimeString() }),
          ),
          el('td', { class: 'duration', text: duration(now - since) }),
          el(
            'td',
            { class: 'resources' },
            ...halves.flatMap((c) =>
              c.resources.map((r) => {
                const line = el('div', {
                  'data-resource': r.resource,
                  text: `${r.type} ${r.resource} @ ${r.node} for ${c.phone} (${r.why})`,
                });
                if (this.operator) {
                  const b = el('button', {
                    type: 'button',
                    class: 'release',
                    text: 'release',
                    'aria-label': `Release ${r.resource} from this call`,
                  });
                  b.addEventListener('click', () => void this.release(r.allocation, c.node, r.resource));
                  line.append(' ', b);
                }
                return line;
              }),
            ),
          ),
          el(
            'td',
            { class: 'quality' },
            ...halves.flatMap((c) =>
              c.resources.flatMap((r) =>
                (c.legs[r.allocation] ?? []).map((l) =>
                  el('div', {
                    text: `${r.resource} ${l.local}: ${l.received} / ${l.sent} / ${l.lost} / ${l.jitter_ms} ms${l.far_fraction_lost !== null ? ` (far: ${(l.far_fraction_lost * 100).toFixed(1)}% lost)` : ''}${l.srtp ? ` ${l.srtp}${l.srtp_auth_failures + l.srtp_replays ? ` (${l.srtp_auth_failures} failed, ${l.srtp_replays} replayed)` : ''}` : ''}`,
                  }),
                ),
              ),
            ),
          ),
        );
      }),
    );
  }

  /** @param {ClusterSnapshot['events']} events */
  renderEvents(events) {
    this.lastEvents = events;
    // The filter (a node, a kind, words of the text) keeps its value across live updates.
    const filter = field('events-filter').value.trim().toLowerCase();
    const shown = events.filter((e) => !filter || `${e.node} ${e.kind} ${e.text}`.toLowerCase().includes(filter));
    $('events').replaceChildren(
      ...shown
        .slice(-100)
        .reverse()
        .map((e) =>
          el(
            'li',
            { 'data-kind': e.kind },
            // Date and time, and the machine-readable instant for anyone who copies it.
            el('time', { datetime: new Date(e.at).toISOString(), text: new Date(e.at).toLocaleString() }),
            ' ',
            el('span', { class: 'kind', text: `[${e.node}] ${e.kind}` }),
            ' ',
            e.text,
          ),
        ),
    );
  }

  renderMrgls(m) {
    const group = (g) =>
      el(
        'li',
        {},
        `${g.name}${g.location ? ` (location ${g.location})` : ''}${g.user_class ? ` (class ${g.user_class})` : ''}, ${g.policy}: `,
        g.devices.map((d) => `${d.name} [${d.type}]`).join(', '),
      );
    $('mrgls').replaceChildren(
      ...m.mrgls.map((l) =>
        el('div', { 'data-mrgl': l.name }, el('h3', { text: l.name }), el('ol', {}, ...l.groups.map(group))),
      ),
      el('div', {}, el('h3', { text: 'after every list: devices in no group' }), el('ol', {}, group(m.default_group))),
    );
  }

  async explain(phone, type, codecs = '', srtp = false) {
    $('explain-steps').replaceChildren();
    try {
      // (a phone of any node: the node serving the page asks the phone's own node)
      const q = new URLSearchParams({ phone, type });
      if (codecs) q.set('codecs', codecs);
      if (srtp) q.set('srtp', 'true');
      /** @type {Trace} */
      const t = await this.api.get(`/api/explain?${q}`);
      $('explain-head').textContent =
        `${t.type} for ${t.phone}: MRGL ${t.mrgl ?? 'none'} (${t.mrgl_source}), ${t.steps.length} step(s)`;
      $('explain-steps').replaceChildren(
        ...t.steps.map((s) =>
          el(
            'li',
            { 'data-verdict': s.verdict, 'data-device': s.device ?? '' },
            `${s.group}: ${s.device ?? '(none)'}${s.node ? ` on ${s.node}` : ''} `,
            el('span', { class: 'verdict', text: s.verdict }),
            s.detail ? ` ${s.detail}` : '',
          ),
        ),
      );
    } catch (err) {
      if (err instanceof SignedOut) return signOut('signed out: the token was refused');
      $('explain-head').textContent = `explain failed: ${messageOf(err)}`;
    }
  }
}

let running;

function signOut(why = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  running?.stop();
  running = undefined;
  $('app').hidden = true;
  $('signout').hidden = true;
  $('live').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = why;
}

async function signIn(token) {
  const api = new Api(token);
  try {
    await api.get('/api/nodes');
  } catch (err) {
    return signOut(err instanceof SignedOut ? 'that token is not valid here' : `sign-in failed: ${messageOf(err)}`);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  // The token leaves the page's form (and the tab order) once used; an old error goes with it.
  field('token').value = '';
  $('signin-error').textContent = '';
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  running = new Console(api);
  await running.start();
}

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn(field('token').value.trim());
});
$('signout').addEventListener('click', () => signOut());
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
