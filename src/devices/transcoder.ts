import { openRelaySession } from '../media/relay.ts';
import { missing, type DeviceKind } from './kind.ts';

/** Bridges two legs with different codecs; one unit per session. */
export const transcoder: DeviceKind = {
  type: 'transcoder',
  label: 'transcoder',
  unit: 'session',
  perCore: 500, // PCMU<->PCMA sessions: the load generator limited the search at 1,000; kept at the SRTP relay's figure
  legs: 2,
  rooms: false,
  lacks(spec, req) {
    const gone = missing(spec.codecs, req.codecs);
    return gone.length ? `does not transcode ${gone.join(', ')} (has ${spec.codecs.join(', ')})` : undefined;
  },
  open: openRelaySession,
};
