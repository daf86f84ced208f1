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

const rolloutAction = (verb: "pause" | "resume" | "abort", title: string, say: (v: RolloutViewJson) => Html): Action => ({
  path: `/console/rollouts/:id/${verb}`,
  title,
  api: (p) => `/api/rollouts/${enc(p.id!)}/${verb}`,
  after: (p) => `/console/rollouts/${enc(p.id!)}`,
  back: (p) => `/console/rollouts/${enc(p.id!)}`,
  consequence: async (s, p) => {
    const a = await s.api("GET", `/api/rollouts/${enc(p.id!)}`);
    if (a.status !== 200) return { status: a.status, message: errorMessage(a) };
    return say(a.json as unknown as RolloutViewJson);
  },
});

const waveName = (v: RolloutViewJson) => {
  const w = v.waves[v.rollout.wave];
  return w ? `wave ${w.index + 1} of ${v.waves.length} (ring ${w.ring})` : "its last wave";
};

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
  "cancel-run": {
    path: "/console/runs/:id/cancel",
    title: "Cancel a run",
    api: (p) => `/api/runs/${enc(p.id!)}/cancel`,
    after: (p) => `/console/runs/${enc(p.id!)}`,
    back: (p) => `/console/runs/${enc(p.id!)}`,
    consequence: async (s, p) => {
      const a = await s.api("GET", `/api/runs/${enc(p.id!)}`);
      if (a.status !== 200) return { status: a.status, message: errorMessage(a) };
      const run = a.json.run as RunJson;
      return html`<p>Run <code>${run.id}</code> (${run.operation} of stack <strong>${run.stack}</strong>) is <strong>${run.state}</strong>.
${run.state === "queued" ? "Cancelling it drops it: it will never start." : "Cancelling it asks the engine to stop at its next safe point: the run ends failed, and the stack keeps whatever the engine had already changed until its next run."}</p>`;
    },
  },
  "retry-workflow": {
    path: "/console/workflows/:id/retry",
    title: "Retry a workflow",
    api: (p) => `/api/workflows/${enc(p.id!)}/retry`,
    after: (p) => `/console/workflows/${enc(p.id!)}`,
    back: (p) => `/console/workflows/${enc(p.id!)}`,
    consequence: async (s, p) => {
      const a = await s.api("GET", `/api/workflows/${enc(p.id!)}`);
      if (a.status !== 200) return { status: a.status, message: errorMessage(a) };
      const w = a.json.workflow as WorkflowJson;
      return html`<p>The <strong>${w.kind}</strong> workflow of tenant <strong>${w.tenantId}</strong> is <strong>${w.state}</strong>${w.currentStep ? html` at step <code>${w.currentStep}</code>` : ""}${w.lastError ? html` with the error: <q>${w.lastError}</q>` : ""}.
Retrying it starts it again at that step; steps it already finished are not repeated. If the cause of the failure is still there, it fails again.</p>`;
    },
  },
  "cancel-workflow": {
    path: "/console/workflows/:id/cancel",
    title: "Cancel a workflow",
    api: (p) => `/api/workflows/${enc(p.id!)}/cancel`,
    after: (p) => `/console/workflows/${enc(p.id!)}`,
    back: (p) => `/console/workflows/${enc(p.id!)}`,
    consequence: async (s, p) => {
      const a = await s.api("GET", `/api/workflows/${enc(p.id!)}`);
      if (a.status !== 200) return { status: a.status, message: errorMessage(a) };
      const w = a.json.workflow as WorkflowJson;
      if (!["pending", "running", "waiting"].includes(w.state)) return { status: 409, message: `The ${w.kind} workflow of tenant ${w.tenantId} is already ${w.state}: there is nothing to cancel.` };
      return html`<p>The <strong>${w.kind}</strong> workflow of tenant <strong>${w.tenantId}</strong> is <strong>${w.state}</strong>${w.currentStep ? html` at step <code>${w.currentStep}</code>` : ""}.
Cancelling it stops it for good: the lifecycle worker never runs it again. A write window a stopped process left open is undone first (the tenant writes to the database it was leaving again), and its capture slot is dropped; what its finished steps did stays done (a move or an upgrade is then rolled back with its own rollback).
If a step is running right now, or a move or upgrade has already switched, the cancel is refused and says why.</p>`;
    },
  },
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
