import { requireFleet } from "../../infra/model/fleet.ts";
import { routingTable } from "../../infra/model/routes.ts";
import { EXIT, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";
import { table } from "../table.ts";

export function routesCommand(opts: DirOptions & { json?: boolean }, io: Io): number {
  const routes = routingTable(requireFleet(fleetDirs(opts)));
  if (opts.json) {
    io.out(JSON.stringify(routes, null, 2));
    return EXIT.ok;
  }
  io.out(
    table(
      ["TENANT", "ENV", "URL", "DEPLOYMENT", "STACK", "REGION", "LIFECYCLE"],
      routes.map((r) => [r.tenant, r.env, r.url, r.deployment, r.stack, r.region, r.lifecycle]),
    ),
  );
  return EXIT.ok;
}
