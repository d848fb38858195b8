// `tandem start --node NAME` as its own OS process, as in production.
import { start, type Proc } from './proc.ts';

export async function startNodeProcess(configFile: string, node: string, logLevel = 'warn'): Promise<Proc> {
  const p = start('node', [
    '--import',
    'tsx',
    'src/cli.ts',
    'start',
    '--config',
    configFile,
    '--node',
    node,
    '--log-level',
    logLevel,
  ]);
  await p.waitFor(/1 call manager\(s\) up on the nats bus/, 30_000);
  return p;
}
