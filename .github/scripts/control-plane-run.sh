#!/usr/bin/env bash
# Hands one stack to the control plane and follows its run (docs/deploying.md): POST
# /api/stacks/<stack>/runs, then GET /api/runs/<id> until the run succeeds (exit 0) or fails
# (exit 1, with the run's error). The control plane's queue gives the run to a worker of the
# stack's region, inside its hub VPC; this script never touches AWS or Pulumi itself.
#
# Environment: TENANCY_URL (https://api.<domain>), TENANCY_API_KEY (scopes runs and read),
# POLL_SECONDS (default 15), MAX_POLLS (default 480, i.e. 2 hours at 15 s).
set -euo pipefail

stack="${1:?usage: control-plane-run.sh <stack>}"
: "${TENANCY_URL:?TENANCY_URL is not set (the control plane, e.g. https://api.tenancy.example.com)}"
: "${TENANCY_API_KEY:?TENANCY_API_KEY is not set (an API key with the runs and read scopes)}"
poll="${POLL_SECONDS:-15}"
max="${MAX_POLLS:-480}"

api() {
  # --fail-with-body: an HTTP error exits non-zero and still prints the control plane's message.
  curl --silent --show-error --fail-with-body --retry 3 --retry-connrefused \
    -H "x-api-key: ${TENANCY_API_KEY}" -H "Accept: application/json" "$@"
}

if ! queued=$(api -X POST "${TENANCY_URL%/}/api/stacks/${stack}/runs"); then
  echo "::error title=${stack}: not queued::${queued:-no answer from ${TENANCY_URL}}"
  exit 1
fi
id=$(jq -r '.run.id' <<<"$queued")
if [ -z "$id" ] || [ "$id" = "null" ]; then
  echo "::error title=${stack}: not queued::unexpected answer: ${queued}"
  exit 1
fi
echo "run ${id} of ${stack} queued$(jq -r 'if .coalesced then " (joined a queued run)" else "" end' <<<"$queued")"

last=""
for ((i = 0; i < max; i++)); do
  run=$(api "${TENANCY_URL%/}/api/runs/${id}")
  state=$(jq -r '.run.state' <<<"$run")
  if [ "$state" != "$last" ]; then
    echo "run ${id}: ${state}"
    last="$state"
  fi
  case "$state" in
    succeeded) exit 0 ;;
    failed)
      echo "::error title=${stack}: run ${id} failed::$(jq -r '.run.error // "no error recorded"' <<<"$run")"
      exit 1
      ;;
    queued | running) sleep "$poll" ;;
    *)
      echo "::error title=${stack}: run ${id}::unknown state ${state}"
      exit 1
      ;;
  esac
done
echo "::error title=${stack}: run ${id}::still ${last} after $((max * poll)) s; follow it with GET /api/runs/${id}"
exit 1
