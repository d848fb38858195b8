// The cluster's alarms (node/alarms.ts): every node's, one per condition;
// acknowledged by an operator on every node that raised it, each node
// checking the operator's token itself.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errorMessage } from '../../errors.ts';
import { type AlarmView, mergeAlarms } from '../clusterView.ts';
import { HttpError, parse, type RouteContext } from '../http.ts';
import type { AlarmDeps } from '../deps.ts';
import { bearerToken } from '../tokens.ts';

const AckBody = z.strictObject({ key: z.string().min(1).max(200) });

/** The answer to an acknowledgement: the nodes that had it, and those that could not be asked. */
export interface AlarmAckView {
  key: string;
  by: string;
  acknowledged_on: string[];
  unreachable: string[];
}

export function alarmRoutes(app: FastifyInstance, { node, view, writeLimit }: RouteContext<AlarmDeps>): void {
  app.get('/api/alarms', async (): Promise<AlarmView[]> => {
    const st = await view.statuses({ detail: true });
    return mergeAlarms([...st.values()].flatMap((s) => s.alarms ?? []));
  });

  app.post('/api/alarms/ack', writeLimit(), async (req): Promise<AlarmAckView> => {
    const { key } = parse(AckBody, req.body);
    const by = req.principal!.name;
    const authority = { token: bearerToken(req.headers.authorization)! };
    const nodes = [...node.model.nodes.keys()].filter((n) => n === node.name || node.liveness.isUp(n));
    const acknowledged_on: string[] = [];
    const unreachable: string[] = [];
    await Promise.all(
      nodes.map(async (n) => {
        try {
          const done =
            n === node.name ? node.acknowledgeAlarm(key, by) : await node.acknowledgeAlarmOn(n, key, authority);
          if (done) acknowledged_on.push(n);
        } catch (err) {
          node.log.warn({ peer: n, alarm: key, err: errorMessage(err) }, 'alarm not acknowledged there');
          unreachable.push(n);
        }
      }),
    );
    if (!acknowledged_on.length && !unreachable.length) throw new HttpError(404, `no alarm ${key} on any node`);
    return { key, by, acknowledged_on: acknowledged_on.sort(), unreachable: unreachable.sort() };
  });
}
