// JSON on the wire: readable with `nats sub`, and fast enough for the
// allocation path (small messages). Decoding never throws past this module.
import { errorMessage } from '../errors.ts';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export type Decoded = { ok: true; value: unknown } | { ok: false; error: string };

export function decode(data: Uint8Array): Decoded {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(data)) as unknown };
  } catch (err) {
    return { ok: false, error: `not JSON: ${errorMessage(err)}` };
  }
}
