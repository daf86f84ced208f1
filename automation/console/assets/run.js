// The operator console's run page (docs/console.md): follows GET /api/runs/:id/events (server-sent
// events; the session cookie authenticates it) and shows the engine's progress resource by
// resource, its messages, and the run's end. Built with DOM nodes and textContent only: no
// event text is ever parsed as HTML.
const table = document.querySelector("table.resources[data-run-id]");
if (table) follow(table.dataset.runId);

function follow(runId) {
  const rows = new Map();
  const tbody = document.getElementById("resources");
  const diagnostics = document.getElementById("diagnostics");
  const streamState = document.getElementById("stream-state");
  const cell = (tr, i, text) => {
    while (tr.cells.length <= i) tr.insertCell();
    tr.cells[i].textContent = text;
  };
  const row = (urn) => {
    let tr = rows.get(urn);
    if (!tr) {
      tr = tbody.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = urn.split("::").pop();
      th.title = urn;
      tr.appendChild(th);
      rows.set(urn, tr);
    }
    return tr;
  };
  let count = 0;
  const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  source.addEventListener("open", () => {
    streamState.textContent = "Following the run live.";
  });
  source.addEventListener("engine", (e) => {
    const { event } = JSON.parse(e.data);
    count++;
    streamState.textContent = `Following the run live: ${count} engine event(s) so far.`;
    const pre = event.resourcePreEvent?.metadata;
    const out = event.resOutputsEvent?.metadata;
    const failed = event.resOpFailedEvent?.metadata;
    if (pre) {
      const tr = row(pre.urn);
      cell(tr, 1, pre.type);
      cell(tr, 2, pre.op);
      cell(tr, 3, "in progress");
    } else if (out) {
      const tr = row(out.urn);
      cell(tr, 1, out.type);
      cell(tr, 2, out.op);
      cell(tr, 3, "done");
    } else if (failed) {
      const tr = row(failed.urn);
      cell(tr, 3, "failed");
    } else if (event.diagnosticEvent) {
      const li = document.createElement("li");
      li.textContent = `${event.diagnosticEvent.severity}: ${event.diagnosticEvent.message.trim()}`;
      diagnostics.appendChild(li);
    } else if (event.summaryEvent) {
      const changes = Object.entries(event.summaryEvent.resourceChanges ?? {}).map(([op, n]) => `${n} ${op}`).join(", ");
      const li = document.createElement("li");
      li.textContent = `summary: ${changes || "no changes"}`;
      diagnostics.appendChild(li);
    }
  });
  source.addEventListener("end", (e) => {
    const { state, error } = JSON.parse(e.data);
    source.close();
    const badge = document.createElement("span");
    badge.className = `badge state-${state}`;
    badge.textContent = state;
    document.getElementById("run-state").replaceChildren(badge);
    document.getElementById("run-error").textContent = error ?? "";
    // A finished run cannot be cancelled any more.
    document.getElementById("cancel-run")?.remove();
    streamState.textContent = `The run ended: ${state} (${count} engine event(s)).`;
    document.body.dataset.runEnded = state;
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) streamState.textContent = "The event stream closed; reload the page to follow the run again.";
  });
}
