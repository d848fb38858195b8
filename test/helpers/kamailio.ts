// Kamailio (Debian `kamailio`) as a carrier's SIP server for trunk tests:
// the test writes its script, this runs it in the foreground on loopback
// and kills it at the end.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type Proc } from './proc.ts';

const MODULES = ['tm', 'sl', 'rr', 'pv', 'maxfwd', 'textops', 'siputils', 'xlog', 'usrloc', 'registrar', 'auth'];

export class Kamailio {
  private constructor(
    private readonly proc: Proc,
    readonly port: number,
  ) {}

  /** Starts Kamailio listening on 127.0.0.1:`port` (and `more` ports; UDP) with `routes` as its request_route body. */
  static async start(port: number, routes: string, more: number[] = []): Promise<Kamailio> {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-kamailio-'));
    const cfg = [
      '#!KAMAILIO',
      'debug=2',
      'log_stderror=yes',
      'children=2',
      ...[port, ...more].map((p) => `listen=udp:127.0.0.1:${p}`),
      'mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"',
      ...MODULES.map((m) => `loadmodule "${m}.so"`),
      'modparam("usrloc", "db_mode", 0)',
      'modparam("auth", "nonce_expire", 60)',
      'request_route {',
      routes,
      '}',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'kamailio.cfg'), cfg);
    const proc = start(
      '/usr/sbin/kamailio',
      ['-DD', '-E', '-f', join(dir, 'kamailio.cfg'), '-Y', dir],
      {},
      { group: true },
    );
    await proc.waitFor(/SO_RCVBUF is finally/, 15_000);
    return new Kamailio(proc, port);
  }

  /** What Kamailio logged (its xlog lines show each request it routed). */
  output(): string {
    return this.proc.output();
  }

  private stopped = false;

  /** Stops it (once; a second call just waits). */
  async stop(): Promise<void> {
    if (!this.stopped) this.proc.kill('SIGTERM');
    this.stopped = true;
    await this.proc.exited();
  }
}
