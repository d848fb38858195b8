// The configuration versions a node has run: the file it started with and
// every version applied live (tandem apply, the console), each with its text
// as the operator wrote it, when and by whom. Every node that is up takes
// every apply, so each keeps the cluster's history and any node's console can
// show it and roll back to an earlier version. Kept on disk beside the
// config (owner-only: the text holds the phones' passwords), the newest
// MAX_VERSIONS; a file that cannot be read or written is logged, never fatal.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { errorMessage } from '../errors.ts';

const MAX_VERSIONS = 50;

const ConfigVersion = z.strictObject({
  version: z.string().max(64),
  /** the configuration's text (YAML, or JSON when it came without its text) */
  text: z.string().max(4 * 1024 * 1024),
  /** ms epoch: when this node started running it */
  applied_at: z.number(),
  /** the operator whose token applied it, or "(file)" for the file a node started with */
  by: z.string().max(128),
});
export type ConfigVersion = z.infer<typeof ConfigVersion>;
const ConfigVersionFile = z.array(ConfigVersion).max(MAX_VERSIONS);

/** A version as listed (without its text, which holds secrets). */
export type ConfigVersionView = Omit<ConfigVersion, 'text'> & { running: boolean };

export class ConfigVersions {
  private versions: ConfigVersion[] = [];

  constructor(
    /** where they are kept (undefined: in memory only) */
    private readonly file: string | undefined,
    private readonly log: Logger,
  ) {
    if (!file) return;
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      return; // (none kept yet)
    }
    try {
      const p = ConfigVersionFile.safeParse(JSON.parse(raw));
      if (p.success) this.versions = p.data;
      else log.warn({ file, err: p.error.message }, 'configuration history unreadable: starting a new one');
    } catch (err) {
      log.warn({ file, err: errorMessage(err) }, 'configuration history unreadable: starting a new one');
    }
  }

  /** Notes that this node now runs `version` (its text, who applied it); kept newest last. */
  record(version: string, text: string, by: string, at = Date.now()): void {
    this.versions = this.versions.filter((v) => v.version !== version);
    this.versions.push({ version, text, applied_at: at, by });
    if (this.versions.length > MAX_VERSIONS) this.versions.splice(0, this.versions.length - MAX_VERSIONS);
    this.save();
  }

  /** The version's text, if this node has run it. */
  get(version: string): ConfigVersion | undefined {
    return this.versions.find((v) => v.version === version);
  }

  /** Newest first, without their texts. */
  list(running: string): ConfigVersionView[] {
    return this.versions.map(({ text: _text, ...v }) => ({ ...v, running: v.version === running })).reverse();
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, JSON.stringify(this.versions), { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
    } catch (err) {
      this.log.warn({ file: this.file, err: errorMessage(err) }, 'configuration history not saved');
    }
  }
}
