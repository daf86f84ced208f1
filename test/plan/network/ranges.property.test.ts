import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BlockIndex, covered, formatRange, longestPrefixSplit, type Block } from "../../../plan/network/ranges.ts";

/** Random CIDR blocks inside 10.0.0.0/16 (prefix 16..28), as the routes of one table. */
const blockArb = fc.tuple(fc.integer({ min: 16, max: 28 }), fc.nat()).map(([prefix, n]): Block => {
  const size = 2 ** (32 - prefix);
  const lo = 0x0a000000 + (n % 2 ** (prefix - 16)) * size;
  return { lo, hi: lo + size - 1, prefix };
});

describe("longest-prefix split (VPC and Transit Gateway route tables)", () => {
  it("gives every address of the destination the most specific block containing it, as a brute force does", () => {
    fc.assert(
      fc.property(fc.uniqueArray(blockArb, { maxLength: 12, selector: (b) => `${b.lo}/${b.prefix}` }), blockArb, (blocks, dst) => {
        const entries = blocks.map((block, i) => ({ block, i }));
        const pieces = longestPrefixSplit(dst, entries);
        // Pieces tile the destination in order.
        expect(pieces[0]!.range.lo).toBe(dst.lo);
        expect(pieces[pieces.length - 1]!.range.hi).toBe(dst.hi);
        for (let k = 1; k < pieces.length; k++) expect(pieces[k]!.range.lo).toBe(pieces[k - 1]!.range.hi + 1);
        // Sample addresses (the first, the last and a middle one of each piece).
        for (const p of pieces) {
          for (const a of [p.range.lo, p.range.hi, Math.floor((p.range.lo + p.range.hi) / 2)]) {
            const best = entries.filter((e) => e.block.lo <= a && a <= e.block.hi).sort((x, y) => y.block.prefix - x.block.prefix)[0];
            expect(p.entry?.i).toBe(best?.i);
          }
        }
        // The index finds the same split as a scan of all entries.
        expect(new BlockIndex(entries).split(dst)).toEqual(pieces);
      }),
      { numRuns: 500 },
    );
  });

  it("indexes large tables (more than 32 routes) the same way", () => {
    const entries = Array.from({ length: 300 }, (_, i) => ({ block: { lo: 0x0a800000 + i * 4096, hi: 0x0a800000 + i * 4096 + 4095, prefix: 20 }, i }));
    entries.push({ block: { lo: 0x0a800000, hi: 0x0affffff, prefix: 9 }, i: 300 });
    const idx = new BlockIndex(entries);
    const dst = { lo: 0x0a800000 + 5 * 4096 + 16, hi: 0x0a800000 + 7 * 4096 + 15 };
    expect(idx.split(dst).map((p) => [formatRange(p.range), p.entry?.i])).toEqual([
      ["10.128.80.16-10.128.95.255", 5],
      ["10.128.96.0/20", 6],
      ["10.128.112.0/28", 7],
    ]);
    expect(idx.split({ lo: 0x0b000000, hi: 0x0b0000ff })).toEqual([{ range: { lo: 0x0b000000, hi: 0x0b0000ff }, entry: undefined }]);
  });

  it("covered: a union of ranges covers a range only without gaps", () => {
    expect(covered({ lo: 0, hi: 99 }, [{ lo: 50, hi: 99 }, { lo: 0, hi: 49 }])).toBe(true);
    expect(covered({ lo: 0, hi: 99 }, [{ lo: 51, hi: 99 }, { lo: 0, hi: 49 }])).toBe(false);
    expect(covered({ lo: 0, hi: 99 }, [])).toBe(false);
  });
});
