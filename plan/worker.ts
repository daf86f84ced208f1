/**
 * A plan worker process: renders the stacks its parent sends, one at a time (the mock runtime is
 * process-wide), runs the policy pack on each, and replies over IPC.
 */
import type { Fleet } from "../infra/model/fleet.ts";
import type { WorkerReply, WorkerRequest } from "./planStacks.ts";
import { deferTypescript } from "./render/deferTypescript.ts";

// Before the SDK loads (render/deferTypescript.ts); what loads it is imported after, and at once:
// a spare worker loads the SDK while its parent still loads the fleet.
deferTypescript();
const modules = Promise.all([import("../infra/model/fleet.ts"), import("./fleetTransfer.ts"), import("./planStacks.ts")]);
// A failed load is answered to each request below; without a request the worker only exits.
modules.catch(() => {});

let fleet: Fleet | undefined;

process.on("message", (req: WorkerRequest) => {
  void (async () => {
    let reply: WorkerReply;
    try {
      const [{ requireFleet }, { fleetFromData }, { fleetAnalyzer, planOne }] = await modules;
      if ("fleet" in req) fleet = fleetFromData(req.fleet);
      else if ("dirs" in req) fleet ??= requireFleet(req.dirs);
      if (!fleet) throw new Error("plan worker: no fleet received before the first stack");
      reply = { stack: req.stack, ok: true, planned: await planOne(fleet, req.stack, fleetAnalyzer(fleet)) };
    } catch (err) {
      reply = { stack: req.stack, ok: false, message: process.env.TENANTCTL_DEBUG ? String((err as Error).stack) : (err as Error).message };
    }
    process.send!(reply);
  })();
});
