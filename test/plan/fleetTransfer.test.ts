/**
 * A fleet that exists only in memory, rendered in a worker process that receives it over IPC
 * (plan/fleetTransfer.ts, planStacks `sendFleet`), and the spare worker `plan --base` starts
 * before it loads the fleet (startSpareWorker). The worker's document must equal the in-process
 * render of the original fleet exactly: `plan --base` output depends on it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { deserialize, serialize } from "node:v8";
import { afterAll, describe, expect, it } from "vitest";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { fleetData, fleetFromData } from "../../plan/fleetTransfer.ts";
import { dropSpareWorker, planStacks, startSpareWorker } from "../../plan/planStacks.ts";
import { renderStack } from "../../plan/render/render.ts";

const root = resolve(import.meta.dirname, "../..");
const fleet = requireFleet({ projectDir: root });
const empty = mkdtempSync(join(tmpdir(), "fleet-transfer-"));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

/** The example fleet, pointing at an empty directory: a worker can only render it if it receives it. */
const inMemory: Fleet = { ...fleet, dirs: { projectDir: empty, tenantsDir: join(empty, "tenants"), stacksDir: join(empty, "stacks") } };

const exited = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
};
async function waitExited(pid: number): Promise<void> {
  for (let i = 0; i < 600 && !exited(pid); i++) await new Promise((r) => setTimeout(r, 100));
  expect(exited(pid)).toBe(true);
}

describe("a fleet sent to a renderer worker", () => {
  it("survives structured clone and renders every kind of stack as the original does", async () => {
    const received = fleetFromData(deserialize(serialize(fleetData(fleet))) as ReturnType<typeof fleetData>);
    expect([...received.tenants.keys()]).toEqual([...fleet.tenants.keys()]);
    expect([...received.stacks.keys()]).toEqual([...fleet.stacks.keys()]);
    for (const name of ["shared-prod-use1-01", "dedicated-acme-prod", "platform-us-east-1"]) {
      expect(fleet.stacks.has(name), name).toBe(true);
      const original = await renderStack(fleet, name, { fastPromises: true });
      const cloned = await renderStack(received, name, { fastPromises: true });
      expect(cloned, name).toEqual(original);
      expect(original.resources.length, name).toBeGreaterThan(5);
    }
  }, 120_000);

  it("the YAML sources stay behind: reading one in the worker fails naming the file", () => {
    const received = fleetFromData(fleetData(fleet));
    const t = received.tenants.get("acme")!;
    expect(t.yaml.file).toBe(fleet.tenants.get("acme")!.file);
    expect(() => t.yaml.lineOf(["id"])).toThrow(`${t.file}: the YAML source of a fleet received by a renderer worker is not available`);
    expect(() => t.yaml.value).toThrow(/not available/);
    expect(() => serialize(fleet)).toThrow(/could not be cloned/);
  });

  it("a worker renders a fleet that exists only in memory exactly as this process does; without sendFleet it cannot", async () => {
    const names = ["shared-prod-use1-01"];
    const here = await planStacks(inMemory, names, { parallel: 1 });
    const sent = await planStacks(inMemory, names, { fork: true, sendFleet: true });
    expect(sent).toEqual(here);
    expect(here.stacks[0]!.resources.length).toBeGreaterThan(5);
    // Negative control: the worker loads the fleet from its (empty) directory and fails.
    await expect(planStacks(inMemory, names, { fork: true })).rejects.toThrow(/shared-prod-use1-01/);
  }, 180_000);

  it("the spare worker is taken by the next plan in workers, and ends when dropped unused", async () => {
    const used = startSpareWorker()!;
    expect(startSpareWorker()).toBe(used);
    const doc = await planStacks(inMemory, ["dedicated-acme-prod"], { fork: true, sendFleet: true });
    expect(doc.stacks.map((s) => s.name)).toEqual(["dedicated-acme-prod"]);
    // It rendered that stack and was let go: a new spare is another process.
    await waitExited(used);
    const unused = startSpareWorker()!;
    expect(unused).not.toBe(used);
    dropSpareWorker();
    await waitExited(unused);
  }, 180_000);
});
