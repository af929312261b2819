/**
 * Reading SB_* values from an environment: unset or empty is undefined, anything unreadable is an error
 * naming the variable. Shared by the worker's config (src/config.ts) and the supervisor's options
 * (src/supervisor-options.ts), which imports nothing else of the node.
 */

/** An integer, or undefined when unset or empty. */
export function intFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${name} must be an integer, got '${raw}'`);
  return Number(raw.trim());
}

/** 1/true/yes/on or 0/false/no/off, or undefined when unset or empty. */
export function boolFromEnv(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new Error(`${name} must be true or false, got '${env[name]}'`);
}
