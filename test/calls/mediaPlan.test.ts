// Which resources call control asks for, from offers and phone configs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calleeCodecs, calleeNeedsMtp, callerNeeds } from '../../src/calls/mediaPlan.ts';
import type { PhoneSpec } from '../../src/config/model.ts';
import type { AudioInfo } from '../../src/sip/sdp.ts';

const phone = (number: string, over: Partial<PhoneSpec> = {}): PhoneSpec => ({
  number,
  node: 'cm1',
  callManagers: ['cm1'],
  password: 'x',
  devicePool: 'DP',
  ownMrgl: undefined,
  poolMrgl: undefined,
  location: undefined,
  userClass: 'standard',
  codecs: ['PCMU', 'PCMA'],
  codecsConfigured: true,
  dtmf: ['rfc4733'],
  partitions: new Set(),
  mtpRequired: false,
  srtp: 'optional',
  mohAudioSource: undefined,
  networkHoldAudioSource: undefined,
  maxCalls: 4,
  busyTrigger: 1,
  ...over,
});
const offer = (codecs: AudioInfo['codecs'], telephoneEvent = true): AudioInfo => ({
  address: '127.0.0.1',
  port: 4000,
  codecs,
  telephoneEvent,
  telephoneEventPt: telephoneEvent ? 101 : undefined,
  direction: 'sendrecv',
  srtp: undefined,
});

describe('media plan', () => {
  it('takes the callee’s codecs from the config, else from what its SDP showed, else the default', () => {
    const unconfigured = phone('2', { codecsConfigured: false });
    assert.deepEqual(calleeCodecs(unconfigured, ['PCMA']), ['PCMA']);
    assert.deepEqual(calleeCodecs(unconfigured, undefined), ['PCMU', 'PCMA']);
    assert.deepEqual(calleeCodecs(phone('2', { codecs: ['G722'] }), ['PCMA']), ['G722'], 'the config wins');
    assert.deepEqual(callerNeeds(phone('1'), offer(['PCMU']), unconfigured, ['PCMA']).transcode, {
      callerCodec: 'PCMU',
      calleeCodecs: ['PCMA'],
    });
  });

  it('asks for a transcoder only when the phones share no codec', () => {
    assert.equal(callerNeeds(phone('1'), offer(['PCMU']), phone('2')).transcode, undefined);
    assert.deepEqual(callerNeeds(phone('1'), offer(['PCMU', 'G722']), phone('2', { codecs: ['PCMA'] })).transcode, {
      callerCodec: 'PCMU',
      calleeCodecs: ['PCMA'],
    });
  });

  it('asks for an MTP for mtp_required phones and for DTMF methods that do not meet', () => {
    assert.equal(callerNeeds(phone('1'), offer(['PCMU']), phone('2')).mtp, undefined);
    assert.match(callerNeeds(phone('1', { mtpRequired: true }), offer(['PCMU']), phone('2')).mtp!, /mtp_required/);
    assert.match(
      callerNeeds(phone('1'), offer(['PCMU'], true), phone('2', { dtmf: ['sip_info'] })).mtp!,
      /DTMF mismatch: 1 sends rfc4733, 2 takes sip_info/,
    );
    assert.equal(callerNeeds(phone('1'), offer(['PCMU'], false), phone('2', { dtmf: ['sip_info'] })).mtp, undefined);
    assert.match(calleeNeedsMtp(phone('2', { mtpRequired: true }))!, /mtp_required/);
    assert.equal(calleeNeedsMtp(phone('2')), undefined);
  });
});
