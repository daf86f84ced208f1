/**
 * One reader for the control plane's settings (docs/control-plane.md). A setting arrives as a
 * string (the environment or the config file; automation/config.ts composes the sources); these
 * functions turn it into an integer, a number, a switch, a choice or a duration, or throw a
 * SettingError naming the setting, the value and what is allowed. Each module reads its own
 * settings with them (automation/http/settings.ts, automation/drift/settings.ts, config.ts).
 */

/** A setting's value, trimmed; undefined when unset or blank. */
export type SettingSource = (name: string) => string | undefined;

/** `NAME: must be <allowed>, got "<value>"`. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    super(`${setting}: must be ${allowed}, got ${JSON.stringify(value)}`);
    this.name = "SettingError";
  }
}

/** A whole number from min to max; `dflt` when unset. */
export function readInt(get: SettingSource, name: string, dflt: number, min: number, max: number): number {
  const v = get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new SettingError(name, v, `an integer from ${min} to ${max}`);
  return n;
}

/** A finite number of at least min (and at most max, when given); `dflt` when unset. */
export function readNumber(get: SettingSource, name: string, dflt: number, min: number, max?: number): number {
  const v = get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (max !== undefined && n > max)) {
    throw new SettingError(name, v, max === undefined ? `a number >= ${min}` : `a number from ${min} to ${max}`);
  }
  return n;
}

/** `on` or `off`; `dflt` when unset. */
export function readSwitch(get: SettingSource, name: string, dflt: boolean): boolean {
  const v = get(name);
  if (v === undefined) return dflt;
  if (v === "on") return true;
  if (v === "off") return false;
  throw new SettingError(name, v, "on or off");
}

/** One of `allowed`, exactly as written; `dflt` when unset. */
export function readChoice<T extends string>(get: SettingSource, name: string, dflt: T, allowed: readonly T[]): T {
  const v = get(name);
  if (v === undefined) return dflt;
  const found = allowed.find((a) => a === v);
  if (found !== undefined) return found;
  const list = allowed.length === 2 ? `${allowed[0]} or ${allowed[1]}` : `one of ${allowed.join(", ")}`;
  throw new SettingError(name, v, list);
}

const MS_PER = { ms: 1, seconds: 1_000, minutes: 60_000, hours: 3_600_000 } as const;

export interface DurationRule {
  /** The unit the setting is written in (its name says so: _MS, _SECONDS, _HOURS). */
  unit: keyof typeof MS_PER;
  min: number;
  max: number;
  /** Only whole units (a count the setting documents as such). */
  whole?: boolean;
  /** What a special value means, e.g. "0 turns it off"; appended to the allowed range. */
  note?: string;
}

/** A duration written in `rule.unit`, returned in milliseconds; `dfltMs` when unset. */
export function readDuration(get: SettingSource, name: string, dfltMs: number, rule: DurationRule): number {
  const v = get(name);
  if (v === undefined) return dfltMs;
  const n = Number(v);
  if (!Number.isFinite(n) || n < rule.min || n > rule.max || (rule.whole === true && !Number.isInteger(n))) {
    const what = rule.whole === true ? `a whole number of ${rule.unit}` : `a number of ${rule.unit}`;
    throw new SettingError(name, v, `${what} from ${rule.min} to ${rule.max}${rule.note ? ` (${rule.note})` : ""}`);
  }
  return n * MS_PER[rule.unit];
}

/**
 * Reads many settings and collects every problem (one line each, the SettingError's message) so
 * start-up names them all at once; a setting with a problem reads as the fallback given.
 */
export class SettingsReader {
  constructor(
    readonly get: SettingSource,
    readonly problems: string[],
  ) {}

  /** The value `read` returns, or `fallback` after recording its SettingError. */
  or<T, F>(read: (get: SettingSource) => T, fallback: F): T | F {
    try {
      return read(this.get);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      this.problems.push(err.message);
      return fallback;
    }
  }

  int(name: string, dflt: number, min: number, max: number): number {
    return this.or((get) => readInt(get, name, dflt, min, max), dflt);
  }

  number(name: string, dflt: number, min: number, max?: number): number {
    return this.or((get) => readNumber(get, name, dflt, min, max), dflt);
  }

  switch(name: string, dflt: boolean): boolean {
    return this.or((get) => readSwitch(get, name, dflt), dflt);
  }

  choice<T extends string>(name: string, dflt: T, allowed: readonly T[]): T {
    return this.or((get) => readChoice(get, name, dflt, allowed), dflt);
  }

  duration(name: string, dfltMs: number, rule: DurationRule): number {
    return this.or((get) => readDuration(get, name, dfltMs, rule), dfltMs);
  }
}
