// Node identities: one ed25519 key pair per call manager, in the NATS
// ecosystem's nkey format (a user nkey), so the same key authenticates the
// node to nats-server and signs everything the node says on the bus and in
// the mapping table. Keys live in a directory (cluster.nats.keys_dir):
// `<node>.pub` for every node (public, copied to every machine) and
// `<node>.seed` for the node that runs there (secret, mode 0600).
// Signing and verifying use node:crypto's native ed25519 (the nkeys library's
// pure JS signs about a hundred messages a second; node:crypto, tens of
// thousands).
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import type { ClusterModel } from '../config/model.ts';
import { TandemError } from '../errors.ts';

export class NodeKeyError extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding (the nkey text encoding). */
function base32Decode(s: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new NodeKeyError('not a base32 nkey');
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The raw 32-byte ed25519 public key of a user nkey ("U..."): prefix byte, key, CRC16. */
export function rawPublicKey(nkey: string): Buffer {
  if (!/^U[A-Z2-7]{55}$/.test(nkey))
    throw new NodeKeyError(`"${nkey.slice(0, 12)}..." is not a user nkey (U followed by 55 base32 characters)`);
  return base32Decode(nkey).subarray(1, 33);
}

function publicKeyObject(nkey: string): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: rawPublicKey(nkey).toString('base64url') },
    format: 'jwk',
  });
}

/** A node's own key: signs, and authenticates it to nats-server. */
export class NodeIdentity {
  private readonly key: KeyObject;
  readonly publicKey: string;

  constructor(
    readonly node: string,
    /** the nkey seed text ("SU...") */
    readonly seed: Uint8Array,
  ) {
    let kp: ReturnType<typeof fromSeed>;
    try {
      kp = fromSeed(seed);
    } catch (err) {
      throw new NodeKeyError(`the seed of node ${node} is not an nkey seed`, { cause: err });
    }
    this.publicKey = kp.getPublicKey();
    // The seed text decodes to two prefix bytes, the 32-byte ed25519 seed and a CRC16.
    const raw = base32Decode(new TextDecoder().decode(seed)).subarray(2, 34);
    this.key = createPrivateKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        d: raw.toString('base64url'),
        x: rawPublicKey(this.publicKey).toString('base64url'),
      },
      format: 'jwk',
    });
  }

  static generate(node: string): NodeIdentity {
    return new NodeIdentity(node, createUser().getSeed());
  }

  sign(data: Uint8Array): Buffer {
    return sign(null, data, this.key);
  }
}

/** The public keys of every node of the cluster: who may say what. */
export class NodeKeyring {
  private readonly keys = new Map<string, KeyObject>();
  readonly publicKeys = new Map<string, string>();

  add(node: string, nkey: string): void {
    this.keys.set(node, publicKeyObject(nkey));
    this.publicKeys.set(node, nkey);
  }

  has(node: string): boolean {
    return this.keys.has(node);
  }

  /** Whether `sig` over `data` was made by `node`'s key (false for a node not in the keyring). */
  verify(node: string, data: Uint8Array, sig: Uint8Array): boolean {
    const k = this.keys.get(node);
    if (!k || sig.length !== 64) return false;
    try {
      return verify(null, data, k, sig);
    } catch {
      return false;
    }
  }
}

/** Keys for a whole cluster held in one process (the embedded cluster): generated at start, never written. */
export function ephemeralKeys(nodes: Iterable<string>): {
  identities: Map<string, NodeIdentity>;
  keyring: NodeKeyring;
} {
  const identities = new Map<string, NodeIdentity>();
  const keyring = new NodeKeyring();
  for (const n of nodes) {
    const id = NodeIdentity.generate(n);
    identities.set(n, id);
    keyring.add(n, id.publicKey);
  }
  return { identities, keyring };
}

/** The keys directory of a config (cluster.nats.keys_dir, default .tandem/<cluster>-keys beside the config). */
export function keysDir(model: ClusterModel): string {
  const d = model.config.cluster.nats?.keys_dir ?? join('.tandem', `${model.config.cluster.name}-keys`);
  return isAbsolute(d) ? d : resolve(model.baseDir, d);
}

/** Whether the keys directory holds a public key for every node and the seed of `node`. */
export function hasKeys(model: ClusterModel, node: string): boolean {
  const dir = keysDir(model);
  return (
    existsSync(join(dir, `${node}.seed`)) && [...model.nodes.keys()].every((n) => existsSync(join(dir, `${n}.pub`)))
  );
}

/** Reads every node's public key and this node's seed. */
export function loadKeys(model: ClusterModel, node: string): { identity: NodeIdentity; keyring: NodeKeyring } {
  const dir = keysDir(model);
  const keyring = new NodeKeyring();
  for (const n of model.nodes.keys()) {
    const file = join(dir, `${n}.pub`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new NodeKeyError(`cannot read the public key of node ${n} (${file}): run \`tandem nats-setup\``, {
        cause: err,
      });
    }
    keyring.add(n, text);
  }
  const seedFile = join(dir, `${node}.seed`);
  let seed: Buffer;
  try {
    seed = readFileSync(seedFile);
  } catch (err) {
    throw new NodeKeyError(`cannot read the seed of node ${node} (${seedFile})`, { cause: err });
  }
  const identity = new NodeIdentity(node, new TextEncoder().encode(seed.toString('utf8').trim()));
  if (keyring.publicKeys.get(node) !== identity.publicKey)
    throw new NodeKeyError(`${seedFile} does not match ${node}.pub`);
  return { identity, keyring };
}

/** Creates the keys the directory lacks (seeds 0600); returns each node's public key. */
export function generateKeys(model: ClusterModel): Map<string, string> {
  const dir = keysDir(model);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pubs = new Map<string, string>();
  for (const n of model.nodes.keys()) {
    const pubFile = join(dir, `${n}.pub`);
    const seedFile = join(dir, `${n}.seed`);
    if (existsSync(pubFile)) {
      pubs.set(n, readFileSync(pubFile, 'utf8').trim());
      continue;
    }
    const id = NodeIdentity.generate(n);
    writeFileSync(seedFile, Buffer.from(id.seed), { mode: 0o600, flag: 'wx' });
    chmodSync(seedFile, 0o600);
    writeFileSync(pubFile, `${id.publicKey}\n`, { mode: 0o644 });
    pubs.set(n, id.publicKey);
  }
  return pubs;
}
