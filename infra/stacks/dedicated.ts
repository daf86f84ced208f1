/**
 * Builder of `dedicated-<tenant>-<env>` stacks (docs/stacks.md): one DedicatedTenant component named
 * `tenant-<id>`, its storage alarms (`storage-alarms`), and from the moment it serves the tenant its
 * share of the routing document (`routing`). Those names are part of every URN in the stack: never change them.
 */
import { z } from "zod";
import { awsProvider, stackContext } from "../components/context.ts";
import { DedicatedTenant } from "../components/dedicatedTenant.ts";
import { RoutingShare } from "../components/routingShare.ts";
import { StorageAlarms } from "../components/storageAlarms.ts";
import type { IngressAlias } from "../components/dedicatedDns.ts";
import type { Fleet } from "../model/fleet.ts";
import { PROJECT } from "../model/platform.ts";
import { routeOf } from "../model/routes.ts";
import { dedicatedRoutingParameter } from "../model/routingDocument.ts";
import { dedicatedStorageAlarms } from "../model/storageAlarms.ts";
import type { StackFile } from "../model/stackFile.ts";
import type * as pulumi from "@pulumi/pulumi";

export interface DedicatedOutputs {
  kind: "dedicated";
  tenant: string;
  route: { url: string; stack: string; databaseSecretName: string };
  vpcId: pulumi.Output<string>;
  dbEndpoint: pulumi.Output<string>;
  privateDbHostname: string;
  zoneName: string;
  nameServers: pulumi.Output<string[]>;
  /** Present with features.vpcPeering: the requester side of the peering to the customer's VPC. */
  peeringConnectionId?: pulumi.Output<string>;
}

/**
 * Optional config of a dedicated stack file: the ALIAS target of the tenant's apex record, i.e.
 * the load balancer the app deployment created in the tenant VPC (its DNS name and canonical
 * hosted zone id). Absent: the zone is delegated but serves no apex record yet.
 */
export const INGRESS_KEY = `${PROJECT}:ingress`;
const IngressSchema = z
  .object({
    dnsName: z.string().regex(/^(?:[a-z0-9-]+\.)+[a-z]{2,}\.?$/i, "must be a DNS name (the load balancer's)"),
    zoneId: z.string().regex(/^Z[A-Z0-9]+$/, "must be a Route 53 hosted zone id (the load balancer's canonical zone, Z...)"),
  })
  .strict();

export function dedicatedIngress(stack: StackFile): IngressAlias | undefined {
  const raw = stack.config[INGRESS_KEY];
  if (raw === undefined) return undefined;
  const parsed = IngressSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => ` - config.${INGRESS_KEY}${i.path.length ? `.${i.path.join(".")}` : ""}: ${i.message}`);
    throw new Error(`${stack.file}: invalid ingress settings:\n${lines.join("\n")}\nexpected { dnsName: <load balancer DNS name>, zoneId: <its canonical hosted zone id> }`);
  }
  return parsed.data;
}

export function buildDedicatedStack(fleet: Fleet, stack: StackFile): DedicatedOutputs {
  if (stack.ref.kind !== "dedicated") throw new Error(`buildDedicatedStack: ${stack.ref.name} is not a dedicated-<tenant>-<env> stack`);
  const { tenant: id, env } = stack.ref;
  const t = fleet.tenants.get(id)?.tenant;
  if (!t) throw new Error(`${stack.file}: tenant ${id} has no file ${fleet.dirs.tenantsDir}/${id}.yaml`);
  if (t.deployment !== "dedicated") throw new Error(`${stack.file}: tenant ${id} is ${t.deployment}, not dedicated; remove this stack file or change the tenant's deployment`);
  const ctx = stackContext(fleet.platform, env, stack.ref.name, stack.region);
  const ingress = dedicatedIngress(stack);
  const provider = awsProvider(ctx);
  const tenant = new DedicatedTenant(`tenant-${id}`, { ctx, tenant: t, ...(ingress ? { ingress } : {}) }, { providers: [provider] });
  // Before cutover the cell still routes the tenant (infra/model/routingDocument.ts).
  const share = dedicatedRoutingParameter(fleet, t, env);
  if (share) new RoutingShare("routing", { ctx, owner: id, parameters: [share] }, { providers: [provider] });
  new StorageAlarms("storage-alarms", { ctx, owner: id, ownerTag: id, alarms: dedicatedStorageAlarms(fleet.platform, t, env, stack.ref.name) }, { providers: [provider] });
  const route = routeOf(fleet, t, env);
  return {
    kind: "dedicated",
    tenant: id,
    route: { url: route.url, stack: route.stack, databaseSecretName: route.databaseSecretName },
    vpcId: tenant.vpcId,
    dbEndpoint: tenant.dbEndpoint,
    privateDbHostname: tenant.privateDbHostname,
    zoneName: tenant.zoneName,
    nameServers: tenant.nameServers,
    ...(tenant.peeringConnectionId ? { peeringConnectionId: tenant.peeringConnectionId } : {}),
  };
}
