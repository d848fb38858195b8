import { missing, type DeviceKind } from './kind.ts';

/** Bridges two legs with different codecs; one unit per session. */
export const transcoder: DeviceKind = {
  type: 'transcoder',
  unit: 'session',
  lacks(spec, req) {
    const gone = missing(spec.codecs, req.codecs);
    return gone.length ? `does not transcode ${gone.join(', ')} (has ${spec.codecs.join(', ')})` : undefined;
  },
};
