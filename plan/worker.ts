/**
 * A plan worker process: renders the stacks its parent sends, one at a time (the mock runtime is
 * process-wide), runs the policy pack on each, and replies over IPC.
 */
import { requireFleet, type Fleet } from "../infra/model/fleet.ts";
import { fleetFromData } from "./fleetTransfer.ts";
import { fleetAnalyzer, planOne, type WorkerReply, type WorkerRequest } from "./planStacks.ts";

let fleet: Fleet | undefined;

process.on("message", (req: WorkerRequest) => {
  void (async () => {
    let reply: WorkerReply;
    try {
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
