// Checks that relate sections of the config to each other. Each problem is a
// ConfigProblem with a dotted path so the operator can find it in the YAML.
import { didYouMean } from './didYouMean.ts';
import { matchesDialPattern } from './dialPattern.ts';
import type { TandemConfig } from './schema.ts';

export interface ConfigProblem {
  path: string;
  message: string;
}

export function formatPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

export function crossCheck(cfg: TandemConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: PropertyKey[], message: string) => problems.push({ path: formatPath(path), message });
  const nodes = new Set(Object.keys(cfg.nodes));

  if (cfg.cluster.node_down_after_ms < 2 * cfg.cluster.heartbeat_ms) {
    add(['cluster', 'node_down_after_ms'], `must be at least twice heartbeat_ms (${cfg.cluster.heartbeat_ms})`);
  }
  for (const [name, node] of Object.entries(cfg.nodes)) {
    if (node.bus && cfg.cluster.bus === 'memory')
      add(
        ['nodes', name, 'bus'],
        'a node of an in-memory cluster has no NATS servers of its own (cluster.bus is memory)',
      );
  }
  if (cfg.cluster.node_dead_after_ms < cfg.cluster.node_down_after_ms) {
    add(['cluster', 'node_dead_after_ms'], `must be at least node_down_after_ms (${cfg.cluster.node_down_after_ms})`);
  }

  if (cfg.sip.min_expires > cfg.sip.max_expires) {
    add(['sip', 'min_expires'], `must not exceed max_expires (${cfg.sip.max_expires})`);
  }

  const seenAddr = new Map<string, string>();
  for (const [name, node] of Object.entries(cfg.nodes)) {
    for (const key of ['sip', 'sip_tls', 'admin'] as const) {
      const addr = node[key];
      if (addr === undefined) continue;
      const other = seenAddr.get(addr);
      if (other) add(['nodes', name, key], `address ${addr} is already used by ${other}`);
      else seenAddr.set(addr, `nodes.${name}.${key}`);
    }
  }

  // Two nodes on one address (one machine) with overlapping RTP port ranges would fight over the ports.
  const rtpRanges: Array<{ node: string; address: string; lo: number; hi: number }> = [];
  for (const [name, node] of Object.entries(cfg.nodes)) {
    if (!node.rtp) continue;
    const [lo, hi] = node.rtp.ports.split('-').map(Number) as [number, number];
    const clash = rtpRanges.find((r) => r.address === node.rtp!.address && lo <= r.hi && r.lo <= hi);
    if (clash)
      add(
        ['nodes', name, 'rtp', 'ports'],
        `${node.rtp.ports} overlaps ${clash.node}'s ${clash.lo}-${clash.hi} on ${node.rtp.address}`,
      );
    rtpRanges.push({ node: name, address: node.rtp.address, lo, hi });
  }

  for (const [name, r] of Object.entries(cfg.media_resources)) {
    if (!nodes.has(r.node))
      add(['media_resources', name, 'node'], `unknown node "${r.node}"${didYouMean(r.node, nodes)}`);
    if (r.codecs && r.type !== 'transcoder') add(['media_resources', name, 'codecs'], 'only a transcoder has codecs');
    if (r.type === 'transcoder' && (!r.codecs || r.codecs.length < 2)) {
      add(['media_resources', name, 'codecs'], 'a transcoder needs at least two codecs');
    }
    if (r.audio_sources && r.type !== 'moh')
      add(['media_resources', name, 'audio_sources'], 'only a moh server has audio_sources');
    if (r.prompts && r.type !== 'annunciator')
      add(['media_resources', name, 'prompts'], 'only an annunciator has prompts');
    if (r.type === 'moh' && (!r.audio_sources || Object.keys(r.audio_sources).length === 0)) {
      add(['media_resources', name, 'audio_sources'], 'a moh server needs at least one audio source');
    }
    if (r.dtmf && r.type !== 'mtp') add(['media_resources', name, 'dtmf'], 'only an mtp has dtmf');
  }

  for (const [name, g] of Object.entries(cfg.media_resource_groups)) {
    const inGroup = new Set<string>();
    g.devices.forEach((dev, i) => {
      const path = ['media_resource_groups', name, 'devices', i];
      const r = cfg.media_resources[dev];
      if (!r) return add(path, `unknown media resource "${dev}"${didYouMean(dev, Object.keys(cfg.media_resources))}`);
      if (inGroup.has(dev)) add(path, `device "${dev}" is listed twice`);
      inGroup.add(dev);
      if (g.location && r.location !== g.location) {
        add(
          path,
          `device "${dev}" is located ${r.location ? `"${r.location}"` : 'nowhere'}, but the group is limited to "${g.location}"`,
        );
      }
    });
  }

  for (const [name, groups] of Object.entries(cfg.media_resource_group_lists)) {
    const seen = new Set<string>();
    groups.forEach((grp, i) => {
      const path = ['media_resource_group_lists', name, i];
      if (!cfg.media_resource_groups[grp])
        add(path, `unknown group "${grp}"${didYouMean(grp, Object.keys(cfg.media_resource_groups))}`);
      else if (seen.has(grp)) add(path, `group "${grp}" is listed twice`);
      seen.add(grp);
    });
  }

  // An audio source for user hold must be played by at least one MOH server.
  const sources = new Set(
    Object.values(cfg.media_resources)
      .filter((r) => r.type === 'moh')
      .flatMap((r) => Object.keys(r.audio_sources ?? {}).map(Number)),
  );
  const checkSource = (path: Array<string | number>, id: number | undefined) => {
    if (id !== undefined && !sources.has(id)) add(path, `no moh server has audio source ${id}`);
  };
  for (const [name, pool] of Object.entries(cfg.device_pools)) {
    if (pool.mrgl && !cfg.media_resource_group_lists[pool.mrgl]) {
      add(
        ['device_pools', name, 'mrgl'],
        `unknown media resource group list "${pool.mrgl}"${didYouMean(pool.mrgl, Object.keys(cfg.media_resource_group_lists))}`,
      );
    }
    checkSource(['device_pools', name, 'moh_audio_source'], pool.moh_audio_source);
    checkSource(['device_pools', name, 'network_hold_audio_source'], pool.network_hold_audio_source);
    (pool.call_managers ?? []).forEach(
      (n, i) =>
        nodes.has(n) || add(['device_pools', name, 'call_managers', i], `unknown node "${n}"${didYouMean(n, nodes)}`),
    );
  }

  for (const [num, phone] of Object.entries(cfg.phones)) {
    if (!nodes.has(phone.node))
      add(['phones', num, 'node'], `unknown node "${phone.node}"${didYouMean(phone.node, nodes)}`);
    (phone.call_managers ?? []).forEach(
      (n, i) => nodes.has(n) || add(['phones', num, 'call_managers', i], `unknown node "${n}"${didYouMean(n, nodes)}`),
    );
    if (!cfg.device_pools[phone.device_pool])
      add(
        ['phones', num, 'device_pool'],
        `unknown device pool "${phone.device_pool}"${didYouMean(phone.device_pool, Object.keys(cfg.device_pools))}`,
      );
    if (phone.mrgl && !cfg.media_resource_group_lists[phone.mrgl]) {
      add(
        ['phones', num, 'mrgl'],
        `unknown media resource group list "${phone.mrgl}"${didYouMean(phone.mrgl, Object.keys(cfg.media_resource_group_lists))}`,
      );
    }
    const conf = cfg.sip.conference_numbers.findIndex((p) => matchesDialPattern(p, num));
    if (conf >= 0)
      add(
        ['phones', num],
        `${num} is also a conference number (sip.conference_numbers[${conf}] "${cfg.sip.conference_numbers[conf]}"): calls to it would reach the bridge, never the phone`,
      );
    checkSource(['phones', num, 'moh_audio_source'], phone.moh_audio_source);
    checkSource(['phones', num, 'network_hold_audio_source'], phone.network_hold_audio_source);
    if (phone.busy_trigger > phone.max_calls)
      add(
        ['phones', num, 'busy_trigger'],
        `busy_trigger ${phone.busy_trigger} is more than max_calls ${phone.max_calls}`,
      );
  }
  const adhoc = cfg.sip.adhoc_conference_number;
  if (adhoc !== undefined && cfg.phones[adhoc])
    add(['sip', 'adhoc_conference_number'], `${adhoc} is also a phone's number`);
  checkTrunks(cfg, nodes, add);
  return problems;
}

