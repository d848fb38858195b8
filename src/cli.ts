#!/usr/bin/env node
// The `tandem` command: start call managers, check a config, explain a walk.
import { Command, Option } from 'commander';
import { ConfigError, loadConfigFile } from './config/load.ts';
import type { NodeView } from './admin/clusterView.ts';
import type { ApiError } from './admin/http.ts';
import type { ApplyView } from './admin/routes/config.ts';
import type { DrainView } from './admin/routes/resources.ts';
import { referenceMarkdown } from './config/reference.ts';
import { MEDIA_RESOURCE_TYPES, TandemConfig } from './config/schema.ts';
import { z } from 'zod';
import { createLogger } from './log.ts';
import { renderTrace } from './admin/renderTrace.ts';
import type { Trace } from './mrm/trace.ts';
import { startNodes } from './node/launch.ts';
import { hashToken, newToken, readTokenFile, tokenFilePath } from './admin/tokens.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeys, keysDir } from './cluster/nodeKeys.ts';
import { natsServerAuthorization } from './cluster/natsPermissions.ts';
import { packageVersion } from './version.ts';
import { errorMessage } from './errors.ts';

/** `1 node`, `3 nodes` */
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const program = new Command();
program
  .name('tandem')
  .description('Clustered SIP call manager sharing media resource devices')
  .version(packageVersion(), '-V, --version')
  // A usage error is one line and a pointer, not the whole help.
  .showHelpAfterError('(tandem <command> --help shows its options)');

