/**
 * The packet walker of the reachability analysis (plan/network): where AWS forwards a packet
 * from a subnet, hop by hop (VPC route tables, NAT and internet gateways, VPC peerings, Transit
 * Gateway attachments, route tables and peerings), for a whole range of destination addresses
 * at once. Pure; no Pulumi, no AWS SDK.
 *
 * Two modes. `must`: every choice AWS may make has to deliver (a database placed in any of its
 * subnets, any attachment subnet, a peering nobody of ours accepts counts as down): used to
 * prove the runner reaches a database. `may`: any choice that could deliver counts (a pending
 * peering may be accepted by its owner): used to prove tenants cannot reach each other.
 */
import type { Inventory, Peering, RouteTable, Subnet, Tgw, TgwAttachment, TgwRoute, TgwRouteTable, Vpc, VpcRoute } from "./inventory.ts";
import { BlockIndex, contains, formatRange, intersect, type Range } from "./ranges.ts";

export type Mode = "must" | "may";

export type Outcome =
  | { kind: "delivered"; vpc: Vpc; range: Range; src: Range; hops: string[]; via: "origin" | "tgw" | "pcx" }
  | { kind: "external"; what: "customer" | "internet"; peering?: Peering; range: Range; hops: string[] }
  | { kind: "dropped"; range: Range; reason: string; hops: string[] };

export interface TraceOptions {
  mode: Mode;
  /**
   * Layer check: pretend every Transit Gateway delivers whatever reaches it to every VPC attached
   * to it (or to a TGW peered with it) whose CIDR holds the address. Isolation must then still
   * hold through the VPC route tables alone.
   */
  openTgw?: boolean;
}

export function tableLabel(t: RouteTable): string {
  return `route table ${t.id} (${t.name}, ${t.stack})`;
}
function tgwTableLabel(t: TgwRouteTable): string {
  return `transit gateway route table ${t.id} (${t.name}, ${t.stack})`;
}
function attachmentLabel(a: TgwAttachment): string {
  return `attachment ${a.id} (${a.name}, ${a.stack})`;
}
export function vpcLabel(v: Vpc): string {
  return `vpc ${v.id} (${v.name}, ${v.stack})`;
}

/** Per-inventory indexes the walker needs; build once, trace many times. */
export class Network {
  private readonly vpcIndex = new Map<RouteTable, BlockIndex<VpcRoute>>();
  private readonly tgwIndex = new Map<TgwRouteTable, BlockIndex<TgwRoute>>();
  private readonly attachmentsByVpc = new Map<Vpc, TgwAttachment[]>();
  private readonly attachedVpcs = new Map<Tgw, BlockIndex<{ block: Range & { prefix: number }; vpc: Vpc; attachment: TgwAttachment }>>();

  constructor(readonly inv: Inventory) {
    for (const a of inv.attachments) {
      if (a.kind !== "vpc" || !a.vpc) continue;
      const list = this.attachmentsByVpc.get(a.vpc) ?? [];
      list.push(a);
      this.attachmentsByVpc.set(a.vpc, list);
    }
  }

  routes(t: RouteTable): BlockIndex<VpcRoute> {
    let idx = this.vpcIndex.get(t);
    if (!idx) {
      // One route per destination in a VPC table (AWS rejects a duplicate); the local route first.
      const seen = new Map<string, VpcRoute>();
      for (const r of [...t.routes].sort((a, b) => Number(b.target.kind === "local") - Number(a.target.kind === "local"))) {
        const key = `${r.block.lo}/${r.block.prefix}`;
        if (!seen.has(key)) seen.set(key, r);
      }
      this.vpcIndex.set(t, (idx = new BlockIndex([...seen.values()])));
    }
    return idx;
  }

  tgwRoutes(t: TgwRouteTable): BlockIndex<TgwRoute> {
    let idx = this.tgwIndex.get(t);
    if (!idx) {
      // Same prefix: a static route wins over a propagated one; of two propagated routes for the same
      // CIDR AWS keeps the first (it does not propagate an overlapping VPC CIDR).
      const seen = new Map<string, TgwRoute>();
      for (const r of [...t.routes].sort((a, b) => Number(b.static) - Number(a.static))) {
        const key = `${r.block.lo}/${r.block.prefix}`;
        if (!seen.has(key)) seen.set(key, r);
      }
      this.tgwIndex.set(t, (idx = new BlockIndex([...seen.values()])));
    }
    return idx;
  }

  attachmentsOf(vpc: Vpc): readonly TgwAttachment[] {
    return this.attachmentsByVpc.get(vpc) ?? [];
  }

