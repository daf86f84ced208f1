/**
 * What `tenantctl upgrade|suspend|resume|offboard|rotate|move` do (rotate, move: control-plane mode only). Two modes, decided by DATABASE_URL:
 *
 * - With DATABASE_URL (the control plane's database): the request is checked against the tenant
 *   file and recorded as a lifecycle workflow (state pending); the control plane's lifecycle worker
 *   runs it (stack updates through its run queue, data through the workflow's guarded steps).
 *   tenantctl runs no step itself and says so.
 * - Without it: the file-editing part only, on the local working copy. suspend, resume and
 *   offboard write the tenant file (validated with the model, written atomically, not committed,
 *   like `tenantctl new`) and print the stacks a person must update with `pulumi up`; offboard
 *   deletes nothing (only the workflow deletes, after the grace period and a recorded backup).
 *   upgrade writes nothing: it prints the provisioning change and its stacks, because copying the
 *   data, the cutover and a rollback need the workflow (and the previous tier it records).
 *
 * In neither mode does tenantctl claim a stack was updated.
 */
import { requireFleet, stacksOfTenant } from "../../infra/model/fleet.ts";
import { PlacementError } from "../../infra/model/placement.ts";
import { CODEOWNERS_PATH, EditRefusedError, tenantPath, lifecycleEdit, offboardRequestEdit, upgradeProvisionEdit, type FileSet } from "../../infra/model/fleetFiles/index.ts";
import {
  addDays, DEFAULT_GRACE_DAYS, InvalidChangeError, LifecycleRequestError, LifecycleService, LocalFleetRepo, requestOnlyPorts, type WorkflowRecord,
} from "../../automation/index.ts";
import { withControlPlane, type OperatorIo } from "./operatorWorkflows.ts";

export type OperatorRequest =
  | { kind: "upgrade"; tenant: string; cutoverNotBefore?: Date }
  | { kind: "rollback"; tenant: string; destroyDedicated: boolean }
  | { kind: "suspend" | "resume"; tenant: string }
  | { kind: "offboard"; tenant: string; graceDays?: number }
  | { kind: "rotate"; tenant: string; envs: string[] }
  | { kind: "move"; tenant: string; to: string; env?: string; cutoverNotBefore?: Date }
  | { kind: "move-rollback"; tenant: string };

export type { OperatorIo };

export interface OperatorOptions {
  projectDir: string;
  /** The control plane's database; absent: local mode. */
  databaseUrl?: string;
  now?: Date;
}

/** Exit codes as tenantctl's (cli/io.ts). */
const OK = 0;
const REFUSED = 1;

export async function runOperatorRequest(req: OperatorRequest, opts: OperatorOptions, io: OperatorIo): Promise<number> {
  return opts.databaseUrl ? enqueue(req, opts, io) : local(req, opts, io);
}

// --- control plane -------------------------------------------------------------------------------

async function enqueue(req: OperatorRequest, opts: OperatorOptions, io: OperatorIo): Promise<number> {
  return withControlPlane(opts.databaseUrl, `tenantctl ${req.kind}`, io, async (pool) => {
    // Requests read the tenant files; nothing else may be reached.
    const service = new LifecycleService(pool, requestOnlyPorts(new LocalFleetRepo(opts.projectDir, { git: false })));
    let wf: WorkflowRecord;
    const by = { requestedBy: `tenantctl (${process.env.USER ?? "unknown user"})` };
    try {
      switch (req.kind) {
        case "upgrade":
          wf = await service.requestUpgrade(req.tenant, { ...by, ...(req.cutoverNotBefore ? { cutoverNotBefore: req.cutoverNotBefore } : {}) });
          break;
        case "rollback":
          wf = await service.requestRollback(req.tenant, { ...by, destroyDedicated: req.destroyDedicated });
          break;
        case "suspend":
          wf = await service.requestSuspend(req.tenant, by);
          break;
        case "resume":
          wf = await service.requestResume(req.tenant, by);
          break;
        case "offboard":
          wf = await service.requestOffboard(req.tenant, { ...by, ...(req.graceDays !== undefined ? { graceDays: req.graceDays } : {}) });
          break;
        case "rotate":
          wf = await service.requestRotate(req.tenant, { ...by, envs: req.envs });
          break;
        case "move":
          wf = await service.requestMove(req.tenant, { ...by, to: req.to, ...(req.env ? { env: req.env } : {}), ...(req.cutoverNotBefore ? { cutoverNotBefore: req.cutoverNotBefore } : {}) });
          break;
        case "move-rollback":
          wf = await service.requestMoveRollback(req.tenant, by);
          break;
      }
    } catch (err) {
      if (err instanceof LifecycleRequestError) {
        io.err(`tenantctl: ${err.message}`);
        return REFUSED;
      }
      throw err;
    }
    io.out(`recorded ${wf.kind} workflow ${wf.id} for tenant ${wf.tenantId} (state ${wf.state})`);
    io.out("it runs in the control plane's lifecycle worker, not in tenantctl: no stack has been updated and no data touched yet");
    return OK;
  });
}