/** Trunks and the dial plan: what they name exists, and a partition a phone may dial is one some route pattern is in. */
function checkTrunks(
  cfg: TandemConfig,
  nodes: ReadonlySet<string>,
  add: (path: PropertyKey[], message: string) => void,
): void {
  const sipAddresses = new Set(Object.values(cfg.nodes).flatMap((n) => [n.sip, ...(n.sip_tls ? [n.sip_tls] : [])]));
  for (const [name, t] of Object.entries(cfg.trunks)) {
    t.nodes.forEach(
      (n, i) => nodes.has(n) || add(['trunks', name, 'nodes', i], `unknown node "${n}"${didYouMean(n, nodes)}`),
    );
    if (!cfg.device_pools[t.device_pool])
      add(
        ['trunks', name, 'device_pool'],
        `unknown device pool "${t.device_pool}"${didYouMean(t.device_pool, Object.keys(cfg.device_pools))}`,
      );
    if (t.mrgl && !cfg.media_resource_group_lists[t.mrgl]) {
      add(
        ['trunks', name, 'mrgl'],
        `unknown media resource group list "${t.mrgl}"${didYouMean(t.mrgl, Object.keys(cfg.media_resource_group_lists))}`,
      );
    }
    if (t.tls_ca !== undefined && t.transport !== 'tls')
      add(['trunks', name, 'tls_ca'], `tls_ca is for transport: tls (this trunk uses ${t.transport})`);
    t.peers.forEach(
      (p, i) =>
        sipAddresses.has(p) &&
        add(['trunks', name, 'peers', i], `${p} is a node's own SIP address: a trunk leads out of the cluster`),
    );
    // Calls in are told apart by the address they come from.
    for (const [other, o] of Object.entries(cfg.trunks)) {
      if (other >= name || !o.nodes.some((n) => t.nodes.includes(n))) continue;
      t.peers.forEach(
        (p, i) =>
          o.peers.includes(p) &&
          add(
            ['trunks', name, 'peers', i],
            `${p} is also a peer of trunk ${other} on a node both use: calls in could not be told apart`,
          ),
      );
    }
    for (const [did, phone] of Object.entries(t.inbound)) {
      if (!cfg.phones[phone])
        add(['trunks', name, 'inbound', did], `unknown phone "${phone}"${didYouMean(phone, Object.keys(cfg.phones))}`);
    }
  }
  const partitions = new Set<string>();
  const seen = new Map<string, number>();
  cfg.dial_plan.route_patterns.forEach((r, i) => {
    if (r.partition) partitions.add(r.partition);
    r.route.forEach(
      (t, j) =>
        cfg.trunks[t] ||
        add(
          ['dial_plan', 'route_patterns', i, 'route', j],
          `unknown trunk "${t}"${didYouMean(t, Object.keys(cfg.trunks))}`,
        ),
    );
    const key = `${r.pattern} ${r.partition ?? ''}`;
    const before = seen.get(key);
    if (before !== undefined)
      add(
        ['dial_plan', 'route_patterns', i, 'pattern'],
        `"${r.pattern}" is already route_patterns[${before}]${r.partition ? ` in partition ${r.partition}` : ''}`,
      );
    else seen.set(key, i);
  });
  const checkPartitions = (path: PropertyKey[], list: readonly string[] | undefined) =>
    list?.forEach(
      (p, i) =>
        partitions.has(p) || add([...path, i], `no route pattern is in partition "${p}"${didYouMean(p, partitions)}`),
    );
  for (const [name, pool] of Object.entries(cfg.device_pools))
    checkPartitions(['device_pools', name, 'partitions'], pool.partitions);
  for (const [num, phone] of Object.entries(cfg.phones))
    checkPartitions(['phones', num, 'partitions'], phone.partitions);
}
