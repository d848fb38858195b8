// Media resources: their state cluster-wide, drain and undrain (a device of
// another node is drained by that node, which checks the operator's token
// itself), the MRGLs, and explain (the walk a request would take, without
// allocating).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { DeviceStatus } from '../../cluster/messages.ts';
import { DEFAULT_GROUP } from '../../config/model.ts';
import { Codec, MEDIA_RESOURCE_TYPES } from '../../config/schema.ts';
import { DEVICE_KINDS } from '../../devices/kinds.ts';
import { errorMessage } from '../../errors.ts';
import { HttpError, parse, type RouteContext } from '../http.ts';
import type { ResourceDeps } from '../deps.ts';
import { OperatorActRefused, bearerToken } from '../tokens.ts';

const ExplainQuery = z.strictObject({
  phone: z.string().min(1, 'phone is required'),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  /** comma-separated codecs the device must handle */
  codecs: z.string().optional(),
  audio_source: z.coerce.number().int().min(0).max(999).optional(),
  /** true: the call needs encrypted media (devices without SRTP show as no_capability) */
  srtp: z.enum(['true', 'false']).optional(),
});

/** The answer to drain and undrain. */
export interface DrainView {
  name: string;
  draining: boolean;
  active: number;
  capacity: number;
}

export function resourceRoutes(app: FastifyInstance, { node, view, writeLimit }: RouteContext<ResourceDeps>): void {
  const { model } = node;
  app.get('/api/resources', async () => view.resources());
  // The kinds of device this version knows, with their names for people (the console's labels).
  app.get('/api/kinds', async () =>
    Object.values(DEVICE_KINDS).map((k) => ({ type: k.type, label: k.label, unit: k.unit })),
  );

  // Drain: the device takes no new allocations, those in use finish; undrain reverses it. A device of
  // another node is drained by that node, which checks the operator's token itself (a node's key is not enough).
  for (const [verb, draining] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    app.post<{ Params: { name: string } }>(`/api/resources/:name/${verb}`, writeLimit(), async (req) => {
      const r = model.resources.get(req.params.name);
      if (!r) throw new HttpError(404, `no media resource ${req.params.name}`);
      const operator = req.principal!.name;
      let s: DeviceStatus | { error: string };
      if (r.node === node.name) s = await node.drainLocal(r.name, draining, operator);
      else {
        if (!node.liveness.isUp(r.node)) throw new HttpError(503, `${r.name}'s node ${r.node} is not up`);
        s = await node
          .drainOn(r.node, r.name, draining, { token: bearerToken(req.headers.authorization)! })
          .catch((err: unknown) => {
            throw err instanceof OperatorActRefused
              ? new HttpError(403, err.message)
              : new HttpError(503, `${r.node} did not answer: ${errorMessage(err)}`);
          });
      }
      if ('error' in s) throw new HttpError(503, s.error);
      const view: DrainView = {
        name: r.name,
        draining: s.draining ?? draining,
        active: s.active,
        capacity: s.capacity,
      };
      return view;
    });
  }

  app.get('/api/mrgls', async () => {
    const group = (name: string) => {
      const g = name === DEFAULT_GROUP ? model.defaultGroup : model.groups.get(name)!;
      return {
        name: g.name,
        location: g.location ?? null,
        user_class: g.userClass ?? null,
        policy: g.policy,
        devices: g.devices.map((d) => ({ name: d, type: model.resources.get(d)!.type })),
      };
    };
    return {
      mrgls: [...model.mrgls].map(([name, groups]) => ({ name, groups: groups.map(group) })),
      default_group: group(DEFAULT_GROUP),
    };
  });

  app.get('/api/explain', async (req) => {
    const q = parse(ExplainQuery, req.query);
    let codecs: Codec[] | undefined;
    if (q.codecs) codecs = q.codecs.split(',').map((c) => parse(Codec, c.trim().toUpperCase()));
    // A phone of another node: that node walks, as it would for a real allocation.
    return node.explainAnywhere({
      phone: q.phone,
      type: q.type,
      mrgl: q.mrgl,
      requirement: {
        ...(codecs ? { codecs } : {}),
        ...(q.audio_source !== undefined ? { audio_source: q.audio_source } : {}),
        ...(q.srtp === 'true' ? { srtp: true } : {}),
      },
    });
  });
}
