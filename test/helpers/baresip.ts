// A real SIP phone for tests: one baresip process per phone with its own
// config dir, driven over ctrl_tcp (netstring JSON commands) and watched
// through its event stream. It plays a tone WAV and records what it hears
// (sndfile: dump-*-dec.wav in its dir).
import { EventEmitter } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toneSamples, wavBytes } from '../../src/media/wav.ts';
import { eventually } from './cluster.ts';
import { freePort } from './ports.ts';
import { start, type Proc } from './proc.ts';

export interface BaresipEvent {
  event: true;
  type: string;
  class?: string;
  accountaor?: string;
  direction?: string;
  peeruri?: string;
  param?: string;
  id?: string;
}

export interface PhoneOptions {
  number: string;
  password: string;
  /** the registrar: the node's SIP host:port */
  registrar: string;
  toneHz: number;
  codecs?: string[];
  answer?: 'auto' | 'manual';
  transport?: 'udp' | 'tcp' | 'tls';
  /** SIP over TLS: the CA (the node's certificate) baresip checks the node's certificate against */
  cafile?: string;
  /** SRTP with SDES keys: srtp-mand offers RTP/SAVP and takes nothing else (module srtp.so) */
  mediaenc?: 'srtp-mand';
  /** the first of the 100 RTP ports the phone uses (default: random in 20000-39999) */
  rtpBase?: number;
  /** more accounts for the same number at these nodes (the phone's Call Manager Group after its own) */
  backupRegistrars?: string[];
}

/** baresip finds a codec by name and rate (8000 unless given): G.722 is 16000 there. */
function codecsOf(opts: PhoneOptions): string {
  const named: Record<string, string> = { opus: 'opus/48000/2', g722: 'G722/16000/1' };
  return (opts.codecs ?? ['pcmu']).map((c) => named[c.toLowerCase()] ?? c).join(',');
}

function accountLine(opts: PhoneOptions, registrar: string, transport: string, codecs: string): string {
  return `<sip:${opts.number}@${registrar};transport=${transport}>;auth_pass=${opts.password};regint=60;answermode=${opts.answer ?? 'auto'};audio_codecs=${codecs}${opts.mediaenc ? `;mediaenc=${opts.mediaenc}` : ''}`;
}

