/**
 * Reading one resource's declared inputs: typed accessors with the provider's defaults, and a
 * check that every declared input was consumed (anything else is refused, never ignored).
 */
import { ReplayError } from "./api.ts";

export class Inputs {
  private readonly used = new Set<string>();
  constructor(
    /** `<type> <name>`, the prefix of every error about this resource. */
    readonly what: string,
    readonly raw: Record<string, unknown>,
  ) {}
  private get(k: string): unknown {
    this.used.add(k);
    return this.raw[k];
  }
  str(k: string): string | undefined {
    const v = this.get(k);
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new ReplayError(`${this.what}: input ${k} is not a string`);
    return v;
  }
  need(k: string): string {
    const v = this.str(k);
    if (v === undefined) throw new ReplayError(`${this.what}: input ${k} is required (the replayer does not auto-name)`);
    return v;
  }
  /** Provider inputs arrive JSON-encoded ("false", "5432") from bridged SDKs; resource inputs do not. */
  bool(k: string, dflt: boolean): boolean {
    const v = this.get(k);
    if (v === undefined || v === null) return dflt;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    throw new ReplayError(`${this.what}: input ${k} is not a boolean`);
  }
  num(k: string, dflt: number): number {
    const v = this.get(k);
    if (v === undefined || v === null) return dflt;
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n)) throw new ReplayError(`${this.what}: input ${k} is not an integer`);
    return n;
  }
  list(k: string): string[] {
    const v = this.get(k);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new ReplayError(`${this.what}: input ${k} is not a list of strings`);
    return v as string[];
  }
  /** Inputs that only matter on delete, or that the replay does not need, are accepted as read. */
  ignore(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }
  /** Refuses anything declared that the replay did not consume: nothing is silently skipped. */
  done(): void {
    const extra = Object.keys(this.raw).filter((k) => !this.used.has(k) && this.raw[k] !== undefined && !k.startsWith("__"));
    if (extra.length > 0) throw new ReplayError(`${this.what}: unsupported input(s) ${extra.join(", ")}; extend test/support/pgReplay/`);
  }
}
