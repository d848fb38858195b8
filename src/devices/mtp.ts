import { openRelaySession } from '../media/relay.ts';
import { missing, type DeviceKind } from './kind.ts';

/** Media termination point: anchors a leg's media and converts DTMF methods; one unit per stream. */
export const mtp: DeviceKind = {
  type: 'mtp',
  label: 'MTP',
  unit: 'stream',
  perCore: 500, // relay sessions (two RTP streams each) with SRTP on both legs; about twice that in clear
  legs: 2,
  rooms: false,
  lacks(spec, req) {
    // Converting DTMF needs both methods; plain relay needs none.
    const gone = missing(spec.dtmf, req.dtmf && req.dtmf.length > 1 ? req.dtmf : undefined);
    return gone.length ? `does not handle DTMF ${gone.join(', ')}` : undefined;
  },
  open: openRelaySession,
};