/** A UDP+TCP port p with p+1 free as well (baresip binds p+1 for TLS). */
async function sipPortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    const ok = await Promise.all([p, p + 1].map((q) => udpFree(q).then(async (u) => u && (await tcpFree(q)))));
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no free SIP port pair');
}
const udpFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
const tcpFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * A tone file per tone, rate and channels, written once per test process: the
 * cluster under test shares this process's event loop, and two minutes of
 * 48 kHz stereo written at each phone's start held it for most of a second
 * (the node then refused a phone's REGISTER or INVITE as overloaded).
 */
const tones = new Map<string, Promise<string>>();
let toneDir: string | undefined;
function toneFile(hz: number, rate: number, channels: number): Promise<string> {
  const key = `${hz}-${rate}-${channels}`;
  let path = tones.get(key);
  if (!path) {
    if (!toneDir) {
      const dir = (toneDir = mkdtempSync(join(tmpdir(), 'baresip-tones-')));
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
    const file = join(toneDir, `tone-${key}.wav`);
    // written off the loop: 23 MB for Opus's 48 kHz stereo
    path = (async () => {
      const fh = await open(file, 'w');
      try {
        for (const b of wavBytes(toneSamples(hz, 120, rate, channels), rate, channels)) await fh.writeFile(b);
      } finally {
        await fh.close();
      }
      return file;
    })();
    tones.set(key, path);
  }
  return path;
}

export class Baresip extends EventEmitter<{ event: [BaresipEvent] }> {
  readonly events: BaresipEvent[] = [];
  private ctrl: Socket | undefined;
  private buf = '';
  private token = 0;
  private readonly replies = new Map<string, (r: { ok: boolean; data: string }) => void>();

  private constructor(
    readonly opts: PhoneOptions,
    readonly dir: string,
    readonly proc: Proc,
    readonly sipPort: number,
  ) {
    super();
  }

  static async start(opts: PhoneOptions): Promise<Baresip> {
    const dir = mkdtempSync(join(tmpdir(), `baresip-${opts.number}-`));
    const sipPort = await sipPortPair();
    const ctrlPort = await freePort();
    // aufile plays only at the codec's own rate and channels (Opus 48 kHz stereo, G.722 16 kHz).
    const first = (opts.codecs ?? ['pcmu'])[0]!.toLowerCase();
    const opus = first.startsWith('opus');
    const tone = await toneFile(opts.toneHz, opus ? 48000 : first === 'g722' ? 16000 : 8000, opus ? 2 : 1);
    const rtpBase = opts.rtpBase ?? 20000 + Math.floor(Math.random() * 200) * 100;
    writeFileSync(
      join(dir, 'config'),
      [
        'poll_method epoll',
        `sip_listen 127.0.0.1:${sipPort}`,
        ...(opts.cafile ? [`sip_cafile ${opts.cafile}`] : []),
        'net_interface 127.0.0.1',
        `rtp_ports ${rtpBase}-${rtpBase + 99}`,
        `audio_source aufile,${tone}`,
        'audio_player aubridge,nil',
        'audio_alert aubridge,nil',
        'module_path /usr/lib/baresip/modules',
        'module g711.so',
        'module g722.so',
        'module opus.so',
        ...(opts.mediaenc ? ['module srtp.so'] : []),
        'module aufile.so',
        'module aubridge.so',
        'module sndfile.so',
        `snd_path ${dir}`,
        'module_app account.so',
        'module_app menu.so',
        'module_app ctrl_tcp.so',
        `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
        '',
      ].join('\n'),
    );
    const codecs = codecsOf(opts);
    const transport = opts.transport ?? 'udp';
    writeFileSync(
      join(dir, 'accounts'),
      [opts.registrar, ...(opts.backupRegistrars ?? [])]
        .map((r) => `${accountLine(opts, r, transport, codecs)}\n`)
        .join(''),
    );
    writeFileSync(join(dir, 'contacts'), '');
    const proc = start('baresip', ['-f', dir]);
    const phone = new Baresip(opts, dir, proc, sipPort);
    await phone.connectCtrl(ctrlPort);
    return phone;
  }

  private async connectCtrl(port: number): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      try {
        this.ctrl = await new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch {
        if (this.proc.child.exitCode !== null)
          throw new Error(`baresip ${this.opts.number} exited:\n${this.proc.output().slice(-2000)}`);
        if (Date.now() - t0 > 10_000)
          throw new Error(`baresip ${this.opts.number} ctrl_tcp never opened:\n${this.proc.output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.ctrl.on('data', (d) => this.onData(d.toString('utf8')));
    this.ctrl.on('error', () => undefined);
  }

  private onData(s: string): void {
    this.buf += s;
    for (;;) {
      const colon = this.buf.indexOf(':');
      if (colon < 0) return;
      const len = Number(this.buf.slice(0, colon));
      if (this.buf.length < colon + 1 + len + 1) return;
      const json = this.buf.slice(colon + 1, colon + 1 + len);
      this.buf = this.buf.slice(colon + 1 + len + 1);
      const msg = JSON.parse(json) as BaresipEvent & {
        response?: boolean;
        ok?: boolean;
        data?: string;
        token?: string;
      };
      if (msg.response) {
        this.replies.get(msg.token ?? '')?.({ ok: Boolean(msg.ok), data: msg.data ?? '' });
        this.replies.delete(msg.token ?? '');
      } else if (msg.event) {
        this.events.push(msg);
        this.emit('event', msg);
      }
    }
  }

  command(command: string, params = ''): Promise<{ ok: boolean; data: string }> {
    const token = String(++this.token);
    const json = JSON.stringify({ command, params, token });
    return new Promise((resolve, reject) => {
      this.replies.set(token, resolve);
      this.ctrl!.write(`${Buffer.byteLength(json)}:${json},`);
      setTimeout(() => reject(new Error(`baresip ${this.opts.number}: no reply to ${command}`)), 5000).unref();
    });
  }

  /** Waits for an event of this type (from those seen since `since`, an index into events). */
  waitEvent(type: string, timeoutMs = 10_000, since = 0): Promise<BaresipEvent> {
    const seen = this.events.slice(since).find((e) => e.type === type);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const on = (e: BaresipEvent) => {
        if (e.type !== type) return;
        clearTimeout(t);
        this.off('event', on);
        resolve(e);
      };
      const t = setTimeout(() => {
        this.off('event', on);
        reject(
          new Error(
            `baresip ${this.opts.number}: no ${type} within ${timeoutMs} ms; saw ${this.events.map((e) => e.type + (e.param ? `(${e.param})` : '')).join(', ')}`,
          ),
        );
      }, timeoutMs);
      this.on('event', on);
    });
  }

  /** The WAV files sndfile recorded of what this phone heard. */
  recordings(): string[] {
    return readdirSync(this.dir)
      .filter((f) => /^dump-.*-dec\.wav$/.test(f))
      .map((f) => join(this.dir, f))
      .filter((f) => existsSync(f));
  }

  /**
   * Waits until sndfile has closed every recording of this phone: libsndfile
   * writes the WAV header's sizes when it closes the file, so a recording
   * whose RIFF size counts every byte is complete. An audio check of a call
   * just hung up reads the recordings after this.
   */
  async recordingsClosed(timeoutMs = 5000): Promise<void> {
    await eventually(() => this.recordings().every(wavClosed), timeoutMs, `${this.opts.number}'s recordings closed`);
  }

  /**
   * The registrar's final answer to this phone's REGISTER, from baresip's
   * console line (registration happens before ctrl_tcp is connected, so
   * its REGISTER_OK event may be gone).
   */
  async registration(timeoutMs = 10_000): Promise<{ status: number; text: string }> {
    // "1001@host: {0/UDP/v4} 200 OK (Tandem) [1 binding]" or "reg: sip:1001@host: 401 Unauthorized (Tandem)"
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the status text ends at baresip's colour escape (ESC)
    const m = await this.proc.waitFor(/(?:\{0\/(?:UDP|TCP|TLS)\/v4\}|reg: \S+:) ([2-6]\d\d) ([^\r\n\x1b]*)/, timeoutMs);
    return { status: Number(m[1]), text: m[2]! };
  }

  /**
   * This phone calls another and both reach CALL_ESTABLISHED. Returns where
   * each phone's event list stood before the call, to wait for later events.
   */
  async callUntilEstablished(callee: Baresip): Promise<{ caller: number; callee: number }> {
    const at = { caller: this.events.length, callee: callee.events.length };
    await this.dial(callee.opts.number);
    await Promise.all([
      this.waitEvent('CALL_ESTABLISHED', 10_000, at.caller),
      callee.waitEvent('CALL_ESTABLISHED', 10_000, at.callee),
    ]).catch((e: Error) => {
      // The callee's own console usually says why (codec, audio source).
      throw new Error(
        `${e.message.slice(-400)}\n--- ${callee.opts.number} console:\n${callee.proc.output().slice(-1500)}`,
      );
    });
    return at;
  }

  dial(number: string): Promise<{ ok: boolean; data: string }> {
    return this.command('dial', `sip:${number}@${this.opts.registrar}`);
  }

  /** Dials through another node (a backup registrar): the INVITE goes to that node. */
  dialVia(number: string, registrar: string): Promise<{ ok: boolean; data: string }> {
    return this.command('dial', `sip:${number}@${registrar}`);
  }

  /** Makes the account at `registrar` register again now (baresip has no command for it: the account is made anew). */
  async reRegister(registrar: string): Promise<void> {
    await this.command('uadel', `sip:${this.opts.number}@${registrar}`);
    const line = accountLine(this.opts, registrar, this.opts.transport ?? 'udp', codecsOf(this.opts));
    await this.command('uanew', line);
  }

  async stop(): Promise<void> {
    this.ctrl?.destroy();
    this.proc.kill('SIGTERM');
    const exited = await Promise.race([this.proc.exited(), new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
    if (exited === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.proc.exited();
    }
  }
}

/** Whether a WAV file's RIFF header counts the whole file (written when the file was closed). */
function wavClosed(file: string): boolean {
  const head = Buffer.alloc(8);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (readSync(fd, head, 0, 8, 0) < 8) return false;
    return head.toString('latin1', 0, 4) === 'RIFF' && head.readUInt32LE(4) === statSync(file).size - 8;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
