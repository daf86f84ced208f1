import { isWorkflowId } from "../../automation/index.ts";
import { controlPlaneClient } from "../controlPlane/client.ts";
import { EXIT, UsageError, type Io } from "../io.ts";

interface CancelAnswer {
  workflow: { id: string; kind: string; tenantId: string; state: string; currentStep: string | null; note: string | null };
  /** Present when a step was running: the cancel is recorded and takes effect when the step stops. */
  cancelling?: { step: string | null; interrupting: boolean };
  next: string;
}

/**
 * `tenantctl cancel WORKFLOW_ID [--note TEXT]`: cancels an open lifecycle workflow through the
 * control plane's API (POST /api/workflows/:id/cancel; docs/lifecycle.md, "Cancelling a workflow").
 * Through the API and not DATABASE_URL as `retry` does: a cancel may have to undo a write window
 * on the tenant's databases, which only the control plane reaches. A step running: the cancel is
 * recorded (202) and printed as `cancelling`, exit 0. A refusal (unknown id, already finished, at or
 * past the switch, the clean-up failed) is the control plane's message, exit 1.
 */
export async function cancelCommand(id: string, opts: { note?: string }, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!isWorkflowId(id)) {
    throw new UsageError(`"${id}" is not a workflow id: expected a UUID such as 0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10 (tenantctl workflows lists them)`);
  }
  if (opts.note !== undefined && opts.note.trim() === "") throw new UsageError("--note needs a text saying why (or leave it out)");
  const client = controlPlaneClient(env);
  const r = await client.request<CancelAnswer>("POST", `/api/workflows/${id.toLowerCase()}/cancel`, opts.note !== undefined ? { note: opts.note } : {});
  const w = r.workflow;
  if (r.cancelling) {
    const c = r.cancelling;
    io.out(`cancelling ${w.kind} workflow ${w.id} of tenant ${w.tenantId}: ${c.step ? `${c.interrupting ? "stopping" : "waiting for"} its running step ${c.step}` : "a worker is taking it up"}`);
    io.out(`next: ${r.next}`);
    return EXIT.ok;
  }
  io.out(`cancelled ${w.kind} workflow ${w.id} of tenant ${w.tenantId}${w.currentStep ? ` (it was at ${w.currentStep})` : ""}: ${w.note ?? ""}`);
  io.out(`next: ${r.next}`);
  return EXIT.ok;
}