program
  .command('start')
  .description('start call managers: all nodes of the config on the embedded bus, or the named ones')
  .option('-c, --config <file>', 'config file', 'examples/acme.yaml')
  .option('-n, --node <name...>', 'run only these nodes (one per process in production)')
  .option('-b, --bus <url>', 'override cluster.bus: memory or nats://host:port[,nats://...]', process.env.TANDEM_BUS)
  .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.TANDEM_LOG_LEVEL ?? 'info')
  .option('--pretty', 'human-readable logs', false)
  .option(
    '--insecure',
    'join NATS without credentials or node keys (development only: anyone on the bus can speak for any node)',
    false,
  )
  .action(
    async (opts: {
      config: string;
      node?: string[];
      bus?: string;
      logLevel: string;
      pretty: boolean;
      insecure: boolean;
    }) => {
      const model = loadOrExit(opts.config, opts.bus);
      const log = createLogger({ level: opts.logLevel, pretty: opts.pretty });
      let running: Awaited<ReturnType<typeof startNodes>>;
      try {
        running = await startNodes(model, log, opts.node, { insecure: opts.insecure });
      } catch (err) {
        // Operator errors (unknown node, port in use, bus unreachable) as one line, not a stack trace.
        console.error(`tandem start: ${errorMessage(err)}`);
        process.exit(1);
      }
      // Handlers before the "up" line: whoever reads it may signal at once (a default SIGTERM would kill us ungracefully).
      const started = running;
      let stopping = false;
      const stop = async (sig: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        log.info({ signal: sig }, 'stopping');
        await started.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      for (const cm of running.nodes) {
        const spec = model.nodes.get(cm.name)!;
        console.log(`${cm.name}: admin ${cm.admin?.url ?? '(off)'}  sip ${spec.sip}  pid-boot ${cm.boot}`);
      }
      if (running.tokenFile) {
        // The token itself is never printed or logged: it stays in its owner-only file.
        console.log(
          `admin API token ${running.tokenFile.created ? 'created in' : 'in'} ${running.tokenFile.path} (owner-only); ` +
            `curl -H "Authorization: Bearer $(cat ${running.tokenFile.path})" ${running.nodes[0]?.admin?.url ?? ''}/api/resources; ` +
            '`tandem explain` finds it by itself',
        );
      }
      console.log(`tandem: ${running.nodes.length} call manager(s) up on the ${running.busName} bus; Ctrl-C stops`);
    },
  );

program
  .command('check-config')
  .description('validate a config file; prints every error with its path')
  .argument('[file]', 'the config (or -c FILE, as the other commands take it)')
  .option('-c, --config <file>', 'config file')
  .action((positional: string | undefined, opts: { config?: string }) => {
    const file = opts.config ?? positional;
    if (!file || (opts.config && positional && opts.config !== positional)) {
      console.error(
        file
          ? 'tandem check-config: one file, either as an argument or with -c'
          : 'tandem check-config: which file? (tandem check-config FILE, or -c FILE)',
      );
      process.exit(2);
    }
    const m = loadOrExit(file);
    console.log(
      `${file}: ok (${[
        count(m.nodes.size, 'node'),
        count(m.resources.size, 'media resource'),
        count(m.groups.size, 'group'),
        count(m.mrgls.size, 'MRGL'),
        count(m.phones.size, 'phone'),
        count(m.trunks.size, 'trunk'),
        count(m.routePatterns.length, 'route pattern'),
      ].join(', ')})`,
    );
  });

program
  .command('explain')
  .description('show the MRGL walk an allocation would make now, and why each device is (not) chosen')
  .requiredOption('-p, --phone <number>', 'directory number of the phone')
  .addOption(
    new Option('-t, --type <type>', 'media resource type').choices([...MEDIA_RESOURCE_TYPES]).makeOptionMandatory(),
  )
  .option('-a, --admin <url>', "admin API of any node (default: the config's first node)")
  .option('--mrgl <name>', 'use this MRGL instead of the configured one')
  .option('--codecs <list>', 'codecs the device must handle, e.g. PCMU,G722')
  .option('--srtp', 'the call needs encrypted media (devices without SRTP are skipped)', false)
  .option('--json', 'print the trace as JSON', false)
  .option(
    '-c, --config <file>',
    'the cluster: its first node is asked, with its admin token file (when no --admin / --token)',
    'examples/acme.yaml',
  )
  .option('--token <token>', 'admin API bearer token (default: TANDEM_ADMIN_TOKEN, else the token file of --config)')
  .action(
    async (opts: {
      phone: string;
      type: string;
      admin?: string;
      mrgl?: string;
      codecs?: string;
      srtp: boolean;
      json: boolean;
      config: string;
      token?: string;
    }) => {
      authorization = `Bearer ${adminToken(opts)}`;
      const q = new URLSearchParams({ phone: opts.phone, type: opts.type });
      if (opts.mrgl) q.set('mrgl', opts.mrgl);
      if (opts.codecs) q.set('codecs', opts.codecs);
      if (opts.srtp) q.set('srtp', 'true');
      let base = adminBase(opts);
      let res = await fetchOrExit(`${base}/api/explain?${q}`);
      let body = (await res.json()) as Partial<ApiError> & Partial<Trace>;
      if (res.status === 409 && body.code === 'not_local') {
        // The phone lives on another node: ask that node, as its MRM is the one that would walk.
        const owner = body.controller;
        const nodes = (await (await fetchOrExit(`${base}/api/nodes`)).json()) as NodeView[];
        const admin = nodes.find((n) => n.name === owner)?.admin;
        if (admin) {
          base = `${new URL(base).protocol}//${admin}`;
          res = await fetchOrExit(`${base}/api/explain?${q}`);
          body = (await res.json()) as typeof body;
        }
      }
      if (!res.ok) {
        console.error(`tandem explain: ${body.error ?? res.statusText}`);
        process.exit(1);
      }
      console.log(opts.json ? JSON.stringify(body, null, 2) : renderTrace(body as Trace));
    },
  );

program
  .command('token')
  .description(
    'make a new admin API token: prints the token (give it to its holder) and the config entry with its hash',
  )
  .option('--name <name>', 'who holds it', 'admin')
  .addOption(
    new Option('--role <role>', 'viewer reads; operator also writes').choices(['viewer', 'operator']).default('viewer'),
  )
  .action((opts: { name: string; role: string }) => {
    const token = newToken();
    console.log(`token: ${token}`);
    console.log('config (admin.tokens), or TANDEM_ADMIN_TOKENS=name:role:sha256:');
    console.log(`  - { name: ${opts.name}, role: ${opts.role}, sha256: ${hashToken(token)} }`);
  });

for (const [verb, what] of [
  ['drain', 'stop new allocations on a device (those in use finish)'],
  ['undrain', 'let a drained device take allocations again'],
] as const) {
  program
    .command(verb)
    .description(what)
    .argument('<device>')
    .option('-a, --admin <url>', "admin API of any node (default: the config's first node)")
    .option(
      '-c, --config <file>',
      'the cluster: its first node is asked, with its admin token file (when no --admin / --token)',
      'examples/acme.yaml',
    )
    .option('--token <token>', 'admin API bearer token (operator)')
    .action(async (device: string, opts: { admin?: string; config: string; token?: string }) => {
      authorization = `Bearer ${adminToken(opts)}`;
      const res = await fetchOrExit(`${adminBase(opts)}/api/resources/${encodeURIComponent(device)}/${verb}`, {
        method: 'POST',
      });
      const body = (await res.json()) as Partial<DrainView & ApiError>;
      if (!res.ok) {
        console.error(`tandem ${verb}: ${body.error ?? res.statusText}`);
        process.exit(1);
      }
      console.log(
        `${body.name}: ${body.draining ? 'draining' : 'taking allocations'} (${body.active}/${body.capacity} active)`,
      );
    });
}

program
  .command('apply')
  .description(
    'apply a new version of the config to the running cluster, without restarts: every node that is up takes it in place',
  )
  .requiredOption('-c, --config <file>', 'the new config (validated here first, like check-config)')
  .option('-a, --admin <url>', "admin API of any node (default: the file's first node)")
  .option(
    '--token <token>',
    'admin API bearer token, operator (default: TANDEM_ADMIN_TOKEN, else the token file of --config)',
  )
  .action(async (opts: { config: string; admin?: string; token?: string }) => {
    loadOrExit(opts.config); // validated here first: a broken file never reaches a node
    authorization = `Bearer ${adminToken(opts)}`;
    const base = adminBase(opts);
    const res = await fetchOrExit(
      `${base}/api/config`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ yaml: readFileSync(opts.config, 'utf8') }),
      },
      60_000,
    );
    const body = (await res.json()) as Partial<ApplyView & ApiError>;
    if (!res.ok) {
      console.error(`tandem apply: ${body.error ?? res.statusText}`);
      for (const p of body.problems ?? []) console.error(`  ${p.path}: ${p.message}`);
      process.exit(1);
    }
    console.log(`${opts.config}: version ${body.version}`);
    let failed = false;
    for (const n of body.nodes ?? []) {
      console.log(`  ${n.node}: ${n.status}${n.version ? ` (runs ${n.version})` : ''}`);
      for (const c of n.changes) console.log(`    ${c}`);
      for (const p of n.problems ?? []) console.log(`    ${p.path}: ${p.message}`);
      if (n.status === 'refused' || n.status === 'unreachable') failed = true;
      if (n.status === 'down') console.log('    (down: it runs its own file when it starts; update that file too)');
    }
    process.exit(failed ? 1 : 0);
  });

