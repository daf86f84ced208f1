/**
 * What a person may do from the console, each an /api call behind a confirmation page that says
 * what will happen (docs/console.md). The consequence is written from the record the API returns,
 * so the page names the run, stack, workflow step or rollout wave concerned.
 */
import { html, csrfField, layout, type Html } from "./html.ts";
import { errorMessage, refusedPage, type RolloutViewJson, type RunJson, type WorkflowJson, type Signed } from "./api.ts";

const enc = encodeURIComponent;

export interface Action {
  /** The console path: GET confirms, POST acts. */
  path: string;
  title: string;
  /** The /api route it calls (POST). */
  api(p: Record<string, string>): string;
  /** Where the browser goes after it succeeded. */
  after(p: Record<string, string>, answer: Record<string, unknown>): string;
  back(p: Record<string, string>): string;
  /** The consequence, from the API's record of the target; a string is an error to show. */
  consequence(s: Signed, p: Record<string, string>): Promise<Html | { status: number; message: string }>;
}

/** A refusal shown instead of the confirmation (the action cannot apply to the record as it is). */
type Refusal = { status: number; message: string };

/**
 * An action on one record of the API (a run, a workflow, a rollout): the confirmation reads the
 * record (GET /api/<kind>s/:id) and says what the action does to it; the form POSTs
 * /api/<kind>s/:id/<verb>; both go back to the record's console page.
 */
const recordAction = <T>(kind: "run" | "workflow" | "rollout", verb: string, title: string, read: (json: Record<string, unknown>) => T, say: (record: T) => Html | Refusal): Action => ({
  path: `/console/${kind}s/:id/${verb}`,
  title,
  api: (p) => `/api/${kind}s/${enc(p.id!)}/${verb}`,
  after: (p) => `/console/${kind}s/${enc(p.id!)}`,
  back: (p) => `/console/${kind}s/${enc(p.id!)}`,
  consequence: async (s, p) => {
    const a = await s.api("GET", `/api/${kind}s/${enc(p.id!)}`);
    if (a.status !== 200) return { status: a.status, message: errorMessage(a) };
    return say(read(a.json));
  },
});

const rolloutAction = (verb: "pause" | "resume" | "abort", title: string, say: (v: RolloutViewJson) => Html): Action =>
  recordAction("rollout", verb, title, (j) => j as unknown as RolloutViewJson, say);
const workflowAction = (verb: "retry" | "cancel", title: string, say: (w: WorkflowJson) => Html | Refusal): Action =>
  recordAction("workflow", verb, title, (j) => j.workflow as WorkflowJson, say);

const waveName = (v: RolloutViewJson) => {
  const w = v.waves[v.rollout.wave];
  return w ? `wave ${w.index + 1} of ${v.waves.length} (ring ${w.ring})` : "its last wave";
};

const at = (w: WorkflowJson): Html | string => (w.currentStep ? html` at step <code>${w.currentStep}</code>` : "");