  attachmentOf(vpc: Vpc, tgw: Tgw | undefined): TgwAttachment | undefined {
    return this.attachmentsByVpc.get(vpc)?.find((a) => a.tgw === tgw);
  }

  /** openTgw: the VPCs attached to a TGW or to the TGWs peered with it, by CIDR. */
  attached(tgw: Tgw): BlockIndex<{ block: Range & { prefix: number }; vpc: Vpc; attachment: TgwAttachment }> {
    let idx = this.attachedVpcs.get(tgw);
    if (!idx) {
      const tgwsReached = new Set<Tgw>([tgw]);
      for (const a of this.inv.attachments) {
        if (a.kind === "peering" && (a.tgw === tgw || a.peerTgw === tgw)) {
          if (a.tgw) tgwsReached.add(a.tgw);
          if (a.peerTgw) tgwsReached.add(a.peerTgw);
        }
      }
      const entries = this.inv.attachments
        .filter((a) => a.kind === "vpc" && a.vpc && a.tgw && tgwsReached.has(a.tgw))
        .flatMap((a) => a.vpc!.cidrs.map((block) => ({ block, vpc: a.vpc!, attachment: a })));
      this.attachedVpcs.set(tgw, (idx = new BlockIndex(entries)));
    }
    return idx;
  }
}

type Item =
  | { at: "subnet"; subnet: Subnet; src: Range; dst: Range; hops: string[]; via: "origin" | "tgw" | "pcx"; natted: boolean }
  | { at: "tgw"; tgw: Tgw; attachment: TgwAttachment; src: Range; dst: Range; hops: string[] };

/** Where packets from `src` (addresses of `subnet`) to every address of `dst` end up. */
export function trace(net: Network, subnet: Subnet, src: Range, dst: Range, opts: TraceOptions): Outcome[] {
  return walk(net, [{ at: "subnet", subnet, src, dst, hops: [`subnet ${subnet.id} (${subnet.name}, ${formatRange(subnet.block)}, ${subnet.az})`], via: "origin", natted: false }], opts);
}

/** Where packets entering a Transit Gateway through `attachment` end up. */
export function traceFromTgw(net: Network, attachment: TgwAttachment, src: Range, dst: Range, opts: TraceOptions): Outcome[] {
  if (!attachment.tgw) return [{ kind: "dropped", range: dst, reason: `${attachmentLabel(attachment)} names no Transit Gateway of any stack`, hops: [] }];
  return walk(net, [{ at: "tgw", tgw: attachment.tgw, attachment, src, dst, hops: [] }], opts);
}

const MAX_STEPS = 1_000_000;

function walk(net: Network, start: Item[], opts: TraceOptions): Outcome[] {
  const out: Outcome[] = [];
  const work = [...start];
  const seen = new Set<string>();
  let steps = 0;
  const drop = (range: Range, reason: string, hops: string[]) => out.push({ kind: "dropped", range, reason, hops });
  while (work.length > 0) {
    const item = work.pop()!;
    if (++steps > MAX_STEPS) throw new Error(`network trace: more than ${MAX_STEPS} steps; a routing loop the walker does not detect?`);
    const key = item.at === "subnet"
      ? `s|${item.subnet.stack}|${item.subnet.id}|${item.src.lo}-${item.src.hi}|${item.dst.lo}-${item.dst.hi}|${item.via}`
      : `t|${item.tgw.stack}|${item.tgw.id}|${item.attachment.stack}|${item.attachment.id}|${item.src.lo}-${item.src.hi}|${item.dst.lo}-${item.dst.hi}`;
    if (seen.has(key)) {
      drop(item.dst, "routing loop (the packet comes back to a hop it has passed)", item.hops);
      continue;
    }
    seen.add(key);
    if (item.at === "subnet") stepSubnet(net, item, opts, work, out, drop);
    else stepTgw(net, item, opts, work, out, drop);
  }
  return out;
}

