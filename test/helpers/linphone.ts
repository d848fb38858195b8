// linphone (Debian's linphone-cli, liblinphone 5.1): a second, independent
// SIP stack next to baresip. linphonec is driven on stdin and reports on
// stdout; each phone gets its own HOME (linphone will not start its SIP
// stack without $HOME/.local/share/linphone) and its own config.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface LinphoneOptions {
  number: string;
  password: string;
  realm: string;
  /** host:port of the node that controls the phone */
  registrar: string;
  transport: 'udp' | 'tcp';
  sipPort: number;
  rtpPort: number;
  autoAnswer?: boolean;
}

export class Linphone {
  private out = '';
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly proc: ChildProcessWithoutNullStreams,
    readonly dir: string,
  ) {
    const take = (d: Buffer) => {
      this.out += d.toString();
      for (const w of this.waiters) w();
    };
    proc.stdout.on('data', take);
    proc.stderr.on('data', take);
  }

  static async start(o: LinphoneOptions): Promise<Linphone> {
    const dir = mkdtempSync(join(tmpdir(), `tandem-linphone-${o.number}-`));
    mkdirSync(join(dir, '.local', 'share', 'linphone'), { recursive: true });
    const [host] = o.registrar.split(':');
    const rc = join(dir, 'linphonerc');
    writeFileSync(
      rc,
      [
        '[sip]',
        `sip_port=${o.transport === 'udp' ? o.sipPort : -1}`,
        `sip_tcp_port=${o.transport === 'tcp' ? o.sipPort : -1}`,
        'sip_tls_port=-1',
        'default_proxy=0',
        'register_only_when_network_is_up=0',
        '[proxy_0]',
        `reg_proxy=<sip:${o.registrar};transport=${o.transport}>`,
        `reg_route=<sip:${o.registrar};transport=${o.transport}>`,
        `reg_identity=sip:${o.number}@${host}`,
        'reg_expires=600',
        'reg_sendregister=1',
        `realm=${o.realm}`,
        '[auth_info_0]',
        `username=${o.number}`,
        `passwd=${o.password}`,
        `realm=${o.realm}`,
        '[rtp]',
        `audio_rtp_port=${o.rtpPort}`,
        '',
      ].join('\n'),
    );
    const proc = spawn('linphonec', ['-c', rc, '-d', '0', ...(o.autoAnswer ? ['-a'] : [])], {
      env: { ...process.env, HOME: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const p = new Linphone(proc, dir);
    await p.waitFor(/linphonec>/, 15_000);
    p.command('soundcard use files');
    await p.waitFor(/Using wav files instead of soundcard/, 5_000);
    return p;
  }

  command(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  output(): string {
    return this.out;
  }

  /** Waits for output matching `re` after `from` (an offset into the output). */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.out.slice(from).match(re);
        if (!m) return false;
        this.waiters.delete(check);
        clearTimeout(t);
        resolve(m);
        return true;
      };
      const t = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`linphone: no ${re} within ${timeoutMs} ms; output:\n${this.out.slice(from).slice(-2000)}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  get mark(): number {
    return this.out.length;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.command('quit');
    await Promise.race([new Promise((r) => this.proc.once('exit', r)), new Promise((r) => setTimeout(r, 3000))]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
