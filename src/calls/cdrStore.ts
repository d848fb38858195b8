// A node's call detail records: every half of a call this node ran, written
// when it ends, kept in memory (bounded by count and age) and appended to a
// JSON-lines file (cdr.dir, owner-only) so a restart loses none. The file is
// rewritten with what is kept when it has grown to twice that. A line that
// does not parse (a torn write, an edit) is skipped and counted, never fatal.
// Searches over the cluster ask every node for its own (CallManager.cdrs).
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { CallDetailRecord, type CdrFilter } from '../cluster/messages.ts';
import { errorMessage } from '../errors.ts';

export interface CdrStoreOptions {
  /** the JSON-lines file; undefined: memory only */
  file: string | undefined;
  maxRecords: number;
  retentionMs: number;
  log: Logger;
}

/** Whether a record is one a search asks for (the one rule: a node's own store and the cluster's archive). */
export function cdrMatches(r: CallDetailRecord, f: CdrFilter): boolean {
  if (f.since !== undefined && r.ended_at < f.since) return false;
  if (f.until !== undefined && r.started_at > f.until) return false;
  if (f.number !== undefined && !r.party.includes(f.number) && !r.far.includes(f.number)) return false;
  if (f.reason !== undefined && !r.reason.toLowerCase().includes(f.reason.toLowerCase())) return false;
  return true;
}

export class CdrStore {
  private records: CallDetailRecord[] = [];
  private linesInFile = 0;
  private torn = false;
  /** records added since the write under way began: the next write takes them all */
  private unwritten: CallDetailRecord[] = [];
  private dirMade = false;
  /** writes in order, one at a time */
  private writing: Promise<void> = Promise.resolve();
  /** lines of the file that did not parse when it was read */
  skipped = 0;

  constructor(private readonly o: CdrStoreOptions) {}

  /** Reads what the file kept from before. */
  async open(): Promise<void> {
    if (!this.o.file) return;
    let text: string;
    try {
      text = await readFile(this.o.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    // A write torn by a crash: the next record starts on a line of its own.
    this.torn = text.length > 0 && !text.endsWith('\n');
    const lines = text.split('\n').filter((l) => l.length > 0);
    this.linesInFile = lines.length;
    for (const line of lines) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        this.skipped++;
        continue;
      }
      const r = CallDetailRecord.safeParse(value);
      if (r.success) this.records.push(r.data);
      else this.skipped++;
    }
    if (this.skipped > 0)
      this.o.log.warn(
        { file: this.o.file, skipped: this.skipped },
        'call detail records: lines that do not parse were skipped',
      );
    this.prune();
  }

  add(r: CallDetailRecord): void {
    this.records.push(r);
    this.prune();
    if (!this.o.file) return;
    this.unwritten.push(r);
    if (this.unwritten.length > 1) return; // joins the batch the write under way will take next
    this.writing = this.writing.then(() => this.writeBatch(this.o.file!));
  }

  /**
   * Writes every record added since the last write in one append (a busy node
   * ends hundreds of calls a second: one system call each would queue up in
   * libuv's thread pool behind each other).
   */
  private async writeBatch(file: string): Promise<void> {
    const batch = this.unwritten;
    this.unwritten = [];
    try {
      if (!this.dirMade) {
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        this.dirMade = true;
      }
      if (this.linesInFile + batch.length > 2 * this.o.maxRecords) {
        // Rewritten with what is kept, atomically (a crash leaves the old file or the new one).
        const tmp = `${file}.tmp`;
        await writeFile(tmp, this.records.map((x) => `${JSON.stringify(x)}\n`).join(''), { mode: 0o600 });
        await rename(tmp, file);
        this.linesInFile = this.records.length;
      } else {
        const lines = batch.map((x) => `${JSON.stringify(x)}\n`).join('');
        await appendFile(file, `${this.torn ? '\n' : ''}${lines}`, { mode: 0o600 });
        this.torn = false;
        this.linesInFile += batch.length;
      }
    } catch (err) {
      this.dirMade = false;
      this.o.log.error(
        { file, records: batch.length, err: errorMessage(err) },
        'call detail records not written to disk (kept in memory)',
      );
    }
  }

  /** Waits for the writes under way (a stopping node, tests). */
  flush(): Promise<void> {
    return this.writing;
  }

  /** Records that match, newest first. */
  query(f: CdrFilter): CallDetailRecord[] {
    this.prune();
    const out: CallDetailRecord[] = [];
    for (let i = this.records.length - 1; i >= 0 && out.length < f.limit; i--) {
      const r = this.records[i]!;
      if (cdrMatches(r, f)) out.push(r);
    }
    return out;
  }

  get size(): number {
    return this.records.length;
  }

  private prune(): void {
    const oldest = Date.now() - this.o.retentionMs;
    let drop = Math.max(0, this.records.length - this.o.maxRecords);
    while (drop < this.records.length && this.records[drop]!.ended_at < oldest) drop++;
    if (drop > 0) this.records.splice(0, drop);
  }
}
