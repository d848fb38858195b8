// Call detail records as CSV for spreadsheets and billing tools (GET /api/cdrs?format=csv).
import type { CallDetailRecord } from '../cluster/messages.ts';

/** Records as CSV (RFC 4180), one line per half, for spreadsheets and billing tools. */
export function cdrCsv(records: readonly CallDetailRecord[]): string {
  const cols = [
    'call',
    'role',
    'node',
    'party',
    'far',
    'started_at',
    'answered_at',
    'ended_at',
    'duration_s',
    'reason',
    'resources',
    'codec_party',
    'codec_far',
    'srtp',
    'packets_lost',
    'max_jitter_ms',
  ] as const;
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : String(v);
    // (a leading =, +, - or @ would be a formula to a spreadsheet)
    const safe = /^[=+\-@]/.test(s) && !/^[+-]?\d/.test(s) ? `'${s}` : s;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const time = (t: number | null) => (t === null ? '' : new Date(t).toISOString());
  const rows = records.map((r) =>
    cols
      .map((c) => {
        if (c === 'started_at' || c === 'answered_at' || c === 'ended_at') return cell(time(r[c]));
        if (c === 'resources') return cell(r.resources.map((x) => `${x.type}:${x.resource}@${x.node}`).join(' '));
        // Quality as the half's device legs received it (empty: no device, the media went phone to phone).
        if (c === 'packets_lost') return cell(r.quality?.reduce((n, q) => n + Math.max(0, q.lost), 0));
        if (c === 'max_jitter_ms')
          return cell(r.quality?.length ? Math.max(...r.quality.map((q) => q.jitter_ms)) : undefined);
        return cell(r[c]);
      })
      .join(','),
  );
  return `${cols.join(',')}\r\n${rows.map((l) => `${l}\r\n`).join('')}`;
}
