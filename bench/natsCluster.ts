// The NATS servers of a scale run: 1 or S servers on this machine, routed as
// one cluster with JetStream, each with the nodes' users (tandem nats-setup's
// authorization), in the run's temp dir. Shared by bench:scale and its
// simulation mode.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { natsServerBinary } from '../test/helpers/natsServer.ts';
import { freePort } from '../test/helpers/ports.ts';
import { start, type Proc } from '../test/helpers/proc.ts';

export interface NatsCluster {
  /** client ports, one per server */
  ports: number[];
  servers: Proc[];
  stop(): void;
}

/** Ports first (the config names them), servers once the authorization is known. */
export async function natsPorts(servers: number): Promise<{ client: number[]; route: number[] }> {
  return {
    client: await Promise.all(Array.from({ length: servers }, () => freePort())),
    route: await Promise.all(Array.from({ length: servers }, () => freePort())),
  };
}

export async function startNatsCluster(
  dir: string,
  ports: { client: number[]; route: number[] },
  authorization: string,
  name = 'scale',
): Promise<NatsCluster> {
  const S = ports.client.length;
  const servers: Proc[] = [];
  for (let j = 0; j < S; j++) {
    const conf = join(dir, `nats-${j}.conf`);
    const routes = ports.route.filter((_, k) => k !== j).map((p) => `nats://127.0.0.1:${p}`);
    writeFileSync(
      conf,
      `server_name: s${j}\nlisten: 127.0.0.1:${ports.client[j]}\njetstream { store_dir: "${join(dir, `js${j}`)}" }\n` +
        (S > 1
          ? `cluster { name: ${name}, listen: 127.0.0.1:${ports.route[j]}, routes: [${routes.join(', ')}] }\n`
          : '') +
        authorization,
    );
    servers.push(start(natsServerBinary(), ['-c', conf]));
  }
  await Promise.all(servers.map((s) => s.waitFor(/Server is ready/, 30_000)));
  if (S > 1) await new Promise((r) => setTimeout(r, 3000)); // JetStream meta leader election
  return { ports: ports.client, servers, stop: () => servers.forEach((s) => s.kill('SIGKILL')) };
}