function stepSubnet(
  net: Network,
  item: Extract<Item, { at: "subnet" }>,
  opts: TraceOptions,
  work: Item[],
  out: Outcome[],
  drop: (r: Range, reason: string, hops: string[]) => void,
): void {
  const { subnet, src } = item;
  const vpc = subnet.vpc;
  const table = subnet.routeTable ?? vpc.mainRouteTable;
  const tl = tableLabel(table);
  for (const piece of net.routes(table).split(item.dst)) {
    const range = piece.range;
    const r = piece.entry;
    if (!r) {
      drop(range, `${tl} has no route to ${formatRange(range)}`, item.hops);
      continue;
    }
    const via = (what: string) => [...item.hops, `${tl}: ${formatRange(r.block)} -> ${what} (${r.from})`];
    const t = r.target;
    switch (t.kind) {
      case "local":
        out.push({ kind: "delivered", vpc, range, src, hops: via(`local, ${vpcLabel(vpc)}`), via: item.via });
        break;
      case "igw":
        // An internet gateway forwards only packets from a public address (a NAT's Elastic IP here);
        // it never reaches a private address (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Internet_Gateway.html).
        if (item.natted) out.push({ kind: "external", what: "internet", range, hops: via(`internet gateway ${t.id}`) });
        else drop(range, `${tl} sends ${formatRange(range)} to internet gateway ${t.id}, which drops packets from private addresses`, item.hops);
        break;
      case "nat": {
        if (item.via === "pcx") {
          // Edge-to-edge routing through a peering is not supported
          // (https://docs.aws.amazon.com/vpc/latest/peering/invalid-peering-configurations.html).
          drop(range, `${tl} sends traffic that came through a VPC peering to NAT gateway ${t.id}; AWS does not forward it`, item.hops);
          break;
        }
        if (!t.nat?.subnet) {
          drop(range, `${tl} sends ${formatRange(range)} to NAT gateway ${t.id}, which is in no subnet of any stack`, item.hops);
          break;
        }
        // The NAT gateway rewrites the source to its own address in its subnet and forwards by that subnet's route table.
        work.push({ at: "subnet", subnet: t.nat.subnet, src: t.nat.subnet.block, dst: range, hops: via(`NAT gateway ${t.id} (${t.nat.name})`), via: "origin", natted: !t.nat.private });
        break;
      }
      case "tgw": {
        if (!t.tgw) {
          drop(range, `${tl} sends ${formatRange(range)} to transit gateway ${t.id}, which is no Transit Gateway of any stack`, item.hops);
          break;
        }
        const a = net.attachmentOf(vpc, t.tgw);
        if (!a) {
          drop(range, `${tl} sends ${formatRange(range)} to transit gateway ${t.id}, but ${vpcLabel(vpc)} has no attachment to it`, item.hops);
          break;
        }
        // Only subnets in an AZ where the attachment has a subnet reach the TGW
        // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html, "Limits").
        if (!a.subnets.some((s) => s.az === subnet.az)) {
          drop(range, `${attachmentLabel(a)} has no subnet in ${subnet.az}, so ${subnet.name} cannot reach transit gateway ${t.id}`, item.hops);
          break;
        }
        const hops = via(`transit gateway ${t.id} (${t.tgw.name}) through ${attachmentLabel(a)}`);
        if (opts.openTgw) openTgwDeliver(net, t.tgw, src, range, hops, work, drop);
        else work.push({ at: "tgw", tgw: t.tgw, attachment: a, src, dst: range, hops });
        break;
      }
      case "pcx":
        stepPeering(item, t.id, t.pcx, range, via, work, out, drop, opts);
        break;
      case "other":
        drop(range, `${tl} sends ${formatRange(range)} to ${t.what}, which the analysis does not model`, item.hops);
        break;
    }
  }
}

function stepPeering(
  item: Extract<Item, { at: "subnet" }>,
  id: string,
  pcx: Peering | undefined,
  range: Range,
  via: (what: string) => string[],
  work: Item[],
  out: Outcome[],
  drop: (r: Range, reason: string, hops: string[]) => void,
  opts: TraceOptions,
): void {
  const vpc = item.subnet.vpc;
  if (!pcx) {
    drop(range, `${tableLabel(item.subnet.routeTable ?? vpc.mainRouteTable)} sends ${formatRange(range)} to peering ${id}, which is in no stack`, item.hops);
    return;
  }
  const ours = pcx.vpc === vpc;
  if (!ours && pcx.peer !== vpc) {
    drop(range, `peering ${id} (${pcx.name}) does not connect ${vpcLabel(vpc)}`, item.hops);
    return;
  }
  if (!pcx.accepted && opts.mode === "must") {
    drop(range, `peering ${id} (${pcx.name}, ${pcx.stack}) is not accepted by any stack (autoAccept false, no accepter): AWS keeps routes to it blackholed`, item.hops);
    return;
  }
  // A peering carries only packets between the two VPCs' own CIDRs: no transitive routing
  // (https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html#vpc-peering-limitations).
  if (!vpc.cidrs.some((c) => contains(c, item.src))) {
    drop(range, `peering ${id} (${pcx.name}) carries only traffic from ${vpcLabel(vpc)}'s own CIDR, not from ${formatRange(item.src)} (peerings are not transitive)`, item.hops);
    return;
  }
  const hops = via(`peering ${id} (${pcx.name}, ${pcx.stack})`);
  const other = ours ? pcx.peer : pcx.vpc;
  if (other) {
    for (const c of other.cidrs) {
      const part = intersect(range, c);
      if (part) out.push({ kind: "delivered", vpc: other, range: part, src: item.src, hops: [...hops, `${vpcLabel(other)}`], via: "pcx" });
    }
    if (!other.cidrs.some((c) => contains(c, range))) drop(range, `peering ${id} delivers only to ${vpcLabel(other)}'s CIDR; the rest of ${formatRange(range)} is dropped`, hops);
    return;
  }
  // The peer VPC is none of ours (a customer's): its CIDR as declared, else all the route sends.
  const declared = pcx.declaredPeerCidr;
  const part = declared ? intersect(range, declared) : range;
  if (part) out.push({ kind: "external", what: "customer", peering: pcx, range: part, hops: [...hops, `customer VPC ${pcx.peerVpcId}`] });
  if (declared && !contains(declared, range)) drop(range, `peering ${id} delivers only to the peer VPC's CIDR ${formatRange(declared)}`, hops);
}

