// A trace as a table for people (tandem explain).
import type { Trace } from '../mrm/trace.ts';

export function renderTrace(t: Trace): string {
  const head = `phone ${t.phone} needs a ${t.type}; MRGL ${t.mrgl ?? '(none)'} (from ${t.mrgl_source})`;
  const rows = t.steps.map((s, i) => [
    String(i + 1),
    s.group,
    s.device ?? '-',
    s.node ?? '',
    s.verdict,
    s.detail ?? '',
    s.ms === undefined ? '' : `${s.ms}`,
  ]);
  const header = ['#', 'group', 'device', 'node', 'verdict', 'detail', 'ms'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    r
      .map((v, c) => v.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  const chosen = t.steps.find((s) => s.verdict === 'allocated' || s.verdict === 'would_allocate');
  const outcome = chosen
    ? `=> ${chosen.verdict === 'allocated' ? 'allocated' : 'would allocate'} ${chosen.device} on ${chosen.node}`
    : `=> no ${t.type} available`;
  return [head, '', line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', outcome].join('\n');
}
