// The certificate of SIP over TLS: the configured PEM files, or a self-signed
// pair made once per node (kept owner-only in .tandem/ beside the config and
// reused at every start), so a test or lab cluster speaks TLS out of the box.
// Phones then need that certificate as their CA (baresip: sip_cafile).
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { generate } from 'selfsigned';
import { errorMessage, TandemError } from '../errors.ts';

export class SipCertificateError extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SipCertificate {
  cert: Buffer;
  key: Buffer;
  /** where the certificate is (to give phones as their CA) */
  certFile: string;
  created: boolean;
}

/**
 * `configured`: sip.tls (files relative to baseDir). Else the node's own
 * self-signed pair, made for `host` (its IP or name) if missing.
 */
export async function sipCertificate(o: {
  configured?: { cert: string; key: string } | undefined;
  baseDir: string;
  cluster: string;
  node: string;
  host: string;
}): Promise<SipCertificate> {
  const at = (f: string) => (isAbsolute(f) ? f : resolve(o.baseDir, f));
  if (o.configured) {
    const [certFile, keyFile] = [at(o.configured.cert), at(o.configured.key)];
    try {
      return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, created: false };
    } catch (err) {
      throw new SipCertificateError(`sip.tls: ${errorMessage(err)}`, { cause: err });
    }
  }
  const base = join(o.baseDir, '.tandem', `${o.cluster}-${o.node}.sip-tls`);
  const [certFile, keyFile] = [`${base}.crt`, `${base}.key`];
  if (existsSync(certFile) && existsSync(keyFile))
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, created: false };
  const ip = /^[0-9.]+$/.test(o.host) || o.host.includes(':');
  const pems = await generate([{ name: 'commonName', value: `tandem ${o.cluster} ${o.node}` }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [ip ? { type: 7, ip: o.host } : { type: 2, value: o.host }, { type: 2, value: 'localhost' }],
      },
    ],
  });
  mkdirSync(dirname(certFile), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(certFile, pems.cert);
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), certFile, created: true };
}
