/**
 * tenantctl's client of the control plane's HTTP API (docs/control-plane.md), for the commands
 * that act through it (rollouts). Where it is and the key come from the environment:
 * TENANCY_URL (e.g. https://control.tenancy.example.com) and TENANCY_API_KEY. Every failure is
 * one line a person can act on; nothing here imports the control plane's code.
 */
import { ProblemsError, UsageError } from "../io.ts";

export interface ControlPlaneClient {
  request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T>;
  readonly baseUrl: string;
}

export function controlPlaneClient(env: NodeJS.ProcessEnv = process.env, fetchFn: typeof fetch = fetch): ControlPlaneClient {
  const url = env.TENANCY_URL;
  const key = env.TENANCY_API_KEY;
  if (!url || !key) {
    throw new UsageError(
      `this command talks to the control plane: set ${[!url && "TENANCY_URL (its base URL)", !key && "TENANCY_API_KEY (an API key of the control plane)"].filter(Boolean).join(" and ")}`,
    );
  }
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new UsageError(`TENANCY_URL "${url}" is not a URL (e.g. https://control.tenancy.example.com)`);
  }
  const baseUrl = base.toString().replace(/\/$/, "");
  return {
    baseUrl,
    async request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetchFn(`${baseUrl}${path}`, {
          method,
          headers: { "x-api-key": key, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        throw new ProblemsError([`cannot reach the control plane at ${baseUrl}: ${(err as Error).message}`]);
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        const message = (json as { error?: { message?: string } } | undefined)?.error?.message ?? (text.slice(0, 200) || res.statusText);
        throw new ProblemsError([`control plane answered ${res.status} to ${method} ${path}: ${message}`]);
      }
      return json as T;
    },
  };
}
