// Posts the plan as ONE pull-request comment and edits that same comment on every push.
// Run by actions/github-script (CommonJS: the package is "type": "module", hence .cjs).
// The comment is found by the marker on its first line (cli/plan/markdown.ts COMMENT_MARKER)
// and by its author being a bot, so a human quoting the marker is never overwritten.

const MARKER = "<!-- tenantctl-plan -->";

/**
 * @param {{ github: any, context: any, core: any, body: string, marker?: string }} args
 * @returns {Promise<{ action: "created" | "updated" | "skipped", id?: number }>}
 */
async function stickyComment({ github, context, core, body, marker = MARKER }) {
  const issue_number = context.issue && context.issue.number;
  if (!issue_number) {
    core.info("not a pull request: no comment");
    return { action: "skipped" };
  }
  const text = body.startsWith(marker) ? body : `${marker}\n${body}`;
  const { owner, repo } = context.repo;
  try {
    const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
    const mine = comments.find((c) => c.user && c.user.type === "Bot" && typeof c.body === "string" && c.body.startsWith(marker));
    if (mine) {
      await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body: text });
      core.info(`updated plan comment ${mine.id}`);
      return { action: "updated", id: mine.id };
    }
    const { data } = await github.rest.issues.createComment({ owner, repo, issue_number, body: text });
    core.info(`created plan comment ${data.id}`);
    return { action: "created", id: data.id };
  } catch (err) {
    // Pull requests from forks get a read-only token: the plan is still in the job summary and artifact.
    if (err && (err.status === 403 || err.status === 404)) {
      core.warning(`cannot comment on this pull request (${err.status}: ${err.message}); the plan is in the job summary`);
      return { action: "skipped" };
    }
    throw err;
  }
}

module.exports = stickyComment;
module.exports.MARKER = MARKER;
