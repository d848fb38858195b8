// Admin API credentials: bearer tokens with a role, known to the nodes only
// by their SHA-256 (tokens are 256-bit random strings, so a plain hash is
// enough; nothing stored can be replayed). Sources: `admin.tokens` in the
// config, TANDEM_ADMIN_TOKENS (name:role:sha256,...), and, when neither names
// a token, a token file created on first start so that `npm start` works out
// of the box and the CLI finds the token without being told.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ClusterModel } from '../config/model.ts';
import { errorMessage, TandemError } from '../errors.ts';

export type AdminRole = 'viewer' | 'operator';

export interface AdminPrincipal {
  name: string;
  role: AdminRole;
}

interface KnownToken extends AdminPrincipal {
  hash: Buffer;
}

export class AdminTokenError extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Another node refused an operator's act forwarded to it (its tokens do not make the operator one there). */
export class OperatorActRefused extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** A new random token (43 url-safe characters, 256 bits). */
export const newToken = (): string => randomBytes(32).toString('base64url');

/** Where the first-start token of a config lives (admin.token_file, else .tandem/<cluster>.admin-token beside the config). */
export function tokenFilePath(model: ClusterModel): string {
  const f = model.config.admin.token_file ?? join('.tandem', `${model.config.cluster.name}.admin-token`);
  return isAbsolute(f) ? f : resolve(model.baseDir, f);
}

export function parseEnvTokens(value: string | undefined): Array<AdminPrincipal & { sha256: string }> {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([A-Za-z][A-Za-z0-9_-]{0,63}):(viewer|operator):([0-9a-f]{64})$/.exec(entry);
      if (!m) throw new AdminTokenError(`TANDEM_ADMIN_TOKENS: "${entry.slice(0, 80)}" is not name:role:sha256`);
      return { name: m[1]!, role: m[2] as AdminRole, sha256: m[3]! };
    });
}

export class AdminTokens {
  private readonly known: KnownToken[] = [];
  /** the token file this node created or read (undefined when tokens are configured) */
  readonly tokenFile: string | undefined;
  /** true when this process created the token file */
  readonly created: boolean = false;

  constructor(model: ClusterModel, env: NodeJS.ProcessEnv = process.env) {
    for (const t of [...model.config.admin.tokens, ...parseEnvTokens(env.TANDEM_ADMIN_TOKENS)]) {
      this.known.push({ name: t.name, role: t.role, hash: Buffer.from(t.sha256, 'hex') });
    }
    if (this.known.length === 0 || model.config.admin.token_file) {
      const file = tokenFilePath(model);
      const { token, created } = ensureTokenFile(file);
      this.tokenFile = file;
      this.created = created;
      this.known.push({ name: 'local-operator', role: 'operator', hash: Buffer.from(hashToken(token), 'hex') });
    }
  }

  /** The principal of an `Authorization: Bearer ...` value, or undefined. Constant time per known token. */
  verify(authorization: string | undefined): AdminPrincipal | undefined {
    const token = bearerToken(authorization);
    return token === undefined ? undefined : this.verifyToken(token);
  }

  /** The principal of a token (an operator's act forwarded by another node carries the token itself). */
  verifyToken(token: string): AdminPrincipal | undefined {
    const h = Buffer.from(hashToken(token), 'hex');
    let found: KnownToken | undefined;
    for (const k of this.known) if (timingSafeEqual(k.hash, h) && !found) found = k;
    return found ? { name: found.name, role: found.role } : undefined;
  }
}

/** The token of an `Authorization: Bearer ...` value, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return (authorization ? /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,512})[ \t]*$/i.exec(authorization) : null)?.[1];
}

/**
 * Reads the token file, or creates it (mode 0600) with a new operator token.
 * Several node processes may start at once on one config: the file appears
 * whole through link(2), and a loser of the race reads the winner's token.
 */
export function ensureTokenFile(file: string): { token: string; created: boolean } {
  const existing = readTokenFile(file);
  if (existing) return { token: existing, created: false };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const token = newToken();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
    chmodSync(file, 0o600);
    return { token, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new AdminTokenError(`cannot create the admin token file ${file}`, { cause: err });
    const other = readTokenFile(file);
    if (!other) throw new AdminTokenError(`admin token file ${file} is empty`);
    return { token: other, created: false };
  } finally {
    unlinkSync(tmp);
  }
}

export function readTokenFile(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AdminTokenError(`cannot read the admin token file ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(token))
    throw new AdminTokenError(`admin token file ${file} does not hold a token`);
  return token;
}
