/**
 * A plan worker process: renders the stacks its parent sends, one at a time (the mock runtime is
 * process-wide), runs the policy pack on each, and replies over IPC.
 */
import { requireFleet, type Fleet } from "../infra/model/fleet.ts";
import { fleetAnalyzer, planOne, type WorkerReply, type WorkerRequest } from "./planStacks.ts";

let fleet: Fleet | undefined;

process.on("message", (req: WorkerRequest) => {
  void (async () => {
    let reply: WorkerReply;
    try {
      fleet ??= requireFleet(req.dirs);
      reply = { stack: req.stack, ok: true, planned: await planOne(fleet, req.stack, fleetAnalyzer(fleet)) };
    } catch (err) {
      reply = { stack: req.stack, ok: false, message: process.env.TENANTCTL_DEBUG ? String((err as Error).stack) : (err as Error).message };
    }
    process.send!(reply);
  })();
});
