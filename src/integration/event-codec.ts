/**
 * Payloads of business events: JSON or msgpack, told apart by the first byte (a JSON object starts with
 * `{` after optional whitespace; a msgpack map starts with 0x80-0x8f, 0xde or 0xdf, and no msgpack map
 * starts with `{` or whitespace). Both must decode to a map; anything else is refused with a reason.
 */
import { msgpackDecode } from '../protocol/codec.js';

export type PayloadFormat = 'json' | 'msgpack';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function detectFormat(data: Uint8Array): PayloadFormat | null {
  for (const b of data) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    if (b === 0x7b) return 'json';
    if ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf) return 'msgpack';
    return null;
  }
  return null;
}

/** Decodes an event payload to a map; throws Error with a reason a publisher can act on. */
export function decodeEventPayload(data: Uint8Array, maxBytes: number): Record<string, unknown> {
  if (data.byteLength > maxBytes)
    throw new Error(`payload is ${data.byteLength} bytes, more than ${maxBytes}`);
  const format = detectFormat(data);
  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(utf8.decode(data));
    } catch (err) {
      throw new Error(`payload is not valid JSON: ${(err as Error).message}`);
    }
  } else if (format === 'msgpack') {
    try {
      value = msgpackDecode(data);
    } catch (err) {
      throw new Error(`payload is not valid msgpack: ${(err as Error).message}`);
    }
  } else {
    throw new Error('payload must be a JSON object or a msgpack map');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('payload must be a JSON object or a msgpack map');
  }
  return value as Record<string, unknown>;
}
