/**
 * The ports of a process that only records lifecycle requests (tenantctl): no step runs there, so
 * every port but the clock (and `repo`, when given: requests read the tenant files) refuses
 * whatever is called on it (a proxy, so a method added to a port later refuses too).
 */
import { silentLogger, systemClock, type FleetRepo, type LifecyclePorts } from "./ports.ts";

export function requestOnlyPorts(repo?: FleetRepo): LifecyclePorts {
  const refusing = <T extends object>(what: string): T =>
    new Proxy({} as T, {
      get: (_target, prop) =>
        prop === "then" ? undefined : () => {
          throw new Error(`${what} is not available in tenantctl: the control plane runs the workflow`);
        },
    });
  return {
    clock: systemClock,
    log: silentLogger,
    repo: repo ?? refusing<LifecyclePorts["repo"]>("the fleet repository"),
    runner: refusing<LifecyclePorts["runner"]>("a stack operation"),
    databases: refusing<LifecyclePorts["databases"]>("a tenant database"),
    backups: refusing<LifecyclePorts["backups"]>("the backup store"),
    snapshots: refusing<LifecyclePorts["snapshots"]>("RDS"),
    secrets: refusing<LifecyclePorts["secrets"]>("Secrets Manager"),
  };
}
