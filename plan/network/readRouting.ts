/**
 * The routing part of the network inventory (inventory.ts): internet and NAT gateways, VPC
 * peerings, Transit Gateways with their attachments, route tables, associations, propagations and
 * static routes, then the VPC route tables, their routes and subnet associations. Pure.
 */
import type { Peering, NatGateway, RouteTable, RouteTarget, Tgw, TgwAttachment, TgwRouteTable, Subnet, Vpc } from "./model.ts";
import { T } from "./model.ts";
import { block, flag, Ids, origin, regionOf, str, strs, val, type Reading, type Res } from "./readers.ts";

export interface Routing {
  peerings: Peering[];
  tgws: Tgw[];
  tgwTables: TgwRouteTable[];
  attachments: TgwAttachment[];
  associations: Map<TgwAttachment, Map<Tgw | undefined, TgwRouteTable>>;
}

/**
 * Reads gateways, peerings, Transit Gateways and route tables. `tables` holds the VPCs' main route
 * tables (buildInventory adds them with the VPCs); `declared` maps `stack\0peerVpcId` to the CIDR
 * the tenant file declares for a customer VPC.
 */
export function readRouting(ctx: Reading, vpcs: Ids<Vpc>, tables: Ids<RouteTable>, vpcList: readonly Vpc[], declared: ReadonlyMap<string, string>): Routing {
  const { of, problem, ambiguous, withId, vpcOf, subnetOf } = ctx;
  // Gateways, peerings, Transit Gateways (route targets).
  const igws = new Ids<true>();
  for (const r of of(T.igw)) {
    const id = withId(r);
    if (id) igws.add(r.stack, id, true);
  }
  const nats = new Ids<NatGateway>();
  for (const r of of(T.nat)) {
    const id = withId(r);
    if (id) nats.add(r.stack, id, { ...origin(r), subnet: subnetOf(r, str(r, "subnetId"), "subnetId"), private: str(r, "connectivityType") === "private" });
  }
  const accepted = new Set<string>();
  for (const r of of(T.pcxAccepter)) {
    const id = str(r, "vpcPeeringConnectionId");
    if (id) accepted.add(id);
  }
  const peerings = new Ids<Peering>();
  const peeringList: Peering[] = [];
  for (const r of of(T.pcx)) {
    const id = withId(r);
    if (!id) continue;
    const vpcId = str(r, "vpcId") ?? "";
    const peerVpcId = str(r, "peerVpcId") ?? "";
    const tags = (val(r, "tags") ?? {}) as Record<string, unknown>;
    const peerCidr = declared.get(`${r.stack}\u0000${peerVpcId}`);
    const p: Peering = {
      ...origin(r),
      vpcId,
      peerVpcId,
      vpc: vpcs.get(r.stack, vpcId, ambiguous(r, "vpcId", vpcId)),
      peer: vpcs.get(r.stack, peerVpcId, ambiguous(r, "peerVpcId", peerVpcId)),
      ...(str(r, "peerOwnerId") ? { peerOwnerId: str(r, "peerOwnerId") } : {}),
      ...(str(r, "peerRegion") ? { peerRegion: str(r, "peerRegion") } : {}),
      // AWS accepts a same-account, same-region request itself only with autoAccept.
      accepted: (val(r, "autoAccept") === true && !str(r, "peerRegion")) || accepted.has(id),
      ...(block(peerCidr) ? { declaredPeerCidr: block(peerCidr)! } : {}),
      ...(typeof tags.tenant === "string" ? { tenant: tags.tenant } : {}),
    };
    peerings.add(r.stack, id, p);
    peeringList.push(p);
  }

  const tgwAccepted = new Set<string>();
  for (const r of of(T.tgwPeeringAccepter)) {
    const id = str(r, "transitGatewayAttachmentId");
    if (id) tgwAccepted.add(id);
  }
  const tgws = new Ids<Tgw>();
  const tgwList: Tgw[] = [];
  const tgwTables = new Ids<TgwRouteTable>();
  const tgwTableList: TgwRouteTable[] = [];
  for (const r of of(T.tgw)) {
    const id = withId(r);
    if (!id) continue;
    // AWS defaults: default route table association and propagation enabled, SG referencing disabled
    // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-transit-gateways.html#create-tgw).
    const t: Tgw = {
      ...origin(r),
      region: regionOf(r) ?? "unknown",
      defaultAssociation: flag(val(r, "defaultRouteTableAssociation"), true),
      defaultPropagation: flag(val(r, "defaultRouteTablePropagation"), true),
      sgReferencing: flag(val(r, "securityGroupReferencingSupport"), false),
    };
    if (t.defaultAssociation || t.defaultPropagation) {
      const tableId = str(r, "associationDefaultRouteTableId") ?? `${id}#default`;
      t.defaultTable = { stack: r.stack, urn: r.urn, name: `${r.name} default route table`, id: tableId, tgw: t, routes: [] };
      tgwTables.add(r.stack, tableId, t.defaultTable);
      tgwTableList.push(t.defaultTable);
    }
    tgws.add(r.stack, id, t);
    tgwList.push(t);
  }
  const tgwOf = (r: Res, key: string): Tgw | undefined => {
    const id = str(r, key);
    const t = tgws.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!t) problem(r, `${key} ${id ?? "(unknown)"} is no Transit Gateway of any stack`);
    return t;
  };
  for (const r of of(T.tgwRouteTable)) {
    const id = withId(r);
    if (!id) continue;
    const t: TgwRouteTable = { ...origin(r), tgw: tgwOf(r, "transitGatewayId"), routes: [] };
    tgwTables.add(r.stack, id, t);
    tgwTableList.push(t);
  }

  const attachments = new Ids<TgwAttachment>();
  const attachmentList: TgwAttachment[] = [];
  for (const r of of(T.tgwVpcAttachment)) {
    const id = withId(r);
    if (!id) continue;
    const a: TgwAttachment = {
      ...origin(r),
      kind: "vpc",
      tgwId: str(r, "transitGatewayId") ?? "",
      tgw: tgwOf(r, "transitGatewayId"),
      vpc: vpcOf(r),
      subnets: strs(val(r, "subnetIds")).map((s) => subnetOf(r, s, "subnetIds")).filter((s): s is Subnet => s !== undefined),
      accepted: true,
      // The attachment option defaults to enable; the TGW's own option (default disable) must be on too
      // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html#vpc-attachment-security).
      sgReferencing: flag(val(r, "securityGroupReferencingSupport"), true),
      defaultAssociation: flag(val(r, "transitGatewayDefaultRouteTableAssociation"), true),
      defaultPropagation: flag(val(r, "transitGatewayDefaultRouteTablePropagation"), true),
    };
    attachments.add(r.stack, id, a);
    attachmentList.push(a);
  }
  for (const r of of(T.tgwPeering)) {
    const id = withId(r);
    if (!id) continue;
    const peerId = str(r, "peerTransitGatewayId");
    const a: TgwAttachment = {
      ...origin(r),
      kind: "peering",
      tgwId: str(r, "transitGatewayId") ?? "",
      tgw: tgwOf(r, "transitGatewayId"),
      subnets: [],
      ...(peerId ? { peerTgwId: peerId } : {}),
      peerTgw: tgwOf(r, "peerTransitGatewayId"),
      // A peering attachment carries traffic only once the peer side accepts it
      // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-peering.html).
      accepted: tgwAccepted.has(id),
      sgReferencing: false,
      defaultAssociation: false,
      defaultPropagation: false,
    };
    attachments.add(r.stack, id, a);
    attachmentList.push(a);
  }
  const attachmentOf = (r: Res): TgwAttachment | undefined => {
    const id = str(r, "transitGatewayAttachmentId");
    const a = attachments.get(r.stack, id, ambiguous(r, "transitGatewayAttachmentId", id ?? ""));
    if (!a) problem(r, `transitGatewayAttachmentId ${id ?? "(unknown)"} is no attachment of any stack`);
    return a;
  };
  const tableOf = (r: Res): TgwRouteTable | undefined => {
    const id = str(r, "transitGatewayRouteTableId");
    const t = tgwTables.get(r.stack, id, ambiguous(r, "transitGatewayRouteTableId", id ?? ""));
    if (!t) problem(r, `transitGatewayRouteTableId ${id ?? "(unknown)"} is no Transit Gateway route table of any stack`);
    return t;
  };

  // Transit Gateway associations, propagations and static routes.
  const associations = new Map<TgwAttachment, Map<Tgw | undefined, TgwRouteTable>>();
  const associate = (a: TgwAttachment, t: TgwRouteTable, r?: Res) => {
    const sides = associations.get(a) ?? new Map<Tgw | undefined, TgwRouteTable>();
    const prior = sides.get(t.tgw);
    // An attachment is associated with at most one route table of a Transit Gateway.
    if (prior && prior !== t && r) problem(r, `attachment ${a.name} is already associated with ${prior.name}; AWS allows one association per attachment`);
    sides.set(t.tgw, t);
    associations.set(a, sides);
  };
  for (const r of of(T.tgwAssociation)) {
    const a = attachmentOf(r);
    const t = tableOf(r);
    if (a && t) associate(a, t, r);
  }
  const propagate = (a: TgwAttachment, t: TgwRouteTable, from: string, r?: Res) => {
    if (a.kind === "peering") {
      // "Transit gateway peering attachments do not support route propagation": static routes only.
      if (r) problem(r, `propagates peering attachment ${a.name}, which AWS does not support (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-peering.html)`);
      return;
    }
    for (const b of a.vpc?.cidrs ?? []) t.routes.push({ block: b, attachment: a, static: false, from });
  };
  for (const r of of(T.tgwPropagation)) {
    const a = attachmentOf(r);
    const t = tableOf(r);
    if (a && t) propagate(a, t, `propagation ${r.name} (${r.stack})`, r);
  }
  for (const a of attachmentList) {
    const t = a.tgw?.defaultTable;
    if (!t || a.kind !== "vpc") continue;
    if (a.tgw!.defaultAssociation && a.defaultAssociation && !associations.get(a)?.has(a.tgw)) associate(a, t);
    if (a.tgw!.defaultPropagation && a.defaultPropagation) propagate(a, t, `default propagation of ${a.name} (${a.stack})`);
  }
  for (const r of of(T.tgwRoute)) {
    const t = tableOf(r);
    const b = block(str(r, "destinationCidrBlock"));
    if (!t) continue;
    if (!b) {
      problem(r, `destinationCidrBlock ${JSON.stringify(val(r, "destinationCidrBlock"))} is not known at plan time`);
      continue;
    }
    const blackhole = val(r, "blackhole") === true;
    t.routes.push({ block: b, attachment: blackhole ? undefined : attachmentOf(r), static: true, from: `route ${r.name} (${r.stack})` });
  }

  // VPC route tables, routes, associations.
  const tableList: RouteTable[] = [];
  for (const r of of(T.routeTable)) {
    const id = withId(r);
    const vpc = vpcOf(r);
    if (!id || !vpc) continue;
    const t: RouteTable = { ...origin(r), vpc, routes: [] };
    tables.add(r.stack, id, t);
    tableList.push(t);
    for (const inline of (val(r, "routes") as Record<string, unknown>[] | undefined) ?? []) addRoute(r, t, inline, `${r.name} inline route`);
  }
  for (const r of of(T.defaultRouteTable)) {
    const id = str(r, "defaultRouteTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "defaultRouteTableId", id ?? ""));
    if (!t) {
      problem(r, `defaultRouteTableId ${id ?? "(unknown)"} is no VPC's main route table`);
      continue;
    }
    for (const inline of (val(r, "routes") as Record<string, unknown>[] | undefined) ?? []) addRoute(r, t, inline, `${r.name} inline route`);
  }
  for (const r of of(T.mainRouteTableAssociation)) {
    const vpc = vpcOf(r);
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    if (vpc && t) vpc.mainRouteTable = t;
  }
  function addRoute(r: Res, t: RouteTable, src: Record<string, unknown>, from: string): void {
    const g = (k: string) => (typeof src[k] === "string" && src[k] !== "" ? src[k] : undefined);
    const b = block(g("destinationCidrBlock") ?? g("cidrBlock"));
    if (!b) {
      if (g("destinationPrefixListId") || g("destinationIpv6CidrBlock") || g("ipv6CidrBlock")) return; // not IPv4 CIDR routing: not modelled
      problem(r, `destination ${JSON.stringify(src.destinationCidrBlock ?? src.cidrBlock)} is not known at plan time`);
      return;
    }
    let target: RouteTarget;
    const gw = g("gatewayId");
    if (gw === "local") target = { kind: "local" };
    else if (gw && igws.get(r.stack, gw, ambiguous(r, "gatewayId", gw))) target = { kind: "igw", id: gw };
    else if (g("natGatewayId")) {
      const id = g("natGatewayId")!;
      const nat = nats.get(r.stack, id, ambiguous(r, "natGatewayId", id));
      target = { kind: "nat", id, ...(nat ? { nat } : {}) };
    } else if (g("transitGatewayId")) {
      const id = g("transitGatewayId")!;
      const tgw = tgws.get(r.stack, id, ambiguous(r, "transitGatewayId", id));
      target = { kind: "tgw", id, ...(tgw ? { tgw } : {}) };
    } else if (g("vpcPeeringConnectionId")) {
      const id = g("vpcPeeringConnectionId")!;
      const pcx = peerings.get(r.stack, id, ambiguous(r, "vpcPeeringConnectionId", id));
      target = { kind: "pcx", id, ...(pcx ? { pcx } : {}) };
    } else if (gw) target = { kind: "other", what: `gateway ${gw} (no internet gateway of any stack)` };
    else {
      const k = ["networkInterfaceId", "vpcEndpointId", "egressOnlyGatewayId", "localGatewayId", "carrierGatewayId", "coreNetworkArn"].find((x) => g(x));
      target = { kind: "other", what: k ? `${k} ${g(k)}` : "no target" };
    }
    t.routes.push({ block: b, target, from });
  }
  for (const r of of(T.route)) {
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    if (!t) {
      problem(r, `routeTableId ${id ?? "(unknown)"} is no route table of any stack`);
      continue;
    }
    addRoute(r, t, Object.fromEntries(Object.keys({ ...r.inputs, ...(r.outputs ?? {}) }).map((k) => [k, val(r, k)])), `route ${r.name}`);
  }
  for (const r of of(T.routeTableAssociation)) {
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    const sid = str(r, "subnetId");
    if (!sid) continue; // a gateway (edge) association: not modelled
    const s = subnetOf(r, sid, "subnetId");
    if (!t) problem(r, `routeTableId ${id ?? "(unknown)"} is no route table of any stack`);
    if (t && s) {
      if (s.routeTable && s.routeTable !== t) problem(r, `subnet ${s.name} is already associated with ${s.routeTable.name}; a subnet has one route table`);
      s.routeTable = t;
    }
  }
  // The local route of every table: the VPC's CIDRs (https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#route-table-routes).
  for (const t of [...tableList, ...vpcList.map((v) => v.mainRouteTable)]) {
    for (const b of t.vpc.cidrs) if (!t.routes.some((x) => x.target.kind === "local" && x.block.lo === b.lo && x.block.prefix === b.prefix)) t.routes.push({ block: b, target: { kind: "local" }, from: "local" });
  }

  return { peerings: peeringList, tgws: tgwList, tgwTables: tgwTableList, attachments: attachmentList, associations };
}
