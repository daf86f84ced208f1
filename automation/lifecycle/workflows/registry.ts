/**
 * The lifecycle workflow kinds, registered beside the workflows: the engine (engine/engine.ts)
 * runs whatever definitions it is given and knows no kind by name. A new workflow is a module in
 * this folder plus one entry here (and its kind in the lifecycle_workflows CHECK constraint of a
 * migration: test/lifecycle/registry.test.ts compares the two).
 */
import type { WorkflowDef } from "../engine/engine.ts";
import { moveWorkflow } from "./move.ts";
import { moveRollbackWorkflow } from "./moveRollback.ts";
import { offboardWorkflow } from "./offboard.ts";
import { rollbackWorkflow } from "./rollback.ts";
import { rotateWorkflow } from "./rotate.ts";
import { resumeWorkflow, suspendWorkflow } from "./suspension.ts";
import { upgradeWorkflow } from "./upgrade.ts";

export const LIFECYCLE_WORKFLOWS = [upgradeWorkflow, rollbackWorkflow, suspendWorkflow, resumeWorkflow, offboardWorkflow, rotateWorkflow, moveWorkflow, moveRollbackWorkflow] as const satisfies readonly WorkflowDef[];

/** The kinds the control plane runs. */
export type LifecycleWorkflowKind = (typeof LIFECYCLE_WORKFLOWS)[number]["kind"];
export const LIFECYCLE_WORKFLOW_KINDS: readonly LifecycleWorkflowKind[] = LIFECYCLE_WORKFLOWS.map((w) => w.kind);