program
  .command('schema')
  .description(
    "print the config's JSON Schema (the validator's own), for editors: # yaml-language-server: $schema=FILE",
  )
  .option('--markdown', 'print the configuration reference made from it instead (docs/configuration.md)')
  .action((opts: { markdown?: boolean }) => {
    if (opts.markdown) return void process.stdout.write(referenceMarkdown());
    console.log(JSON.stringify(z.toJSONSchema(TandemConfig, { io: 'input' }), null, 2));
  });

program
  .command('nats-setup')
  .description(
    "make the node keys a NATS cluster needs (kept ones are reused) and write nats-server's authorization config for them",
  )
  .option('-c, --config <file>', 'config file', 'examples/acme-nats.yaml')
  .option('-o, --out <file>', 'nats-server config to write (default <keys dir>/nats-server.conf)')
  .action((opts: { config: string; out?: string }) => {
    const model = loadOrExit(opts.config);
    const pubs = generateKeys(model);
    const out = opts.out ?? join(keysDir(model), 'nats-server.conf');
    writeFileSync(out, natsServerAuthorization(model, pubs), { mode: 0o644 });
    console.log(
      `node keys in ${keysDir(model)} (<node>.pub for every machine, <node>.seed only on that node's machine, owner-only)`,
    );
    console.log(`nats-server config: ${out}  (nats-server -c ${out} -js -sd DIR)`);
  });

let authorization: string | undefined;

/**
 * Where a command sends its request: --admin, else the first node of the
 * config it was given (so a token of one cluster goes only to that cluster).
 */
function adminBase(opts: { admin?: string; config: string }): string {
  if (opts.admin) return opts.admin.replace(/\/$/, '');
  const model = loadOrExit(opts.config);
  const first = [...model.nodes.values()][0]!;
  return `${model.config.admin.tls ? 'https' : 'http'}://${first.admin}`;
}

/** The admin token for a CLI call: --token, TANDEM_ADMIN_TOKEN, or the config's token file. */
function adminToken(opts: { token?: string; config: string }): string {
  const given = opts.token ?? process.env.TANDEM_ADMIN_TOKEN;
  if (given) return given.trim();
  const model = loadOrExit(opts.config);
  const file = tokenFilePath(model);
  let token: string | undefined;
  try {
    token = readTokenFile(file);
  } catch (err) {
    console.error(`tandem: ${errorMessage(err)}`);
    process.exit(1);
  }
  if (!token) {
    console.error(
      `tandem: no admin token: pass --token, set TANDEM_ADMIN_TOKEN, or start the cluster of ${opts.config} once (it creates ${file})`,
    );
    process.exit(1);
  }
  return token;
}

function loadOrExit(file: string, bus?: string) {
  try {
    return loadConfigFile(file, bus ? { cluster: { bus } } : undefined);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

async function fetchOrExit(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
  const headers = new Headers(init.headers);
  if (authorization) headers.set('authorization', authorization);
  try {
    return await fetch(url, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    console.error(`tandem: cannot reach ${url}: ${(err as Error).cause ?? errorMessage(err)}`);
    process.exit(1);
  }
}

await program.parseAsync(process.argv);
