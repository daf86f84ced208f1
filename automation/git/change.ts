/**
 * The git writer's change contract: what a caller asks for (ChangeRequest, its cause and route),
 * what it gets back (ChangeResult, StageOutcome), and how a change is named in git (the tenant's
 * branch, the commit message with its Tenancy-Change trailer, the pull request body). draft.ts
 * stages changes, writer.ts commits them, recovery.ts repairs the ones a crash interrupted.
 */
import type { Tenant } from "../../infra/model/schema.ts";
import type { EnqueuedRun } from "../runs/store.ts";
import type { PullRequestRef } from "./github.ts";

/** Branch of a dedicated tenant's pending changes; one open PR per tenant. */
export const branchOf = (tenantId: string) => `tenancy/${tenantId}`;
/** Trailer that ties a commit to its change record. */
export const CHANGE_TRAILER = "Tenancy-Change";

export type ChangeSource = "stripe" | "api" | "workflow";
export type ChangeRoute = "main" | "branch";

export interface ChangeCause {
  source: ChangeSource;
  /** Stripe event ids, API request ids or workflow ids; each is cited in the commit. */
  ids: readonly string[];
  /** Who asked (API key name, workflow name). */
  actor?: string;
  /** The internal API key that asked (its name), recorded on the runs the change queues. */
  apiKey?: string;
}

export interface ChangeRequest {
  tenantId: string;
  /** One line: what changes (the commit subject after "tenants: "). */
  summary: string;
  /** Repository-relative path -> new content; null deletes the file. */
  files: Readonly<Record<string, string | null>>;
  cause: ChangeCause;
  /** auto (default): a branch and PR when the tenant is or becomes dedicated, else the main branch. */
  route?: "auto" | ChangeRoute;
  /** Stacks to run besides the tenant's (a new cell's stack file: its first up; docs/cells.md). */
  stacks?: readonly string[];
}

interface ResultBase {
  changeId: string;
  tenantId: string;
  summary: string;
  stacks: string[];
}
export type ChangeResult =
  | (ResultBase & { state: "committed"; route: "main"; commit: string; runs: EnqueuedRun[]; pushed: boolean; note?: string })
  | (ResultBase & { state: "proposed"; route: "branch"; branch: string; commit: string; pushed: boolean; pullRequest?: PullRequestRef; note: string })
  | (ResultBase & { state: "rejected"; route: ChangeRoute; problems: string[] });

export type StageOutcome =
  | { kind: "staged"; changeId: string; route: ChangeRoute; stacks: string[]; tenant?: Tenant }
  | { kind: "unchanged" }
  | { kind: "rejected"; result: ChangeResult & { state: "rejected" } };

/** A change accepted by its Draft, waiting for the session's commit. */
export interface Staged {
  id: string;
  req: ChangeRequest;
  route: ChangeRoute;
  stacks: string[];
}

/** The commit message of a change: its summary, who asked, one trailer per cause, its stacks and the Tenancy-Change trailer. */
export function commitMessage(s: Staged): string {
  const trailer =
    s.req.cause.source === "stripe" ? "Stripe-Event" : s.req.cause.source === "api" ? "Api-Request" : "Workflow";
  const lines = [`tenants: ${s.req.summary}`, ""];
  if (s.req.cause.actor) lines.push(`Requested-By: ${s.req.cause.actor}`);
  for (const id of s.req.cause.ids) lines.push(`${trailer}: ${id}`);
  if (s.stacks.length > 0) lines.push(`Stacks: ${s.stacks.join(", ")}`);
  lines.push(`${CHANGE_TRAILER}: ${s.id}`);
  return `${lines.join("\n")}\n`;
}

/** The body of the pull request that proposes a dedicated tenant's change. */
export function pullRequestBody(s: Staged, commit: string): string {
  const cause = s.req.cause.source === "stripe" ? "Stripe event" : s.req.cause.source === "api" ? "API request" : "workflow";
  return [
    `Proposed by the saas-tenancy control plane (commit ${commit.slice(0, 12)}).`,
    "",
    `- cause: ${cause} ${s.req.cause.ids.join(", ")}${s.req.cause.actor ? ` (${s.req.cause.actor})` : ""}`,
    `- files: ${Object.keys(s.req.files).join(", ")}`,
    `- stacks changed on merge: ${s.stacks.join(", ") || "none"}`,
    "",
    "The resulting fleet passed `tenantctl validate`'s model checks before this branch was written.",
  ].join("\n");
}
