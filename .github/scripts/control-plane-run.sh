#!/usr/bin/env bash
# Hands stacks to the control plane and follows their runs (docs/deploying.md): POST
# /api/stacks/<stack>/runs for each stack, then GET /api/runs/<id> until every run has ended;
# exit 0 when all succeeded, 1 when any failed (each failure reported with the run's error) or
# did not end in time. The control plane's queue gives each run to a worker of the stack's
# region, inside its hub VPC; this script never touches AWS or Pulumi itself. Used for
# tenant-only changes; program changes go through control-plane-rollout.sh.
#
# Usage: control-plane-run.sh <stack> [<stack> ...]
# Environment: TENANCY_URL (https://api.<domain>), TENANCY_API_KEY (scopes runs and read),
# POLL_SECONDS (default 15), MAX_POLLS (default 480, i.e. 2 hours at 15 s).
set -euo pipefail

[ "$#" -gt 0 ] || { echo "usage: control-plane-run.sh <stack> [<stack> ...]" >&2; exit 2; }
: "${TENANCY_URL:?TENANCY_URL is not set (the control plane, e.g. https://api.tenancy.example.com)}"
: "${TENANCY_API_KEY:?TENANCY_API_KEY is not set (an API key with the runs and read scopes)}"
poll="${POLL_SECONDS:-15}"
max="${MAX_POLLS:-480}"

api() {
  # --fail-with-body: an HTTP error exits non-zero and still prints the control plane's message.
  curl --silent --show-error --fail-with-body --retry 3 --retry-connrefused \
    -H "x-api-key: ${TENANCY_API_KEY}" -H "Accept: application/json" "$@"
}

failed=0
declare -A ids=() last=()
for stack in "$@"; do
  if ! queued=$(api -X POST "${TENANCY_URL%/}/api/stacks/${stack}/runs"); then
    echo "::error title=${stack}: not queued::${queued:-no answer from ${TENANCY_URL}}"
    failed=1
    continue
  fi
  id=$(jq -r '.run.id' <<<"$queued")
  if [ -z "$id" ] || [ "$id" = "null" ]; then
    echo "::error title=${stack}: not queued::unexpected answer: ${queued}"
    failed=1
    continue
  fi
  ids[$stack]="$id"
  echo "run ${id} of ${stack} queued$(jq -r 'if .coalesced then " (joined a queued run)" else "" end' <<<"$queued")"
done

for ((i = 0; i < max && ${#ids[@]} > 0; i++)); do
  for stack in "${!ids[@]}"; do
    id="${ids[$stack]}"
    run=$(api "${TENANCY_URL%/}/api/runs/${id}")
    state=$(jq -r '.run.state' <<<"$run")
    if [ "$state" != "${last[$stack]:-}" ]; then
      echo "run ${id} (${stack}): ${state}"
      last[$stack]="$state"
    fi
    case "$state" in
      succeeded) unset "ids[$stack]" ;;
      failed)
        echo "::error title=${stack}: run ${id} failed::$(jq -r '.run.error // "no error recorded"' <<<"$run")"
        failed=1
        unset "ids[$stack]"
        ;;
      queued | running) ;;
      *)
        echo "::error title=${stack}: run ${id}::unknown state ${state}"
        failed=1
        unset "ids[$stack]"
        ;;
    esac
  done
  [ "${#ids[@]}" -eq 0 ] || sleep "$poll"
done
for stack in "${!ids[@]}"; do
  echo "::error title=${stack}: run ${ids[$stack]}::still ${last[$stack]:-queued} after $((max * poll)) s; follow it with GET /api/runs/${ids[$stack]}"
  failed=1
done
exit "$failed"
