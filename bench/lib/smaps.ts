/**
 * Memory figures /proc gives beyond RSS (issue #14). Summed RSS counts the pages every node process shares
 * (the node binary's code, mapped libraries: ~45 MiB per process here) once per process; `nodeMemory` counts
 * them once, as the machine holds them: anonymous pages summed, each file's pages at the largest count any
 * one process holds. `kernelMemory` reads the kernel's own share (slab objects, TCP buffers), which no
 * process's RSS shows.
 */
import { readFileSync } from 'node:fs';

const KIB = 1024;
const PAGE = 4096;

export interface ProcessMemory {
  pid: number;
  rssBytes: number;
  /** Anonymous pages (heap, stacks, malloc arenas): this process's own memory. */
  anonBytes: number;
  /** File-backed pages (code and data of the binary and libraries), most of them shared. */
  fileBytes: number;
  /** Proportional set size: each resident page divided by the number of processes mapping it. */
  pssBytes: number;
}

export interface NodeMemory {
  processes: ProcessMemory[];
  /** RSS summed over the processes (what `ps` adds up). */
  rssSumBytes: number;
  /** Anonymous pages summed + each mapped file once (at its largest resident size in any process). */
  sharedOnceBytes: number;
  /**
   * PSS summed over the processes: every page counted once in all, shared ones split among their
   * processes (what `smem` reports). The node's memory as the machine holds it, by the kernel's own count.
   */
  pssSumBytes: number;
}

/** Reads /proc/<pid>/smaps of each process; a process that is gone is skipped. */
export function nodeMemory(pids: readonly number[]): NodeMemory {
  const processes: ProcessMemory[] = [];
  const files = new Map<string, number>();
  let anonSum = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    } catch {
      continue;
    }
    const mine = new Map<string, number>();
    let anon = 0;
    let file = 0;
    let pss = 0;
    let name = '';
    for (const line of text.split('\n')) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
        const path = line.split(/\s+/)[5] ?? '';
        name = path.startsWith('/') ? path : '';
      } else if (line.startsWith('Rss:')) {
        const bytes = Number(line.split(/\s+/)[1]) * KIB;
        if (name === '') anon += bytes;
        else {
          file += bytes;
          mine.set(name, (mine.get(name) ?? 0) + bytes);
        }
      } else if (line.startsWith('Pss:')) {
        pss += Number(line.split(/\s+/)[1]) * KIB;
      }
    }
    for (const [n, b] of mine) files.set(n, Math.max(files.get(n) ?? 0, b));
    anonSum += anon;
    processes.push({ pid, rssBytes: anon + file, anonBytes: anon, fileBytes: file, pssBytes: pss });
  }
  const filesOnce = [...files.values()].reduce((a, b) => a + b, 0);
  return {
    processes,
    rssSumBytes: processes.reduce((a, p) => a + p.rssBytes, 0),
    sharedOnceBytes: anonSum + filesOnce,
    pssSumBytes: processes.reduce((a, p) => a + p.pssBytes, 0),
  };
}

export interface KernelMemory {
  /** Slab memory (socket, inode, dentry objects …), machine-wide. */
  slabBytes: number;
  /** Pages the TCP stack holds for socket buffers, machine-wide. */
  tcpBufferBytes: number;
}

export function kernelMemory(): KernelMemory {
  let slabBytes = 0;
  let tcpBufferBytes = 0;
  try {
    const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    slabBytes = Number(m?.[1] ?? 0) * KIB;
    const t = /^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    tcpBufferBytes = Number(t?.[1] ?? 0) * PAGE;
  } catch {
    // Not Linux: the figures stay 0 and the report says so.
  }
  return { slabBytes, tcpBufferBytes };
}
