/**
 * A validated fleet sent to a renderer worker over IPC (structured clone), for a fleet that exists
 * only in memory: the base of `tenantctl plan --base`, built from the working tree's files plus
 * what git says differs (cli/affected/affected.ts), which a worker cannot load from a directory.
 * Everything a render reads goes as it is; each file's YAML source stays behind, because it
 * holds a function (the line finder of problems, which a render never reports) that cannot be
 * cloned. In the worker a file's `yaml` keeps its path and refuses to be used.
 */
import type { Cell, Fleet } from "../infra/model/fleet.ts";
import type { StackFile } from "../infra/model/stackFile.ts";
import type { LoadedTenant } from "../infra/model/tenantFile.ts";
import type { YamlFile } from "../infra/model/yamlFile.ts";

export interface FleetData {
  platform: Fleet["platform"];
  dirs: Fleet["dirs"];
  tenants: Map<string, Omit<LoadedTenant, "yaml">>;
  stacks: Map<string, Omit<StackFile, "yaml">>;
  cells: Map<string, Cell>;
}

/** The fleet without its YAML sources: plain data, Maps and arrays, which structured clone copies exactly. */
export function fleetData(fleet: Fleet): FleetData {
  const tenants = new Map<string, Omit<LoadedTenant, "yaml">>();
  for (const [id, { yaml: _yaml, ...rest }] of fleet.tenants) tenants.set(id, rest);
  const stacks = new Map<string, Omit<StackFile, "yaml">>();
  for (const [name, { yaml: _yaml, ...rest }] of fleet.stacks) stacks.set(name, rest);
  return { platform: fleet.platform, dirs: fleet.dirs, tenants, stacks, cells: new Map(fleet.cells) };
}

/** A `yaml` a render must never read: it answers nothing and says so. */
function absentYaml(file: string): YamlFile {
  const refuse = (): never => {
    throw new Error(`${file}: the YAML source of a fleet received by a renderer worker is not available (plan/fleetTransfer.ts)`);
  };
  return {
    file,
    get value(): unknown {
      return refuse();
    },
    lineOf: refuse,
  };
}

/** The Fleet a worker renders from: the data received, each file's `yaml` refusing to be read. */
export function fleetFromData(data: FleetData): Fleet {
  const tenants = new Map<string, LoadedTenant>();
  for (const [id, t] of data.tenants) tenants.set(id, { ...t, yaml: absentYaml(t.file) });
  const stacks = new Map<string, StackFile>();
  for (const [name, s] of data.stacks) stacks.set(name, { ...s, yaml: absentYaml(s.file) });
  return { platform: data.platform, dirs: data.dirs, tenants, stacks, cells: data.cells };
}
