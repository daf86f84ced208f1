/** Property tests of the CIDR arithmetic that keeps tenant networks apart (infra/model/cidr.ts). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  allocate, CidrError, contains, formatCidr, isCidr, nthSubnet, overlaps, parseCidr, size, type Cidr,
} from "../../infra/model/cidr.ts";

/** A well-formed block: a random address with the host bits cleared. */
const cidrArb = (minPrefix = 0, maxPrefix = 32): fc.Arbitrary<Cidr> =>
  fc.record({ addr: fc.nat({ max: 0xffffffff }), prefix: fc.integer({ min: minPrefix, max: maxPrefix }) }).map(({ addr, prefix }) => ({
    base: prefix === 0 ? 0 : (addr & ((0xffffffff << (32 - prefix)) >>> 0)) >>> 0,
    prefix,
  }));

/** Independent oracle: the set of addresses as an interval [first, last]. */
const first = (c: Cidr) => c.base;
const last = (c: Cidr) => c.base + 2 ** (32 - c.prefix) - 1;

describe("parse / format", () => {
  it("round-trips every well-formed block", () => {
    fc.assert(
      fc.property(cidrArb(), (c) => {
        const text = formatCidr(c);
        expect(text).toMatch(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/);
        expect(parseCidr(text)).toEqual(c);
        expect(formatCidr(parseCidr(text))).toBe(text);
      }),
    );
  });

  it("parses dotted quads to the right integer", () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
        expect(parseCidr(`${a}.${b}.${c}.${d}/32`).base).toBe(((a * 256 + b) * 256 + c) * 256 + d);
      }),
    );
  });

  it("rejects host bits set, naming the network address", () => {
    fc.assert(
      fc.property(cidrArb(1, 31), fc.integer({ min: 1, max: 2 ** 31 }), (c, offset) => {
        const hostPart = offset % size(c);
        fc.pre(hostPart !== 0);
        const text = formatCidr({ base: c.base + hostPart, prefix: 32 }).replace(/\/32$/, `/${c.prefix}`);
        expect(() => parseCidr(text)).toThrow(CidrError);
        expect(() => parseCidr(text)).toThrow(`the network address is ${formatCidr(c)}`);
      }),
    );
  });

  it("rejects anything that is not a canonical a.b.c.d/n (octets <= 255 without leading zeros, n <= 32)", () => {
    for (const bad of ["", "10.0.0.0", "10.0.0/16", "256.0.0.0/8", "10.0.0.0/33", "10.0.0.0/-1", " 10.0.0.0/16", "10.0.0.0/16 ", "a.b.c.d/8", "010.0.0.0/8", "10.0.0.0/08"]) {
      expect(isCidr(bad), bad).toBe(false);
    }
    const num = (max: number) => fc.tuple(fc.boolean(), fc.integer({ min: 0, max })).map(([zero, n]) => (zero ? `0${n}` : String(n)));
    const nearCidr = fc.tuple(num(300), num(300), num(300), num(300), num(40)).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`);
    fc.assert(
      fc.property(fc.oneof(fc.string(), nearCidr), (s) => {
        // Never throws anything but CidrError, and agrees with isCidr.
        let parsed: Cidr | undefined;
        try {
          parsed = parseCidr(s);
        } catch (err) {
          expect(err).toBeInstanceOf(CidrError);
        }
        expect(isCidr(s)).toBe(parsed !== undefined);
        // Accepted text is canonical: what AWS receives is exactly what the overlap checks saw.
        if (parsed) expect(formatCidr(parsed)).toBe(s);
      }),
    );
  });
});

describe("overlaps / contains", () => {
  it("overlaps is symmetric and agrees with interval intersection", () => {
    fc.assert(
      fc.property(cidrArb(), cidrArb(), (a, b) => {
        expect(overlaps(a, b)).toBe(overlaps(b, a));
        expect(overlaps(a, b)).toBe(first(a) <= last(b) && first(b) <= last(a));
      }),
    );
  });

  it("contains agrees with interval inclusion and implies overlap", () => {
    fc.assert(
      fc.property(cidrArb(), cidrArb(), (a, b) => {
        expect(contains(a, b)).toBe(first(a) <= first(b) && last(b) <= last(a));
        if (contains(a, b)) expect(overlaps(a, b)).toBe(true);
      }),
    );
  });

  it("nthSubnet tiles its parent without gaps or overlaps", () => {
    fc.assert(
      fc.property(cidrArb(8, 28), fc.integer({ min: 0, max: 4 }), (parent, extra) => {
        const prefix = Math.min(32, parent.prefix + extra);
        const n = 2 ** (prefix - parent.prefix);
        const blocks = Array.from({ length: n }, (_, i) => nthSubnet(parent, prefix, i));
        blocks.forEach((b, i) => {
          expect(contains(parent, b)).toBe(true);
          if (i > 0) expect(first(b)).toBe(last(blocks[i - 1]!) + 1);
        });
        expect(first(blocks[0]!)).toBe(first(parent));
        expect(last(blocks[n - 1]!)).toBe(last(parent));
        expect(() => nthSubnet(parent, prefix, n)).toThrow(CidrError);
      }),
    );
  });
});

describe("allocate", () => {
  /** A supernet, a block size at most 6 bits smaller, and taken blocks near (and inside) it. */
  const scenario = cidrArb(8, 24).chain((supernet) =>
    fc.record({
      supernet: fc.constant(supernet),
      prefix: fc.integer({ min: supernet.prefix, max: Math.min(32, supernet.prefix + 6) }),
      taken: fc.array(
        fc.oneof(
          // inside the supernet, any size
          fc.record({ i: fc.nat(), p: fc.integer({ min: supernet.prefix, max: Math.min(32, supernet.prefix + 8) }) }).map(({ i, p }) =>
            nthSubnet(supernet, p, i % 2 ** (p - supernet.prefix)),
          ),
          // anywhere (may cover the whole supernet, or be unrelated)
          cidrArb(0, 32),
        ),
        { maxLength: 40 },
      ),
    }),
  );

  it("returns a block of the requested size, inside the supernet, overlapping nothing taken", () => {
    fc.assert(
      fc.property(scenario, ({ supernet, prefix, taken }) => {
        const got = allocate(supernet, prefix, taken);
        if (got === undefined) return;
        expect(got.prefix).toBe(prefix);
        expect(contains(supernet, got)).toBe(true);
        for (const t of taken) expect(overlaps(got, t), `${formatCidr(got)} vs ${formatCidr(t)}`).toBe(false);
        expect(parseCidr(formatCidr(got))).toEqual(got); // aligned: no host bits
      }),
    );
  });

  it("returns undefined only when every candidate block is taken", () => {
    fc.assert(
      fc.property(scenario, ({ supernet, prefix, taken }) => {
        const got = allocate(supernet, prefix, taken);
        const n = 2 ** (prefix - supernet.prefix);
        const free = Array.from({ length: n }, (_, i) => nthSubnet(supernet, prefix, i)).filter((b) => !taken.some((t) => overlaps(t, b)));
        if (got === undefined) expect(free).toEqual([]);
        else expect(got).toEqual(free[0]); // and the lowest free block otherwise
      }),
    );
  });

  it("is deterministic and independent of the order of taken blocks", () => {
    fc.assert(
      fc.property(scenario, fc.nat(), ({ supernet, prefix, taken }, seed) => {
        const shuffled = [...taken].sort((a, b) => ((a.base ^ seed) >>> 0) - ((b.base ^ seed) >>> 0) || a.prefix - b.prefix);
        expect(allocate(supernet, prefix, taken)).toEqual(allocate(supernet, prefix, taken));
        expect(allocate(supernet, prefix, shuffled)).toEqual(allocate(supernet, prefix, taken));
      }),
    );
  });

  it("allocating repeatedly (feeding results back as taken) yields pairwise disjoint blocks until full", () => {
    fc.assert(
      fc.property(scenario, ({ supernet, prefix, taken }) => {
        const got: Cidr[] = [];
        const all = [...taken];
        for (let i = 0; i < 70; i++) {
          const b = allocate(supernet, prefix, all);
          if (!b) break;
          got.push(b);
          all.push(b);
        }
        for (let i = 0; i < got.length; i++) for (let j = 0; j < i; j++) expect(overlaps(got[i]!, got[j]!)).toBe(false);
      }),
    );
  });
});