export const ACTIONS = {
  "run-stack": {
    path: "/console/stacks/:stack/run",
    title: "Run a stack",
    api: (p) => `/api/stacks/${enc(p.stack!)}/runs`,
    after: (_p, answer) => `/console/runs/${enc((answer.run as { id: string }).id)}`,
    back: () => "/console/fleet",
    consequence: async (_s, p) =>
      html`<p>This queues <code>pulumi up</code> of stack <strong>${p.stack}</strong> on the commit of the tenant files now on the control plane's branch.
The engine creates, updates or replaces that stack's cloud resources until they match the files, for every tenant the stack holds.
If a run of the stack is already queued, this request joins it.</p>`,
  },
  "cancel-run": recordAction(
    "run",
    "cancel",
    "Cancel a run",
    (j) => j.run as RunJson,
    (run) => html`<p>Run <code>${run.id}</code> (${run.operation} of stack <strong>${run.stack}</strong>) is <strong>${run.state}</strong>.
${run.state === "queued" ? "Cancelling it drops it: it will never start." : "Cancelling it asks the engine to stop at its next safe point: the run ends failed, and the stack keeps whatever the engine had already changed until its next run."}</p>`,
  ),
  "retry-workflow": workflowAction(
    "retry",
    "Retry a workflow",
    (w) => html`<p>The <strong>${w.kind}</strong> workflow of tenant <strong>${w.tenantId}</strong> is <strong>${w.state}</strong>${at(w)}${w.lastError ? html` with the error: <q>${w.lastError}</q>` : ""}.
Retrying it starts it again at that step; steps it already finished are not repeated. If the cause of the failure is still there, it fails again.</p>`,
  ),
  "cancel-workflow": workflowAction("cancel", "Cancel a workflow", (w) => {
    if (!["pending", "running", "waiting"].includes(w.state)) return { status: 409, message: `The ${w.kind} workflow of tenant ${w.tenantId} is already ${w.state}: there is nothing to cancel.` };
    return html`<p>The <strong>${w.kind}</strong> workflow of tenant <strong>${w.tenantId}</strong> is <strong>${w.state}</strong>${at(w)}.
Cancelling it stops it for good: the lifecycle worker never runs it again. A write window a stopped process left open is undone first (the tenant writes to the database it was leaving again), and its capture slot is dropped; what its finished steps did stays done (a move or an upgrade is then rolled back with its own rollback).
If a step is running right now, a copy or a catch-up of the change stream is stopped (what it copied is rolled back) and any other step is left to finish; the workflow then ends cancelled. Once a move or upgrade has started its switch the cancel is refused and says why.</p>`;
  }),
  "pause-rollout": rolloutAction(
    "pause",
    "Pause a rollout",
    (v) => html`<p>Rollout <strong>${v.rollout.name}</strong> is <strong>${v.rollout.state}</strong> at ${waveName(v)}. Pausing it starts no further stack run; runs already started finish. It stays paused until someone resumes it.</p>`,
  ),
  "resume-rollout": rolloutAction(
    "resume",
    "Resume a rollout",
    (v) => html`<p>Rollout <strong>${v.rollout.name}</strong> is <strong>${v.rollout.state}</strong> at ${waveName(v)}${v.rollout.haltReason ? html`, halted because: <q>${v.rollout.haltReason}</q>` : ""}.
Resuming it starts stack runs again from that wave${v.rollout.state === "halted" ? ", running its failed stacks again first" : ""}, and then the later rings of prod.</p>`,
  ),
  "abort-rollout": rolloutAction(
    "abort",
    "Abort a rollout",
    (v) => html`<p>Rollout <strong>${v.rollout.name}</strong> is <strong>${v.rollout.state}</strong> at ${waveName(v)}. Aborting ends it for good: none of its remaining stacks is run by it.
Stacks it already updated stay updated; nothing is rolled back.</p>`,
  ),
} satisfies Record<string, Action>;

export type ActionName = keyof typeof ACTIONS;

export async function confirmPage(s: Signed, name: ActionName, p: Record<string, string>): Promise<{ status?: number; body: string }> {
  const action: Action = ACTIONS[name];
  const c = await action.consequence(s, p);
  if (!("text" in c)) return refusedPage(action.title, s.user, { status: c.status, json: { error: { message: c.message } } });
  const target = action.path.replace(/:(\w+)/g, (_m, k: string) => enc(p[k] ?? ""));
  return {
    body: layout({
      title: action.title,
      user: s.user,
      body: html`<section aria-labelledby="consequence"><h2 id="consequence">What this does</h2>${c}</section>
<form method="post" action="${target}" class="confirm">${csrfField(s.user)}
<button type="submit" class="danger">Yes, ${action.title.toLowerCase()}</button> <a href="${action.back(p)}">No, go back</a>
</form>`,
    }),
  };
}
