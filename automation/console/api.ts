/**
 * The shapes of the /api answers the console pages read (JSON as the routes send it: dates are
 * ISO strings), the signed-in request every page gets, and the page shown when the API refuses a read.
 */
import type { ConsoleSession } from "../http/sessions.ts";
import { html, layout, type PageUser } from "./html.ts";

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
}

/** A signed-in console request: its session, and a caller of the API as that session. */
export interface Signed {
  session: ConsoleSession;
  user: PageUser;
  api(method: "GET" | "POST", url: string, body?: unknown): Promise<ApiAnswer>;
}

export interface RunJson {
  id: string;
  stack: string;
  operation: string;
  state: string;
  reasons: string[];
  apiKeys: string[];
  commit: string | null;
  attempts: number;
  cancelRequested: boolean;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface WorkflowJson {
  id: string;
  kind: string;
  tenantId: string;
  state: string;
  currentStep: string | null;
  attempts: number;
  lastError: string | null;
  note: string | null;
  requestedBy: string | null;
  retriedByApiKey: string | null;
  /** When a cancel was recorded while a step ran (the workflow ends cancelled once the step has stopped). */
  cancelRequestedAt?: string | null;
  /** When a waiting workflow (or one between attempts) is taken up again. */
  wakeAt?: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface RolloutJson {
  id: string;
  name: string;
  commit: string;
  state: string;
  wave: number;
  haltReason: string | null;
  requestedBy: string | null;
  createdAt: string;
  finishedAt: string | null;
  waves: unknown[];
}

export interface RolloutViewJson {
  rollout: RolloutJson;
  waves: {
    index: number;
    ring: string;
    parallelism: number;
    bakeMs: number;
    failureBudgetPercent: number;
    counts: Record<string, number>;
    stacks: { stack: string; state: string; runId: string | null; attempts: number; error: string | null }[];
  }[];
}

export interface DriftJson {
  stack: string;
  state: string;
  previous: string | null;
  runId: string | null;
  resources: { urn: string; type: string; op: string; diffs?: string[] }[];
  error: string | null;
  checkedAt: string | null;
  dueAt: string;
  tenants: string[];
}

export function errorMessage(a: ApiAnswer): string {
  const e = a.json.error as { message?: unknown } | undefined;
  return typeof e?.message === "string" ? e.message : `the API answered ${a.status}`;
}

/** The page for a read the API refused (its status and message, as the API gave them). */
export function refusedPage(title: string, user: PageUser, a: ApiAnswer): { status: number; body: string } {
  return { status: a.status, body: layout({ title, user, body: html`<p role="alert" class="error">${errorMessage(a)}</p>` }) };
}
