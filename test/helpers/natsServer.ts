// A real nats-server (Debian package) for tests and benchmarks: a free port,
// JetStream in a temp dir, restartable on the same port and store so the
// cluster under test sees an outage, not a new server.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadConfigFile } from '../../src/config/load.ts';
import { generateKeys } from '../../src/cluster/nodeKeys.ts';
import { natsServerAuthorization } from '../../src/cluster/natsPermissions.ts';
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

/**
 * A NATS user with every right: someone who got hold of NATS access without
 * any node's key (a leaked credential, a misconfigured server). Tests use it
 * to inject what an attacker on the bus would.
 */
export const INTRUDER = { user: 'intruder', pass: 'intruder-pass' };

export class NatsServer {
  private proc: Proc | undefined;
  private configFile: string | undefined;

  /** run inside this network namespace, listening on all its addresses (fault tests reach it through veth pairs) */
  netns: string | undefined;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  /** A server on a free port, not started yet (its URL goes into the cluster config first). */
  static async prepare(): Promise<NatsServer> {
    return new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'tandem-nats-')));
  }

  /** No authentication at all (benchmarks of raw NATS, --insecure tests); `conf`: lines of nats-server's config (limits). */
  static async start(conf?: string): Promise<NatsServer> {
    const s = await NatsServer.prepare();
    if (conf !== undefined) {
      s.configFile = join(s.storeDir, 'nats.conf');
      writeFileSync(s.configFile, conf);
    }
    await s.up();
    return s;
  }

  /**
   * Starts with the node users and permissions `tandem nats-setup` writes for
   * a cluster config (node keys made beside it), plus the INTRUDER user.
   */
  async startSecured(clusterConfigFile: string): Promise<void> {
    const model = loadConfigFile(clusterConfigFile);
    const auth = natsServerAuthorization(model, generateKeys(model));
    const intruder = `    { user: ${JSON.stringify(INTRUDER.user)}, password: ${JSON.stringify(INTRUDER.pass)}, permissions: { publish: ">", subscribe: ">" } }\n  ]\n}`;
    this.configFile = join(this.storeDir, 'nats.conf');
    writeFileSync(this.configFile, auth.replace(/\n {2}\]\n\}\n?$/, `\n${intruder}\n`));
    await this.up();
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const args = [
      ...(this.configFile ? ['-c', this.configFile] : []),
      '-a',
      this.netns ? '0.0.0.0' : '127.0.0.1',
      '-p',
      String(this.port),
      '-js',
      '-sd',
      this.storeDir,
    ];
    const p = this.netns
      ? start('ip', ['netns', 'exec', this.netns, natsServerBinary(), ...args])
      : start(natsServerBinary(), args);
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
