import { ConferenceRoom } from '../media/conferenceRoom.ts';
import type { DeviceKind } from './kind.ts';

/** Mixes meet-me and ad-hoc conferences; one unit of capacity per participant. */
export const conferenceBridge: DeviceKind = {
  type: 'conference_bridge',
  label: 'conference bridge',
  unit: 'participant',
  perCore: 625, // rooms of 10, PCMU (bench:media, 40 ms jitter buffer criterion, two runs agree)
  legs: 1,
  rooms: true,
  lacks: () => undefined,
  /** a seat in the request's room (made by its first participant, closed with its last, with its links to other bridges) */
  async open(host, spec, req) {
    const key = `${spec.name}/${req.room ?? 'default'}`;
    const opened = !host.peekShared(key);
    const room = host.shared(key, () => new ConferenceRoom(key, host.clock));
    if (opened && req.room) host.roomChanged(spec.name, req.room, true);
    const leg = await host.leg(req.legs[0]!.codec);
    room.join(leg);
    return host.sessionOf(spec, [leg], req, () => {
      room.leave(leg);
      if (room.participants === 0 && host.peekShared(key) === room) {
        room.close();
        host.dropShared(key);
        if (req.room) host.roomChanged(spec.name, req.room, false);
      }
    });
  },
};
