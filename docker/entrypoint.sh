#!/bin/sh
# Entrypoint of the image (Dockerfile, docs/deploying.md "The image"): gives the control plane
# its git working copy before it starts. TENANCY_REPO_DIR not yet a working copy (a new task, an
# empty volume): clone TENANCY_REPO_URL there (branch TENANCY_GIT_BRANCH when set). The runs'
# checkouts link node_modules from the working copy (automation/git/writer.ts checkout): link the
# image's install there, kept out of git status. Then run the command (the control plane).
set -eu
app="${TENANCY_APP_DIR:-/app}"
repo="${TENANCY_REPO_DIR:?TENANCY_REPO_DIR is not set: the directory of the fleet repository's working copy}"
if [ ! -d "$repo/.git" ]; then
  if [ -z "${TENANCY_REPO_URL:-}" ]; then
    echo "entrypoint: $repo is not a git working copy and TENANCY_REPO_URL is not set; set TENANCY_REPO_URL to the fleet repository's URL (cloned into $repo on start) or mount a working copy at $repo" >&2
    exit 64
  fi
  if [ -n "${TENANCY_GIT_BRANCH:-}" ]; then
    git clone --quiet --branch "$TENANCY_GIT_BRANCH" "$TENANCY_REPO_URL" "$repo"
  else
    git clone --quiet "$TENANCY_REPO_URL" "$repo"
  fi
fi
if [ ! -e "$repo/node_modules" ]; then
  ln -s "$app/node_modules" "$repo/node_modules"
fi
# .gitignore's `node_modules/` matches directories only, not this symlink.
exclude="$repo/.git/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/node_modules' "$exclude" 2>/dev/null || echo '/node_modules' >> "$exclude"
exec "$@"
