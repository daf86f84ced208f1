/**
 * The operator console's HTML (docs/console.md): a tagged template that escapes every value put
 * into a page (only other templates' output passes unescaped), and the layout every page shares:
 * navigation, the signed-in key, the logout form with its CSRF token, and a skip link.
 */
import { CSRF_FIELD } from "../http/sessions.ts";

/** Markup made by `html` (safe to embed as it is). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join("");
  return escapeHtml(String(v));
}

/** `html\`<p>${value}</p>\``: values are escaped, nested `html` output and arrays of it are not. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

export interface PageUser {
  keyName: string;
  csrf: string;
}

export type NavSection = "fleet" | "runs" | "rollouts" | "drift" | "none";

const NAV: [Exclude<NavSection, "none">, string, string][] = [
  ["fleet", "/console/fleet", "Fleet"],
  ["runs", "/console/runs", "Runs"],
  ["rollouts", "/console/rollouts", "Rollouts"],
  ["drift", "/console/drift", "Drift"],
];

/** Hidden CSRF field for a console form. */
export function csrfField(user: PageUser): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${user.csrf}">`;
}

/**
 * A page: `scripts` are console assets loaded as modules; `refreshWithoutScripts` (seconds) makes
 * a browser with scripts off reload the page that often (a `<noscript>` refresh), for a page whose
 * script would otherwise fill something in.
 */
export function layout(opts: { title: string; user?: PageUser; section?: NavSection; body: Html; scripts?: string[]; refreshWithoutScripts?: number }): string {
  const { title, user, section = "none", body } = opts;
  const nav = user
    ? html`<nav aria-label="Console"><ul>${NAV.map(([id, href, label]) => html`<li><a href="${href}"${id === section ? new Html(' aria-current="page"') : ""}>${label}</a></li>`)}</ul></nav>
<form method="post" action="/console/logout" class="logout">${csrfField(user)}<span>Signed in with key <strong>${user.keyName}</strong></span> <button type="submit">Log out</button></form>`
    : "";
  return `<!doctype html>
${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · tenancy console</title>
<link rel="stylesheet" href="/console/assets/console.css">
${(opts.scripts ?? []).map((s) => html`<script type="module" src="/console/assets/${s}"></script>`)}
${opts.refreshWithoutScripts !== undefined ? html`<noscript><meta http-equiv="refresh" content="${opts.refreshWithoutScripts}"></noscript>` : ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">saas-tenancy console</span>${nav}</header>
<main id="main" tabindex="-1">
<h1>${title}</h1>
${body}
</main>
</body>
</html>`.text}`;
}

/** `2026-12-06T01:02:03.000Z` -> `2026-12-06 01:02:03 UTC`; empty for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A state badge (its text says the state: colour is never the only signal). */
export function badge(state: string): Html {
  return html`<span class="badge state-${state.replace(/[^a-z-]/g, "")}">${state}</span>`;
}
