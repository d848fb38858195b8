// Digest nonces and answers, unit by unit: what a replayed, moved, stale or
// re-targeted answer gets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestAuth, digestResponse } from '../../src/sip/digest.ts';

const PASSWORD = 'pw-1001';
const passwordOf = (u: string) => (u === '1001' ? PASSWORD : undefined);

describe('Digest authentication', () => {
  const answer = (
    auth: DigestAuth,
    source: string,
    opts: { nc?: number; uri?: string; digestUri?: string; password?: string; method?: string } = {},
  ) => {
    const challenge = auth.challenges(source);
    const uri = opts.uri ?? 'sip:127.0.0.1:5060';
    const header = digestResponse({
      user: '1001',
      password: opts.password ?? PASSWORD,
      method: opts.method ?? 'REGISTER',
      uri,
      challenge,
      nc: opts.nc ?? 1,
      ...(opts.digestUri ? { digestUri: opts.digestUri } : {}),
    });
    return { header, uri };
  };
  const verify = (auth: DigestAuth, header: string, source: string, uri = 'sip:127.0.0.1:5060', method = 'REGISTER') =>
    auth.verify({ header, method, requestUri: uri, source, passwordOf });

  for (const algorithms of [['MD5'], ['SHA-256', 'MD5']] as const) {
    it(`accepts a right answer once per nonce count (${algorithms.join(', ')})`, () => {
      const auth = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms });
      const { header } = answer(auth, '10.0.0.1');
      assert.match(header, new RegExp(`algorithm=${algorithms[0]}`));
      assert.deepEqual(verify(auth, header, '10.0.0.1'), { ok: true, user: '1001' });
      const replay = verify(auth, header, '10.0.0.1');
      assert.equal(replay.ok, false);
      assert.equal(!replay.ok && replay.reason, 'replay');
    });
  }

  it('a higher nonce count on the same nonce is fine; a lower one is a replay', () => {
    const auth = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'] });
    const challenge = auth.challenges('10.0.0.1');
    const mk = (nc: number) =>
      digestResponse({
        user: '1001',
        password: PASSWORD,
        method: 'REGISTER',
        uri: 'sip:127.0.0.1:5060',
        challenge,
        nc,
      });
    assert.equal(verify(auth, mk(1), '10.0.0.1').ok, true);
    assert.equal(verify(auth, mk(3), '10.0.0.1').ok, true);
    const r = verify(auth, mk(2), '10.0.0.1');
    assert.equal(!r.ok && r.reason, 'replay');
  });

  it('refuses a nonce from another source address, a digest uri that is not the Request-URI, and wrong passwords', () => {
    const auth = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'] });
    const moved = verify(auth, answer(auth, '10.0.0.1').header, '10.0.0.2');
    assert.equal(!moved.ok && moved.reason, 'nonce');
    const other = verify(
      auth,
      answer(auth, '10.0.0.1', { method: 'INVITE', uri: 'sip:1003@h' }).header,
      '10.0.0.1',
      'sip:1004@h',
      'INVITE',
    );
    assert.equal(!other.ok && other.reason, 'uri');
    const wrong = verify(auth, answer(auth, '10.0.0.1', { password: 'guess' }).header, '10.0.0.1');
    assert.equal(!wrong.ok && wrong.reason, 'wrong');
    assert.equal(!wrong.ok && wrong.user, '1001');
    const unknown = auth.verify({
      header: answer(auth, '10.0.0.1').header.replace('username="1001"', 'username="9999"'),
      method: 'REGISTER',
      requestUri: 'sip:127.0.0.1:5060',
      source: '10.0.0.1',
      passwordOf,
    });
    assert.equal(!unknown.ok && unknown.reason, 'wrong', 'an unknown user is as wrong as a wrong password');
    const md5Only = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'] });
    const sha = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['SHA-256'] });
    const notOffered = md5Only.verify({
      header: answer(sha, '10.0.0.1').header,
      method: 'REGISTER',
      requestUri: 'sip:127.0.0.1:5060',
      source: '10.0.0.1',
      passwordOf,
    });
    assert.equal(!notOffered.ok && notOffered.reason, 'algorithm');
  });

  it('accepts the digest uri as SIPp writes it (the Request-URI host and port, no user), once per nonce count; not another host, port or a user', () => {
    const auth = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'] });
    const sippLike = answer(auth, '10.0.0.1', {
      method: 'INVITE',
      uri: 'sip:1003@127.0.0.1:5060',
      digestUri: 'sip:127.0.0.1:5060',
    }).header;
    assert.deepEqual(verify(auth, sippLike, '10.0.0.1', 'sip:1003@127.0.0.1:5060', 'INVITE'), {
      ok: true,
      user: '1001',
    });
    const again = verify(auth, sippLike, '10.0.0.1', 'sip:1004@127.0.0.1:5060', 'INVITE');
    assert.equal(!again.ok && again.reason, 'replay', 'the same answer for another callee is a replay');
    for (const digestUri of [
      'sip:127.0.0.1:5070',
      'sip:10.9.9.9:5060',
      'sip:1004@127.0.0.1:5060',
      'sip:127.0.0.1:5060;transport=tcp',
      'sips:127.0.0.1:5060',
    ]) {
      const r = verify(
        auth,
        answer(auth, '10.0.0.1', { method: 'INVITE', uri: 'sip:1003@127.0.0.1:5060', digestUri }).header,
        '10.0.0.1',
        'sip:1003@127.0.0.1:5060',
        'INVITE',
      );
      assert.equal(!r.ok && r.reason, 'uri', digestUri);
    }
  });

  it('answers a right answer to an expired nonce with stale, and a nonce of another process as foreign', async () => {
    const auth = new DigestAuth('tandem', { nonceTtlMs: 50, algorithms: ['MD5'] });
    const { header } = answer(auth, '10.0.0.1');
    await new Promise((r) => setTimeout(r, 80));
    const r = verify(auth, header, '10.0.0.1');
    assert.equal(!r.ok && r.stale, true);
    const restarted = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'] });
    const f = verify(restarted, answer(auth, '10.0.0.1').header, '10.0.0.1');
    assert.equal(!f.ok && f.reason, 'nonce');
  });

  it('keeps at most maxTrackedNonces nonce counts', () => {
    const auth = new DigestAuth('tandem', { nonceTtlMs: 60_000, algorithms: ['MD5'], maxTrackedNonces: 100 });
    for (let i = 0; i < 1000; i++) assert.equal(verify(auth, answer(auth, '10.0.0.1').header, '10.0.0.1').ok, true);
    assert.ok((auth as unknown as { counts: Map<string, unknown> }).counts.size <= 100);
  });
});
