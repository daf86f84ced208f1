#!/usr/bin/env bash
# A program, policy or platform change reaches the fleet as one rollout (docs/rollouts.md): starts
# it on the control plane for the pushed commit and follows it ring by ring with
# `tenantctl rollout start --follow`, which exits 0 only when every stack succeeded and 1 when
# the rollout halts (a failure budget spent) or ends otherwise. A halted rollout stays on the
# control plane: resume or abort it with `tenantctl rollout resume|abort <id>`.
#
# Usage: control-plane-rollout.sh <commit>
# Environment: TENANCY_URL, TENANCY_API_KEY (scope rollouts), ROLLOUT_NAME (default: the commit's
# subject; only its first line is used).
set -euo pipefail

commit="${1:?usage: control-plane-rollout.sh <commit>}"
: "${TENANCY_URL:?TENANCY_URL is not set (the control plane, e.g. https://api.tenancy.example.com)}"
: "${TENANCY_API_KEY:?TENANCY_API_KEY is not set (an API key with the rollouts scope)}"
name="${ROLLOUT_NAME:-$(git log -1 --format=%s "$commit" 2>/dev/null || echo "deploy $commit")}"
name="${name%%$'\n'*}"

exec npx tenantctl rollout start --name "$name" --commit "$commit" --follow
