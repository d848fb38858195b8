import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { crossCheck, formatPath, type ConfigProblem } from './crossCheck.ts';
import { ClusterModel } from './model.ts';
import { mediaFileProblems } from './mediaFiles.ts';
import { TandemConfig } from './schema.ts';
import { errorMessage, TandemError } from '../errors.ts';

export class ConfigError extends TandemError {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
    options?: ErrorOptions,
  ) {
    super(
      `${source}: ${problems.length} config error(s)\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      options,
    );
  }
}

/** a config of 100 nodes, 20,000 phones and devices is well under 4 MiB */
const MAX_CONFIG_CHARS = 4 * 1024 * 1024;
const MAX_ALIAS_EXPANSIONS = 100;

/** `raw`: the document as plain data (what validateConfig takes again, without the YAML parse, on the other nodes) */
export type ParseResult = { ok: true; model: ClusterModel; raw: unknown } | { ok: false; problems: ConfigProblem[] };

/** Validates a config given as YAML text; never throws for bad input. */
export function parseConfig(text: string, override?: { cluster?: { bus?: string } }): ParseResult {
  if (text.length > MAX_CONFIG_CHARS)
    return {
      ok: false,
      problems: [{ path: '(yaml)', message: `the configuration is larger than ${MAX_CONFIG_CHARS} characters` }],
    };
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({
        path: e.linePos?.[0] ? `line ${e.linePos[0].line}:${e.linePos[0].col}` : '(yaml)',
        message:
          e.code === 'DUPLICATE_KEY' && e.linePos?.[0]
            ? duplicateKeyMessage(text, e.linePos[0])
            : (e.message.split('\n')[0] ?? e.message),
      })),
    };
  }
  let raw: unknown;
  try {
    // Aliases are fine for sharing a block; many of them expanding each other is an alias bomb.
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }) ?? {};
  } catch (err) {
    return { ok: false, problems: [{ path: '(yaml)', message: errorMessage(err) }] };
  }
  if (override?.cluster?.bus && raw && typeof raw === 'object') {
    const r = raw as { cluster?: Record<string, unknown> };
    r.cluster = { ...(r.cluster ?? {}), bus: override.cluster.bus };
  }
  const res = validateConfig(raw);
  if (res.ok) res.model.sourceText = text;
  return res;
}

export function validateConfig(raw: unknown): ParseResult {
  const parsed = TandemConfig.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: zodProblems(parsed.error) };
  const problems = crossCheck(parsed.data);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, model: new ClusterModel(parsed.data), raw };
}

/** Loads and validates a config file; `override` replaces values (e.g. cluster.bus from the command line) before validation. */
export function loadConfigFile(file: string, override?: { cluster?: { bus?: string } }): ClusterModel {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '(file)', message: errorMessage(err) }], { cause: err });
  }
  const res = parseConfig(text, override);
  if (!res.ok) throw new ConfigError(file, res.problems);
  // Media files (and media_dir) are found relative to the config file.
  res.model.baseDir = dirname(resolve(file));
  res.model.sourceText = text;
  res.model.sourceFile = resolve(file);
  const missing = mediaFileProblems(res.model);
  if (missing.length) throw new ConfigError(file, missing);
  return res.model;
}

/** The YAML parser says where a key repeats, not which: name it. */
function duplicateKeyMessage(text: string, at: { line: number; col: number }): string {
  const line = text.split('\n')[at.line - 1] ?? '';
  const key =
    /^\s*(?:-\s*)?("[^"]*"|'[^']*'|[^:#{}\s][^:#{}]*?)\s*:/.exec(line.slice(Math.max(0, at.col - 1)))?.[1] ??
    /^\s*("[^"]*"|'[^']*'|[^:#\s][^:#]*?)\s*:/.exec(line)?.[1];
  return key
    ? `duplicate key ${key.startsWith('"') || key.startsWith("'") ? key : `"${key}"`}: a later entry would silently replace the first`
    : 'duplicate key';
}

function zodProblems(err: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of err.issues) {
    // A bad record key is reported by zod on the record itself; name the key.
    if (issue.code === 'invalid_key') {
      for (const sub of issue.issues) out.push({ path: formatPath([...issue.path]), message: `key: ${sub.message}` });
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      out.push({ path: formatPath(issue.path), message: `unknown field(s): ${issue.keys.join(', ')}` });
      continue;
    }
    out.push({ path: formatPath(issue.path), message: issue.message });
  }
  return out;
}