// --- local ---------------------------------------------------------------------------------------

async function local(req: OperatorRequest, opts: OperatorOptions, io: OperatorIo): Promise<number> {
  const fleet = requireFleet({ projectDir: opts.projectDir });
  const loaded = fleet.tenants.get(req.tenant);
  if (!loaded) {
    io.err(`tenantctl: tenant ${req.tenant} does not exist (no tenants/${req.tenant}.yaml)`);
    return REFUSED;
  }
  const t = loaded.tenant;
  const repo = new LocalFleetRepo(opts.projectDir, { git: false });
  const text = (await repo.read(tenantPath(req.tenant)))!;
  const now = opts.now ?? new Date();
  let files: FileSet | undefined;
  let stacks: string[];
  const notes: string[] = [];
  try {
    switch (req.kind) {
      case "rollback":
        io.err("tenantctl: a rollback undoes a workflow: it needs the control plane (set DATABASE_URL)");
        return REFUSED;
      case "move-rollback":
        io.err("tenantctl: rolling back a cell move undoes a workflow: it needs the control plane (set DATABASE_URL)");
        return REFUSED;
      case "move":
        io.err("tenantctl: a cell move copies the tenant's data between cells with change capture, in steps that must resume after a crash: it needs the control plane (set DATABASE_URL); a placement edited by hand is refused by validate --base");
        return REFUSED;
      case "rotate":
        io.err("tenantctl: a rotation changes a live database password in steps that must resume after a crash: it needs the control plane (set DATABASE_URL)");
        return REFUSED;
      case "upgrade": {
        const plan = upgradeProvisionEdit(fleet, text, t, now, await repo.read(CODEOWNERS_PATH));
        const problems = repo.validate(plan.files);
        if (problems.length > 0) throw new InvalidChangeError(problems);
        io.out(`upgrade of ${t.id} to dedicated, step 1 (provisioning), as the workflow would commit it:`);
        for (const [path, body] of Object.entries(plan.files)) io.out(`--- ${path}\n${(body ?? "(deleted)").trimEnd()}`);
        io.out(`stacks step 1 updates: ${plan.stacks.join(", ")}`);
        io.out("nothing was written: copying the data, the cutover and a rollback are steps of the control plane's workflow; set DATABASE_URL to request the upgrade");
        return OK;
      }
      case "suspend":
      case "resume":
        files = lifecycleEdit(text, t, req.kind === "suspend" ? "suspended" : "active");
        stacks = stacksOfTenant(t);
        if (req.kind === "resume" && t.lifecycle === "offboarding") notes.push("the offboarding is cancelled in the file; a pending offboarding workflow in the control plane must be cancelled there (tenantctl resume with DATABASE_URL does both)");
        break;
      case "offboard": {
        const edit = offboardRequestEdit(text, t, now, req.graceDays ?? DEFAULT_GRACE_DAYS);
        files = edit.files;
        stacks = stacksOfTenant(t);
        notes.push(
          `nothing is deleted by this command; the control plane's offboarding workflow deletes the data after the grace period ` +
            `(${addDays(new Date(edit.requestedAt), edit.graceDays).toISOString()}) once a final backup is recorded`,
        );
        break;
      }
    }
  } catch (err) {
    if (err instanceof EditRefusedError || err instanceof PlacementError) {
      io.err(`tenantctl: ${err.message}`);
      return REFUSED;
    }
    if (err instanceof InvalidChangeError) {
      for (const p of err.problems) io.err(p);
      return REFUSED;
    }
    throw err;
  }
  if (!files) {
    io.out(`tenants/${t.id}.yaml already says ${t.lifecycle}; nothing to write`);
  } else {
    try {
      await repo.commit({ tenantId: t.id, workflowId: "tenantctl", summary: req.kind, files });
    } catch (err) {
      if (err instanceof InvalidChangeError) {
        for (const p of err.problems) io.err(p);
        return REFUSED;
      }
      throw err;
    }
    for (const path of Object.keys(files)) io.out(`wrote ${path} (not committed)`);
  }
  io.out(`stacks to update (tenantctl updated none): ${stacks.join(", ")}`);
  for (const s of stacks) io.out(`  pulumi up --stack ${s}`);
  for (const n of notes) io.out(n);
  return OK;
}
