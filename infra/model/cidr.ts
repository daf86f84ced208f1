/** IPv4 CIDR arithmetic: pure, no dependencies, used by validation, allocation and the subnet planner. */

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly base: number;
  readonly prefix: number;
}

// No leading zeros ("010.0.0.0/8"): some tools read them as octal, and the text is passed to AWS as written.
const OCTET = "(0|[1-9]\\d{0,2})";
const CIDR_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}\\/(0|[1-9]\\d?)$`);

export class CidrError extends Error {}

/** Parses `a.b.c.d/n`; rejects host bits set (10.0.0.1/16), which AWS also rejects for a VPC. */
export function parseCidr(text: string): Cidr {
  const m = CIDR_RE.exec(text);
  if (!m) throw new CidrError(`"${text}" is not an IPv4 CIDR block (a.b.c.d/n)`);
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) throw new CidrError(`"${text}" is not a valid IPv4 CIDR block`);
  const addr = (((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!) >>> 0;
  const base = (addr & mask(prefix)) >>> 0;
  if (base !== addr) {
    throw new CidrError(`"${text}" has host bits set; the network address is ${formatCidr({ base, prefix })}`);
  }
  return { base, prefix };
}

export function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  const b = c.base;
  return `${b >>> 24}.${(b >>> 16) & 255}.${(b >>> 8) & 255}.${b & 255}/${c.prefix}`;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const aEnd = a.base + size(a);
  const bEnd = b.base + size(b);
  return a.base < bEnd && b.base < aEnd;
}

/** Whether `inner` lies entirely inside `outer`. */
export function contains(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && inner.base >= outer.base && inner.base + size(inner) <= outer.base + size(outer);
}

/** The i-th block of the given prefix inside `parent`. */
export function nthSubnet(parent: Cidr, prefix: number, index: number): Cidr {
  if (prefix < parent.prefix) throw new CidrError(`/${prefix} does not fit in ${formatCidr(parent)}`);
  const count = 2 ** (prefix - parent.prefix);
  if (index < 0 || index >= count) {
    throw new CidrError(`${formatCidr(parent)} holds ${count} /${prefix} blocks; index ${index} is out of range`);
  }
  return { base: (parent.base + index * 2 ** (32 - prefix)) >>> 0, prefix };
}

/**
 * First block of `prefix` inside `supernet` that overlaps none of `taken`. Deterministic (lowest
 * address first) so two runs of `tenantctl new` on the same fleet choose the same block.
 */
export function allocate(supernet: Cidr, prefix: number, taken: readonly Cidr[]): Cidr | undefined {
  const count = 2 ** (prefix - supernet.prefix);
  for (let i = 0; i < count; i++) {
    const candidate = nthSubnet(supernet, prefix, i);
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  return undefined;
}