function stepTgw(
  net: Network,
  item: Extract<Item, { at: "tgw" }>,
  opts: TraceOptions,
  work: Item[],
  out: Outcome[],
  drop: (r: Range, reason: string, hops: string[]) => void,
): void {
  const { tgw, attachment } = item;
  const table = net.inv.associations.get(attachment)?.get(tgw);
  if (!table) {
    drop(item.dst, `${attachmentLabel(attachment)} has no route table association on transit gateway ${tgw.id} (${tgw.name}): the transit gateway drops its traffic`, item.hops);
    return;
  }
  const tl = tgwTableLabel(table);
  for (const piece of net.tgwRoutes(table).split(item.dst)) {
    const range = piece.range;
    const r = piece.entry;
    if (!r) {
      drop(range, `${tl} has no route to ${formatRange(range)}`, item.hops);
      continue;
    }
    if (!r.attachment) {
      drop(range, `${tl} blackholes ${formatRange(r.block)} (${r.from})`, item.hops);
      continue;
    }
    const b = r.attachment;
    const hops = [...item.hops, `${tl}: ${formatRange(r.block)} -> ${attachmentLabel(b)} (${r.from})`];
    if (b.kind === "peering") {
      const other = b.tgw === tgw ? b.peerTgw : b.tgw;
      if (!b.accepted && opts.mode === "must") {
        drop(range, `transit gateway peering ${attachmentLabel(b)} is not accepted by any stack (no peering attachment accepter)`, hops);
        continue;
      }
      if (!other) {
        drop(range, `transit gateway peering ${attachmentLabel(b)} leads to ${b.peerTgwId ?? "an unknown"} transit gateway of no stack`, hops);
        continue;
      }
      work.push({ at: "tgw", tgw: other, attachment: b, src: item.src, dst: range, hops: [...hops, `transit gateway ${other.id} (${other.name}, ${other.stack})`] });
      continue;
    }
    if (b.subnets.length === 0 || !b.vpc) {
      drop(range, `${attachmentLabel(b)} has no subnets`, hops);
      continue;
    }
    // The TGW hands the packet to an attachment ENI in one of the attachment's subnets; the VPC then
    // routes it by that subnet's route table. Every subnet is a branch (must: all deliver).
    for (const s of b.subnets) {
      work.push({ at: "subnet", subnet: s, src: item.src, dst: range, hops: [...hops, `into ${vpcLabel(b.vpc)} at subnet ${s.id} (${s.name})`], via: "tgw", natted: false });
    }
  }
}

function openTgwDeliver(net: Network, tgw: Tgw, src: Range, dst: Range, hops: string[], work: Item[], drop: (r: Range, reason: string, hops: string[]) => void): void {
  for (const piece of net.attached(tgw).split(dst)) {
    if (!piece.entry) {
      drop(piece.range, `no VPC attached to transit gateway ${tgw.id} holds ${formatRange(piece.range)}`, hops);
      continue;
    }
    const { vpc, attachment } = piece.entry;
    for (const s of attachment.subnets) {
      work.push({ at: "subnet", subnet: s, src, dst: piece.range, hops: [...hops, `(transit gateway assumed open) into ${vpcLabel(vpc)} at subnet ${s.id}`], via: "tgw", natted: false });
    }
  }
}
