/**
 * Writing a scenario's results: `<out>/<scenario>-<timestamp>.json` (everything measured, for tools and
 * for comparing releases), `<same>.md` (the human report) and `<same>-<chart>.svg` files the report links
 * (GitHub strips inline <svg> from Markdown but renders linked .svg images).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { fileTimestamp } from '../lib/units.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface MachineInfo {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    hostname: hostname(),
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
  };
}

/** The fields every scenario's report starts with. */
export interface ReportHeader<S extends string> {
  schema: number;
  scenario: S;
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
}

/** The header of a report finished now. */
export function reportHeader<S extends string>(
  scenario: S,
  startedAt: Date,
  command: string,
): ReportHeader<S> {
  return {
    schema: REPORT_SCHEMA_VERSION,
    scenario,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command,
    machine: machineInfo(),
  };
}

export interface ReportPaths {
  /** Path without extension: `<out>/<scenario>-<timestamp>`. */
  base: string;
  json: string;
  md: string;
  /** File name (no folder) of a chart, for links from the Markdown. */
  chartFile(name: string): string;
}

export function reportPaths(outDir: string, scenario: string, at = new Date()): ReportPaths {
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${scenario}-${fileTimestamp(at)}`);
  return {
    base,
    json: `${base}.json`,
    md: `${base}.md`,
    chartFile: (name) => `${basename(base)}-${name}.svg`,
  };
}

export interface Chart {
  name: string;
  svg: string;
}

/** Writes the JSON, the Markdown and the charts; returns the files written. */
export function writeReport(
  paths: ReportPaths,
  json: unknown,
  md: string,
  charts: readonly Chart[],
): string[] {
  const dir = join(paths.base, '..');
  writeFileSync(paths.json, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(paths.md, md);
  const files = [paths.json, paths.md];
  for (const c of charts) {
    const file = join(dir, paths.chartFile(c.name));
    writeFileSync(file, c.svg);
    files.push(file);
  }
  return files;
}

/** A Markdown table; cells are written as given (keep `|` out of them). */
export function mdTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function mdImage(title: string, file: string): string {
  return `![${title}](./${file})`;
}
