/**
 * Builder of `shared-<env>-<cell>` stacks (docs/stacks.md): the cell's shared infrastructure and one
 * PooledTenant per resident tenant, the cell's share of the routing document and the storage alarms
 * of the tenants it serves. Top-level names (`cell-<cell id>`, `tenant-<tenant id>`, `routing`, `storage-alarms`)
 * are part of every URN in the stack: never change them.
 */
import { PooledTenant } from "../components/pooledTenant.ts";
import { RoutingShare } from "../components/routingShare.ts";
import { StorageAlarms } from "../components/storageAlarms.ts";
import { SharedCell } from "../components/sharedCell.ts";
import { awsProvider, stackContext } from "../components/context.ts";
import { cellResidents, type Fleet } from "../model/fleet.ts";
import { routeOf } from "../model/routes.ts";
import { cellRoutingParameters } from "../model/routingDocument.ts";
import { cellStorageAlarms, pooledStorageAlarms } from "../model/storageAlarms.ts";
import { SHARED_TENANT } from "../model/naming.ts";
import type { StackFile } from "../model/stackFile.ts";
import type * as pulumi from "@pulumi/pulumi";

export interface CellRoute {
  url: string;
  stack: string;
  databaseSecretName: string;
}

export interface SharedCellOutputs {
  kind: "shared";
  cell: {
    id: string;
    env: string;
    region: string;
    vpcId: pulumi.Output<string>;
    dbEndpoint: pulumi.Output<string>;
    tenants: string[];
    tenantsPlaced: number;
    capacity: number;
  };
  /** By tenant id: where each resident is served. */
  routes: Record<string, CellRoute>;
}

export function buildSharedCellStack(fleet: Fleet, stack: StackFile): SharedCellOutputs {
  if (stack.ref.kind !== "shared") throw new Error(`buildSharedCellStack: ${stack.ref.name} is not a shared-<env>-<cell> stack`);
  const cell = fleet.cells.get(stack.ref.name);
  if (!cell) throw new Error(`${stack.file}: stack ${stack.ref.name} has no saas-tenancy:cell settings`);
  const ctx = stackContext(fleet.platform, cell.env, cell.stack, cell.region);

  const provider = awsProvider(ctx);
  const shared = new SharedCell(`cell-${cell.id}`, { ctx, cell }, { providers: [provider] });
  const facts = {
    id: cell.id,
    ingressHostname: cell.config.ingressHostname,
    bucketName: shared.bucketName,
    keyArn: shared.keyArn,
    dbAddress: shared.database.address,
    dbPort: shared.database.port,
    dbName: shared.database.dbName,
    dbProvider: shared.database.provider,
  };

  const residents = cellResidents(fleet, cell);
  const routes: Record<string, CellRoute> = {};
  for (const t of residents) {
    new PooledTenant(`tenant-${t.id}`, { ctx, tenant: t, cell: facts }, { providers: [provider] });
    // routeOf names the cell-side document while a migrating tenant is still served from here.
    const { url, stack, databaseSecretName } = routeOf(fleet, t, cell.env);
    routes[t.id] = { url, stack, databaseSecretName };
  }

  // The cell's pages of the routing document of its env and region (infra/model/routingDocument.ts).
  new RoutingShare("routing", { ctx, owner: SHARED_TENANT, parameters: cellRoutingParameters(fleet, cell, residents) }, { providers: [provider] });
  // Storage alarms: its own database's free storage and those of the tenants it serves (infra/model/storageAlarms.ts).
  const alarms = [...cellStorageAlarms(fleet.platform, cell, cell.stack), ...residents.flatMap((t) => pooledStorageAlarms(fleet.platform, t, cell.env, cell.stack))];
  new StorageAlarms("storage-alarms", { ctx, owner: cell.id, ownerTag: SHARED_TENANT, alarms }, { providers: [provider] });

  return {
    kind: "shared",
    cell: {
      id: cell.id,
      env: cell.env,
      region: cell.region,
      vpcId: shared.vpcId,
      dbEndpoint: shared.database.endpoint,
      tenants: residents.map((t) => t.id),
      tenantsPlaced: residents.length,
      capacity: cell.capacity,
    },
    routes,
  };
}
