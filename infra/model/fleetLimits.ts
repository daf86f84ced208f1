/**
 * Fleet-level checks of the files against what AWS offers the platform account: AZs per region
 * (infra/model/regions.ts), cell engine versions against the platform's minor-upgrade setting,
 * and service quotas (infra/model/quotas.ts). Run by loadFleet, so validate, plan, tenantctl new
 * and the control plane's writer all refuse a fleet AWS would refuse.
 */
import { engineVersionProblem } from "./database.ts";
import type { Fleet } from "./fleet.ts";
import { PLATFORM_KEY, PROJECT } from "./platform.ts";
import type { Problem } from "./problems.ts";
import { quotaExcesses } from "./quotas.ts";
import { azProblem, regionAzs } from "./regions.ts";
import { CELL_KEY } from "./stackFile.ts";
import { dedicatedAzCount } from "./subnets.ts";
import { parseYamlMap, problemAt, type YamlFile } from "./yamlFile.ts";

/** YAML path of the platform object inside Pulumi.yaml (with or without the `value:` wrapper). */
function platformPath(y: YamlFile): PropertyKey[] {
  const config = (y.value as { config?: Record<string, unknown> }).config ?? {};
  const key = `${PROJECT}:${PLATFORM_KEY}` in config ? `${PROJECT}:${PLATFORM_KEY}` : PLATFORM_KEY;
  const entry = config[key];
  return ["config", key, ...(entry && typeof entry === "object" && "value" in entry ? ["value"] : [])];
}

/** Problems on Pulumi.yaml: `paths` are relative to the platform object. */
function platformProblemsAt(pulumiYaml: PulumiYaml, found: { path: PropertyKey[]; message: string }[]): Problem[] {
  if (found.length === 0) return [];
  const { file, text } = pulumiYaml;
  const y = text === undefined ? undefined : parseYamlMap(file, text);
  if (!y || Array.isArray(y)) return found.map((f) => ({ file, path: f.path.join("."), message: f.message }));
  const base = platformPath(y);
  return found.map((f) => problemAt(y, [...base, ...f.path], f.message));
}

/** Pulumi.yaml as problems name it (relative when inside the working directory) and its text, if readable. */
export interface PulumiYaml {
  file: string;
  text: string | undefined;
}

export function fleetLimitProblems(fleet: Fleet, pulumiYaml: PulumiYaml): Problem[] {
  const problems: Problem[] = [];
  const onPlatform: { path: PropertyKey[]; message: string }[] = [];
  const { platform } = fleet;

  platform.regions.forEach((r, i) => {
    if (!regionAzs(r)) onPlatform.push({ path: ["regions", i], message: `region ${r} is not in the AZ table (infra/model/regions.ts); add its AZ letters there before using it` });
  });

  for (const s of fleet.stacks.values()) {
    if (s.ref.kind !== "shared" || !s.cell) continue;
    if (regionAzs(s.region)) {
      const problem = azProblem(s.region, s.cell.azs);
      if (problem) problems.push(problemAt(s.yaml, ["config", CELL_KEY, "azs"], `${problem}; list AZs of the region`));
    }
    if (s.cell.dbEngineVersion !== undefined) {
      const problem = engineVersionProblem(s.cell.dbEngineVersion, platform.cellDefaults.autoMinorVersionUpgrade);
      if (problem) problems.push(problemAt(s.yaml, ["config", CELL_KEY, "dbEngineVersion"], problem));
    }
  }

  for (const lt of fleet.tenants.values()) {
    const t = lt.tenant;
    if (t.deployment !== "dedicated") continue;
    const azs = regionAzs(t.region);
    if (!azs) continue;
    for (const [env, net] of Object.entries(t.dedicated)) {
      if (!net) continue;
      const count = dedicatedAzCount(env, net.azCount);
      if (count <= azs.length) continue;
      const set = net.azCount !== undefined;
      problems.push(
        problemAt(
          lt.yaml,
          set ? ["dedicated", env, "azCount"] : ["dedicated", env],
          `${set ? `azCount ${count}` : `the default of ${count} AZs in ${env}`} exceeds the ${azs.length} AZs of ${t.region} (${azs.join(", ")}); set azCount to at most ${azs.length}`,
        ),
      );
    }
  }

  for (const e of quotaExcesses(fleet)) onPlatform.push({ path: e.path, message: e.message });
  return [...problems, ...platformProblemsAt(pulumiYaml, onPlatform)];
}
