// A real nats-server (Debian package) for tests and benchmarks: a free port,
// JetStream in a temp dir, restartable on the same port and store so the
// cluster under test sees an outage, not a new server.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { start, type Proc } from './proc.ts';

/** nats-server lives in /usr/sbin on Debian, which a non-root PATH may lack. */
export function natsServerBinary(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  throw new Error('nats-server is not installed: run the test command as root, or apt-get install -y nats-server');
}

export class NatsServer {
  private proc: Proc | undefined;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  static async start(): Promise<NatsServer> {
    const s = new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'tandem-nats-')));
    await s.up();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const p = start(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir]);
    this.proc = p;
    await p.waitFor(/Server is ready/, 15_000);
  }

  /** Stops the server (SIGKILL: an outage, not a shutdown). */
  async down(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p) return;
    p.kill('SIGKILL');
    await p.exited();
  }

  async stop(): Promise<void> {
    await this.down();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
