/**
 * IPv4 address ranges for the reachability analysis (plan/network): CIDR blocks as closed
 * integer intervals, interval sets, and the longest-prefix-match split of a destination range
 * over a route table. Pure; no Pulumi, no AWS SDK.
 */
import { formatCidr, parseCidr } from "../../infra/model/cidr.ts";

/** A closed interval of IPv4 addresses as unsigned 32-bit integers. */
export interface Range {
  readonly lo: number;
  readonly hi: number;
}

export const ALL: Range = { lo: 0, hi: 2 ** 32 - 1 };

export function cidrRange(text: string): Range & { prefix: number } {
  const c = parseCidr(text);
  return { lo: c.base, hi: c.base + 2 ** (32 - c.prefix) - 1, prefix: c.prefix };
}

function ip(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** A range as CIDR text when it is one block (10.64.0.0/16), else `a.b.c.d-e.f.g.h`. */
export function formatRange(r: Range): string {
  const size = r.hi - r.lo + 1;
  const prefix = 32 - Math.log2(size);
  if (Number.isInteger(prefix) && r.lo % size === 0) return formatCidr({ base: r.lo, prefix });
  return `${ip(r.lo)}-${ip(r.hi)}`;
}

export function contains(outer: Range, inner: Range): boolean {
  return inner.lo >= outer.lo && inner.hi <= outer.hi;
}

export function intersect(a: Range, b: Range): Range | undefined {
  const lo = Math.max(a.lo, b.lo);
  const hi = Math.min(a.hi, b.hi);
  return lo <= hi ? { lo, hi } : undefined;
}

/** Sorted, disjoint, non-adjacent ranges. */
export function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) out[out.length - 1] = { lo: last.lo, hi: Math.max(last.hi, r.hi) };
    else out.push({ lo: r.lo, hi: r.hi });
  }
  return out;
}

/** Whether the union of `cover` contains all of `r`. */
export function covered(r: Range, cover: readonly Range[]): boolean {
  let pos = r.lo;
  for (const c of normalize(cover)) {
    if (c.hi < pos) continue;
    if (c.lo > pos) return false;
    pos = c.hi + 1;
    if (pos > r.hi) return true;
  }
  return pos > r.hi;
}

/** Whether `r` overlaps any of `set`. */
export function overlapsAny(r: Range, set: readonly Range[]): boolean {
  return set.some((s) => intersect(r, s) !== undefined);
}

/** A route-like entry: a CIDR block, as a range with its prefix length. */
export interface Block extends Range {
  readonly prefix: number;
}

/** A piece of a destination range and the entry that wins it (undefined: no entry matches). */
export interface Piece<T> {
  range: Range;
  entry: T | undefined;
}

/**
 * Longest-prefix match of every address in `dst` against `entries`, as pieces of `dst`, each
 * won by the most specific entry containing it. CIDR blocks are laminar (two are nested or
 * disjoint), so one sweep with a stack of open blocks does it. Entries with the same block must
 * have been reduced to one by the caller (the table's own tie rule).
 *
 * VPC route tables: "we use the most specific route in your route table that matches the
 * traffic" (https://docs.aws.amazon.com/vpc/latest/userguide/how-route-tables-work.html#route-tables-priority).
 * Transit Gateway route tables: most specific first, then static over propagated
 * (https://docs.aws.amazon.com/vpc/latest/tgw/how-transit-gateways-work.html#tgw-route-evaluation-overview).
 */
export function longestPrefixSplit<T extends { block: Block }>(dst: Range, entries: readonly T[]): Piece<T>[] {
  const cands = entries
    .filter((e) => e.block.lo <= dst.hi && e.block.hi >= dst.lo)
    .sort((a, b) => a.block.lo - b.block.lo || a.block.prefix - b.block.prefix);
  const out: Piece<T>[] = [];
  const stack: T[] = [];
  let pos = dst.lo;
  const push = (lo: number, hi: number, entry: T | undefined) => {
    const last = out[out.length - 1];
    if (last && last.entry === entry && last.range.hi + 1 === lo) last.range = { lo: last.range.lo, hi };
    else out.push({ range: { lo, hi }, entry });
  };
  const emitUntil = (end: number) => {
    while (pos <= end) {
      const top = stack[stack.length - 1];
      if (top && top.block.hi < pos) {
        stack.pop();
        continue;
      }
      const segEnd = top ? Math.min(top.block.hi, end) : end;
      push(pos, segEnd, top);
      pos = segEnd + 1;
    }
  };
  for (const e of cands) {
    const start = Math.max(e.block.lo, dst.lo);
    if (start > pos) emitUntil(start - 1);
    while (stack.length > 0 && stack[stack.length - 1]!.block.hi < start) stack.pop();
    stack.push(e);
  }
  emitUntil(dst.hi);
  return out;
}

/**
 * The entries of one table indexed for `longestPrefixSplit`: a hub's Transit Gateway route table
 * holds a route per spoke, so scanning all of them for every lookup would make the fleet check
 * quadratic. Candidates of a range are the blocks containing its first address (one map lookup
 * per prefix length) and the blocks starting inside it (a binary search in start order).
 */
export class BlockIndex<T extends { block: Block }> {
  private readonly byPrefix = new Map<number, Map<number, T>>();
  private readonly sorted: T[];

  constructor(readonly entries: readonly T[]) {
    for (const e of entries) {
      let m = this.byPrefix.get(e.block.prefix);
      if (!m) this.byPrefix.set(e.block.prefix, (m = new Map<number, T>()));
      m.set(e.block.lo, e);
    }
    this.sorted = [...entries].sort((a, b) => a.block.lo - b.block.lo);
  }

  candidates(dst: Range): T[] {
    if (this.entries.length <= 32) return this.entries.filter((e) => e.block.lo <= dst.hi && e.block.hi >= dst.lo);
    const out = new Set<T>();
    for (const [prefix, m] of this.byPrefix) {
      const size = 2 ** (32 - prefix);
      const e = m.get(Math.floor(dst.lo / size) * size);
      if (e) out.add(e);
    }
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]!.block.lo < dst.lo) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.sorted.length && this.sorted[i]!.block.lo <= dst.hi; i++) out.add(this.sorted[i]!);
    return [...out];
  }

  split(dst: Range): Piece<T>[] {
    return longestPrefixSplit(dst, this.candidates(dst));
  }
}
