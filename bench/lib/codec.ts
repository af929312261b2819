/** msgpack for the bench's clients (@msgpack/msgpack is imported here only), with reusable codec instances. */
import { Decoder, Encoder } from '@msgpack/msgpack';

const encoder = new Encoder();
const decoder = new Decoder();

export function encodeFrame(frame: unknown): Uint8Array {
  return encoder.encode(frame);
}

/** Throws on bytes that are not one msgpack value. */
export function decodeFrame(data: Uint8Array): unknown {
  return decoder.decode(data);
}
