// Every phone of the cluster: where it is registered (contact, transport, since
// when, user agent), its MRGL and where that came from, its codecs and SRTP policy.
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../http.ts';
import type { PhoneDeps } from '../deps.ts';
import type { PhoneView } from '../views.ts';

export function phoneRoutes(app: FastifyInstance, { node }: RouteContext<PhoneDeps>): void {
  const { model } = node;
  app.get(
    '/api/phones',
    async (): Promise<PhoneView[]> =>
      [...model.phones.values()].map((p): PhoneView => {
        const found = node.devices.lookup(p.number);
        // A phone of this node may have handed over an MRGL when it registered.
        const mrgl = model.resolveMrgl(p, { registration: node.phones.get(p.number)?.snapshot().mrgl });
        return {
          number: p.number,
          node: p.node,
          device_pool: p.devicePool,
          user_class: p.userClass,
          location: p.location ?? null,
          mrgl: mrgl.mrgl ?? null,
          mrgl_source: mrgl.source,
          // what call control assumes the phone takes: configured, else learnt from its SDP, else the default
          codecs: p.codecsConfigured ? p.codecs : (found.entry?.codecs ?? p.codecs),
          codecs_source: p.codecsConfigured ? 'config' : found.entry?.codecs ? 'learnt' : 'default',
          srtp: p.srtp,
          pid: found.entry?.pid ?? null,
          registered: found.registered,
          // SIP: where the phone registered from (cluster-wide, from the mapping table)
          sip_registration: found.registered && found.entry.registration ? found.entry.registration : null,
          // the node it is registered at now: its own, or another of its Call Manager Group
          registered_at: found.registered && found.entry.registration ? found.entry.node : null,
          call_managers: p.callManagers,
        };
      }),
  );
}
