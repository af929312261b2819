/**
 * Live progress on stderr (cli-progress, imported here only): one bar with the figures that matter while a
 * scenario runs (sockets opened, rate, errors). On a terminal the bar redraws in place and log lines print
 * above it; without a terminal (CI, a log file) a plain status line is printed every few seconds instead.
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';

const PLAIN_STATUS_INTERVAL_MS = 5000;
const BAR_WIDTH = 24;

export interface Progress {
  /** A log line (above the bar on a terminal). */
  say(line: string): void;
  /** Starts a bar counting to `total` (replacing any previous one). */
  begin(label: string, total: number): void;
  update(value: number, info: string): void;
  /** Removes the bar (its last state stays printed). */
  end(): void;
}

export function createProgress(opts: { quiet: boolean }): Progress {
  if (opts.quiet) return { say() {}, begin() {}, update() {}, end() {} };
  return process.stderr.isTTY ? ttyProgress() : plainProgress();
}

function ttyProgress(): Progress {
  let multi: MultiBar | undefined;
  let bar: SingleBar | undefined;
  const end = (): void => {
    multi?.stop();
    multi = undefined;
    bar = undefined;
  };
  return {
    say(line) {
      if (multi) multi.log(`${line}\n`);
      else process.stderr.write(`${line}\n`);
    },
    begin(label, total) {
      end();
      multi = new MultiBar(
        {
          format: '{label} |{bar}| {value}/{total} {info}',
          barsize: BAR_WIDTH,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
        },
        Presets.shades_classic,
      );
      bar = multi.create(total, 0, { label, info: '' });
    },
    update(value, info) {
      bar?.update(value, { info });
    },
    end,
  };
}

function plainProgress(): Progress {
  let label = '';
  let total = 0;
  let last = 0;
  let complete = false;
  return {
    say: (line) => process.stderr.write(`${line}\n`),
    begin(l, t) {
      label = l;
      total = t;
      last = 0;
      complete = false;
    },
    update(value, info) {
      const now = Date.now();
      // A line every few seconds, and one when the count completes (but not again after that).
      const completes = value >= total && !complete;
      if (now - last < PLAIN_STATUS_INTERVAL_MS && !completes) return;
      if (value >= total) complete = true;
      last = now;
      process.stderr.write(`${label} ${value}/${total} ${info}\n`);
    },
    end() {},
  };
}
