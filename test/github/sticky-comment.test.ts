import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { COMMENT_MARKER } from "../../cli/plan/markdown.ts";

interface Comment {
  id: number;
  body: string;
  user: { type: "Bot" | "User" };
}
type StickyComment = ((args: { github: unknown; context: unknown; core: unknown; body: string }) => Promise<{ action: string; id?: number }>) & { MARKER: string };

const require = createRequire(import.meta.url);
const stickyComment = require("../../.github/scripts/sticky-comment.cjs") as StickyComment;

/** Enough of Octokit for the script: paginate, listComments, createComment, updateComment. */
function fakeGitHub(comments: Comment[], opts: { failWith?: number } = {}) {
  const calls: string[] = [];
  let next = 1000;
  const fail = () => {
    if (opts.failWith) throw Object.assign(new Error("Resource not accessible by integration"), { status: opts.failWith });
  };
  const github = {
    paginate: async (fn: (p: unknown) => Promise<{ data: Comment[] }>, params: unknown) => (await fn(params)).data,
    rest: {
      issues: {
        listComments: async (p: { issue_number: number }) => {
          calls.push(`list ${p.issue_number}`);
          return { data: comments };
        },
        createComment: async (p: { issue_number: number; body: string }) => {
          fail();
          const c: Comment = { id: next++, body: p.body, user: { type: "Bot" } };
          comments.push(c);
          calls.push(`create ${c.id}`);
          return { data: c };
        },
        updateComment: async (p: { comment_id: number; body: string }) => {
          fail();
          comments.find((c) => c.id === p.comment_id)!.body = p.body;
          calls.push(`update ${p.comment_id}`);
          return { data: {} };
        },
      },
    },
  };
  const logs: string[] = [];
  const core = { info: (m: string) => logs.push(`info ${m}`), warning: (m: string) => logs.push(`warning ${m}`) };
  const context = { repo: { owner: "org", repo: "saas-tenancy" }, issue: { number: 42 } };
  return { github, core, context, calls, comments, logs };
}

describe("the sticky plan comment", () => {
  it("uses the same marker as the markdown renderer", () => {
    expect(stickyComment.MARKER).toBe(COMMENT_MARKER);
  });

  it("creates the comment on the first push and edits that one comment on every later push", async () => {
    const f = fakeGitHub([{ id: 1, body: "LGTM", user: { type: "User" } }]);
    expect(await stickyComment({ ...f, body: `${COMMENT_MARKER}\nplan 1` })).toEqual({ action: "created", id: 1000 });
    expect(await stickyComment({ ...f, body: `${COMMENT_MARKER}\nplan 2` })).toEqual({ action: "updated", id: 1000 });
    expect(await stickyComment({ ...f, body: "plan 3 without the marker" })).toEqual({ action: "updated", id: 1000 });
    expect(f.comments.map((c) => c.body)).toEqual(["LGTM", `${COMMENT_MARKER}\nplan 3 without the marker`]);
    expect(f.calls).toEqual(["list 42", "create 1000", "list 42", "update 1000", "list 42", "update 1000"]);
  });

  it("never edits a human's comment that quotes the marker", async () => {
    const f = fakeGitHub([{ id: 7, body: `${COMMENT_MARKER}\ncopied by hand`, user: { type: "User" } }]);
    expect(await stickyComment({ ...f, body: `${COMMENT_MARKER}\nplan` })).toEqual({ action: "created", id: 1000 });
    expect(f.comments[0]!.body).toBe(`${COMMENT_MARKER}\ncopied by hand`);
  });

  it("warns instead of failing when the token cannot comment (a fork's read-only token)", async () => {
    const f = fakeGitHub([], { failWith: 403 });
    expect(await stickyComment({ ...f, body: "plan" })).toEqual({ action: "skipped" });
    expect(f.logs[0]).toMatch(/^warning cannot comment on this pull request \(403/);
    const g = fakeGitHub([], { failWith: 500 });
    await expect(stickyComment({ ...g, body: "plan" })).rejects.toThrow(/not accessible/);
  });

  it("does nothing outside a pull request", async () => {
    const f = fakeGitHub([]);
    expect(await stickyComment({ ...f, context: { repo: f.context.repo, issue: {} }, body: "plan" })).toEqual({ action: "skipped" });
    expect(f.calls).toEqual([]);
  });
});
