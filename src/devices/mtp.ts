import { missing, type DeviceKind } from './kind.ts';

/** Media termination point: anchors a leg's media and converts DTMF methods; one unit per stream. */
export const mtp: DeviceKind = {
  type: 'mtp',
  unit: 'stream',
  lacks(spec, req) {
    // Converting DTMF needs both methods; plain relay needs none.
    const gone = missing(spec.dtmf, req.dtmf && req.dtmf.length > 1 ? req.dtmf : undefined);
    return gone.length ? `does not handle DTMF ${gone.join(', ')}` : undefined;
  },
};
