import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { crossCheck, formatPath, type ConfigProblem } from './crossCheck.ts';
import { ClusterModel } from './model.ts';
import { TandemConfig } from './schema.ts';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${source}: ${problems.length} config error(s)\n` + problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type ParseResult = { ok: true; model: ClusterModel } | { ok: false; problems: ConfigProblem[] };

/** Validates a config given as YAML text; never throws for bad input. */
export function parseConfig(text: string, override?: { cluster?: { bus?: string } }): ParseResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({
        path: e.linePos?.[0] ? `line ${e.linePos[0].line}:${e.linePos[0].col}` : '(yaml)',
        message: e.message.split('\n')[0] ?? e.message,
      })),
    };
  }
  const raw: unknown = doc.toJS() ?? {};
  if (override?.cluster?.bus && raw && typeof raw === 'object') {
    const r = raw as { cluster?: Record<string, unknown> };
    r.cluster = { ...(r.cluster ?? {}), bus: override.cluster.bus };
  }
  return validateConfig(raw);
}

export function validateConfig(raw: unknown): ParseResult {
  const parsed = TandemConfig.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: zodProblems(parsed.error) };
  const problems = crossCheck(parsed.data);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, model: new ClusterModel(parsed.data) };
}

/** Loads and validates a config file; `override` replaces values (e.g. cluster.bus from the command line) before validation. */
export function loadConfigFile(file: string, override?: { cluster?: { bus?: string } }): ClusterModel {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '(file)', message: (err as Error).message }]);
  }
  const res = parseConfig(text, override);
  if (!res.ok) throw new ConfigError(file, res.problems);
  // Audio files are found relative to the config file.
  res.model.baseDir = dirname(resolve(file));
  const missing = missingFiles(res.model);
  if (missing.length) throw new ConfigError(file, missing);
  return res.model;
}

/** The audio files (MOH sources, prompts) a model names that are not there, relative to its baseDir. */
export function missingFiles(model: ClusterModel): ConfigProblem[] {
  const missing: ConfigProblem[] = [];
  for (const r of model.resources.values()) {
    const files: Array<[string, string]> = [
      ...[...r.audioSources].map(([id, f]): [string, string] => [`audio_sources.${id}`, f]),
      ...[...r.prompts].map(([id, f]): [string, string] => [`prompts.${id}`, f]),
    ];
    for (const [key, f] of files) {
      const path = isAbsolute(f) ? f : resolve(model.baseDir, f);
      if (!existsSync(path)) missing.push({ path: `media_resources.${r.name}.${key}`, message: `no such file ${path}` });
    }
  }
  return missing;
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
