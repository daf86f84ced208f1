/**
 * Pull requests through the GitHub REST API (POST /repos/{owner}/{repo}/pulls). Dedicated
 * changes provision a whole stack (VPC, RDS, DNS zone), so a person reviews them; the control
 * plane opens the PR and records its URL. An already-open PR for the branch is found and reused.
 */
import type { GitHubSettings } from "../config.ts";

export interface PullRequestRef {
  number: number;
  url: string;
  /** False when an open PR for the branch already existed (the branch got a new commit). */
  created: boolean;
}

export class GitHubError extends Error {}

export class GitHubClient {
  constructor(private readonly settings: GitHubSettings) {}

  get repo(): string {
    return this.settings.repo;
  }

  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.settings.apiUrl}${path}`, {
        method,
        headers: {
          accept: "application/vnd.github+json",
          authorization: `Bearer ${this.settings.token}`,
          "x-github-api-version": "2022-11-28",
          "user-agent": "saas-tenancy-control-plane",
          ...(body ? { "content-type": "application/json" } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new GitHubError(`GitHub API ${method} ${path} unreachable: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  async openPullRequest(opts: { head: string; base: string; title: string; body: string }): Promise<PullRequestRef> {
    const [owner] = this.settings.repo.split("/");
    const created = await this.request("POST", `/repos/${this.settings.repo}/pulls`, {
      title: opts.title,
      head: opts.head,
      base: opts.base,
      body: opts.body,
      maintainer_can_modify: true,
    });
    if (created.status === 201) return { ...prRef(created.json), created: true };
    if (created.status === 422) {
      // "A pull request already exists for owner:branch": find it.
      const q = new URLSearchParams({ head: `${owner}:${opts.head}`, base: opts.base, state: "open" });
      const list = await this.request("GET", `/repos/${this.settings.repo}/pulls?${q.toString()}`);
      if (list.status === 200 && Array.isArray(list.json) && list.json.length > 0) return { ...prRef(list.json[0]), created: false };
    }
    const message = (created.json as { message?: unknown } | undefined)?.message;
    throw new GitHubError(
      `GitHub refused the pull request for ${opts.head} -> ${opts.base} in ${this.settings.repo} (HTTP ${created.status}${typeof message === "string" ? `: ${message}` : ""}); ` +
        `check GITHUB_TOKEN's access to the repository`,
    );
  }
}

function prRef(json: unknown): { number: number; url: string } {
  const { number, html_url } = (json ?? {}) as { number?: unknown; html_url?: unknown };
  if (typeof number !== "number" || typeof html_url !== "string") throw new GitHubError("GitHub answered without a pull request number/url");
  return { number, url: html_url };
}
