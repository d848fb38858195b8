// Allocations held by this node: listed, made for an API client with a lease,
// released or (with force) revoked from a call.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Requirement } from '../../cluster/messages.ts';
import { Codec, MEDIA_RESOURCE_TYPES } from '../../config/schema.ts';
import type { Allocation } from '../../mrm/mediaResourceManager.ts';
import { errorMessage } from '../../errors.ts';
import { HttpError, parse, type RouteContext } from '../http.ts';
import type { AllocationDeps } from '../deps.ts';
import { OperatorActRefused, bearerToken } from '../tokens.ts';

const AllocationBody = z.strictObject({
  phone: z.string().min(1),
  type: z.enum(MEDIA_RESOURCE_TYPES, { error: `type must be one of ${MEDIA_RESOURCE_TYPES.join(', ')}` }),
  mrgl: z.string().min(1).optional(),
  requirement: Requirement.optional(),
  codecs: z.array(Codec).min(1).max(8).optional(),
  /** released by itself after this many seconds (default admin.lease_default_s, at most admin.lease_max_s) */
  lease_s: z.number().int().min(1).max(86_400).optional(),
});

const DeleteQuery = z.strictObject({
  force: z.enum(['true', 'false']).optional(),
  /** the node that holds it, when not this one (the console releases a call's allocation on its caller's node) */
  node: z.string().min(1).max(64).optional(),
});

export function allocationView(a: Allocation) {
  return {
    id: a.id,
    phone: a.phone,
    type: a.type,
    resource: a.resource,
    node: a.node,
    pid: a.pid,
    since: a.since,
    holder: a.holder.kind === 'call' ? { call: a.holder.call } : { client: a.holder.client },
    expires_at: a.expiresAt ?? null,
    trace: a.trace,
  };
}

export function allocationRoutes(app: FastifyInstance, { node, writeLimit }: RouteContext<AllocationDeps>): void {
  const { model } = node;
  app.get('/api/allocations', async () => node.mrm.allocations().map(allocationView));

  app.post('/api/allocations', writeLimit(), async (req, reply) => {
    const body = parse(AllocationBody, req.body);
    const client = req.principal!.name;
    const adminCfg = model.config.admin;
    const mine = node.mrm.allocations().filter((a) => a.holder.kind === 'api' && a.holder.client === client).length;
    if (mine >= adminCfg.max_allocations_per_client) {
      throw new HttpError(
        429,
        `client "${client}" already holds ${mine} allocations through the API (admin.max_allocations_per_client)`,
      );
    }
    const leaseS = Math.min(body.lease_s ?? adminCfg.lease_default_s, adminCfg.lease_max_s);
    const requirement = body.codecs ? { ...body.requirement, codecs: body.codecs } : body.requirement;
    const a = await node.mrm.allocate({
      phone: body.phone,
      type: body.type,
      mrgl: body.mrgl,
      requirement,
      holder: { kind: 'api', client },
      leaseMs: leaseS * 1000,
    });
    node.log.info({ allocation: a.id, device: a.resource, client, lease_s: leaseS }, 'allocated through the admin API');
    return reply.code(201).send(allocationView(a));
  });

  app.delete<{ Params: { id: string } }>('/api/allocations/:id', writeLimit(), async (req, reply) => {
    const q = parse(DeleteQuery, req.query);
    const client = req.principal!.name;
    if (q.node !== undefined && q.node !== node.name) {
      // Held by another node: forced there (only a call's can be shown to the console), the token checked there.
      if (!node.model.nodes.has(q.node)) throw new HttpError(404, `no node ${q.node}`);
      if (q.force !== 'true') throw new HttpError(400, 'releasing an allocation of another node needs ?force=true');
      if (!node.liveness.isUp(q.node)) throw new HttpError(503, `${q.node} is not up`);
      const r = await node
        .releaseAllocationOn(q.node, req.params.id, { token: bearerToken(req.headers.authorization)! })
        .catch((err: unknown) => {
          throw err instanceof OperatorActRefused
            ? new HttpError(403, err.message)
            : new HttpError(503, `${q.node} did not answer: ${errorMessage(err)}`);
        });
      if (r.status === 404) throw new HttpError(404, `no allocation ${req.params.id} held by ${q.node}`);
      return reply.code(204).send();
    }
    const a = node.mrm.get(req.params.id);
    if (!a) throw new HttpError(404, `no allocation ${req.params.id} held by ${node.name}`);
    if (a.holder.kind === 'call') {
      if (q.force !== 'true') {
        throw new HttpError(
          409,
          `allocation ${a.id} carries the media of call ${a.holder.call}; add ?force=true to take it (the call moves to another device or ends)`,
          {
            call: a.holder.call,
          },
        );
      }
      await node.releaseAllocation(a.id, client);
      return reply.code(204).send();
    }
    await a.release();
    node.log.info({ allocation: a.id, device: a.resource, client, holder: a.holder }, 'released through the admin API');
    return reply.code(204).send();
  });
}
