// One long-lived raw deflate or inflate handle per thread, reset (which keeps its preset dictionary)
// between bodies, instead of creating and closing a zlib handle with its dictionary for every body.
// Every body is still a complete raw deflate stream of its own, so each one inflates independently.
//
// Node has no public synchronous API for a reusable handle (deflateRawSync closes its handle after
// one call), so this drives the handle the way node:zlib's own processChunkSync does: writeSync on
// `_handle`, counts in `_writeState`, then `_handle.reset()`, which re-applies the dictionary
// (node_zlib.cc ResetStream -> SetDictionary). When those internals are not there (another Node), it
// falls back to the one-shot functions, with the same output format.

import {
  constants,
  createDeflateRaw,
  createInflateRaw,
  deflateRawSync,
  inflateRawSync,
  type ZlibOptions,
} from 'node:zlib';

interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
  close(): void;
}

interface ZlibInternals {
  _handle?: ZlibHandle | null;
  _writeState?: Uint32Array;
  errored?: Error | null;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

const SCRATCH_BYTES = 64 * 1024;

export type ZlibMode = 'deflate' | 'inflate';

/** Thrown when an inflated body would exceed `maxOutputBytes`. */
export class OutputTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`inflated output exceeds ${limit} bytes`);
    this.name = 'OutputTooLargeError';
  }
}

/**
 * A raw deflate (or inflate) handle with a preset dictionary, kept for many bodies. `run` returns the
 * whole output of one body in a Buffer of its own exact size; it throws the zlib error for bad input
 * (the handle is then replaced) and OutputTooLargeError past `maxOutputBytes`. Not for concurrent use
 * (a worker thread runs one task at a time).
 */
export class ReusableZlib {
  private engine: ZlibInternals | undefined;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Bodies through the current handle (for tests: reuse is observable). */
  reused = 0;

  constructor(
    readonly mode: ZlibMode,
    private readonly options: ZlibOptions,
  ) {}

  /** Whether this Node exposes what reuse needs (else every call is one-shot). */
  static supported(): boolean {
    const probe = createDeflateRaw() as unknown as ZlibInternals;
    const ok = typeof probe._handle?.writeSync === 'function' && probe._writeState instanceof Uint32Array;
    probe._handle?.close();
    return ok;
  }

  run(input: Uint8Array, maxOutputBytes = Number.MAX_SAFE_INTEGER): Buffer {
    const engine = this.handle();
    if (engine === undefined) return this.oneShot(input, maxOutputBytes);
    const handle = engine._handle as ZlibHandle;
    const state = engine._writeState as Uint32Array;
    let inOff = 0;
    let availIn = input.byteLength;
    let chunks: Buffer[] | undefined;
    let total = 0;
    try {
      for (;;) {
        handle.writeSync(constants.Z_FINISH, input, inOff, availIn, this.scratch, 0, SCRATCH_BYTES);
        if (engine.errored) throw engine.errored;
        const availOutAfter = state[0] as number;
        const availInAfter = state[1] as number;
        const have = SCRATCH_BYTES - availOutAfter;
        total += have;
        if (total > maxOutputBytes) throw new OutputTooLargeError(maxOutputBytes);
        if (availOutAfter !== 0) {
          // Done: the stream ended within this pass.
          const last = this.copyOut(have);
          handle.reset();
          this.reused++;
          if (chunks === undefined) return last;
          chunks.push(last);
          const whole = Buffer.allocUnsafeSlow(total);
          let at = 0;
          for (const c of chunks) at += c.copy(whole, at);
          return whole;
        }
        // Output full: keep what came out and go on with the rest of the input.
        chunks ??= [];
        chunks.push(this.copyOut(SCRATCH_BYTES));
        inOff += availIn - availInAfter;
        availIn = availInAfter;
      }
    } catch (err) {
      this.discard();
      throw err;
    }
  }

  close(): void {
    this.discard();
  }

  // Not Buffer.from (small ones are views into the shared 8 KiB pool, which structured clone would
  // copy whole): each output owns an ArrayBuffer of exactly its size.
  private copyOut(bytes: number): Buffer {
    const out = Buffer.allocUnsafeSlow(bytes);
    this.scratch.copy(out, 0, 0, bytes);
    return out;
  }

  private handle(): ZlibInternals | undefined {
    if (this.engine) return this.engine;
    const created = (this.mode === 'deflate'
      ? createDeflateRaw(this.options)
      : createInflateRaw(this.options)) as unknown as ZlibInternals;
    if (typeof created._handle?.writeSync !== 'function' || !(created._writeState instanceof Uint32Array)) {
      return undefined;
    }
    // A bad body makes the stream emit 'error' later; the error is already thrown from run().
    created.on('error', () => {});
    this.engine = created;
    this.reused = 0;
    return created;
  }

  private discard(): void {
    const e = this.engine;
    this.engine = undefined;
    const h = e?._handle;
    if (!e || !h) return;
    // Cleared first, so the stream's own close (after an error it destroys itself) finds nothing to close.
    e._handle = null;
    h.close();
  }

  private oneShot(input: Uint8Array, maxOutputBytes: number): Buffer {
    if (this.mode === 'deflate') return deflateRawSync(input, this.options);
    return inflateRawSync(input, { ...this.options, maxOutputLength: maxOutputBytes });
  }
}
