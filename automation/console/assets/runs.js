// The operator console's Runs page (docs/console.md): follows GET /api/runs/events (server-sent
// events of every run's state changes; the session cookie authenticates it) and, after each burst
// of changes, asks GET /console/runs/tables (the page's tables as the server rendered and escaped
// them) and puts the answer in place: new runs appear, states change, finished runs move to the
// recent table, without a reload. The answer is parsed by DOMParser (its scripts never run).
const live = document.querySelector("#runs-live[data-runs-url]");
if (live) follow(live, live.dataset.runsUrl);

/** A burst of changes (a rollout queueing a wave) is one refresh: changes within this are gathered. */
const GATHER_MS = 200;

function follow(live, url) {
  const status = document.getElementById("runs-stream");
  const source = new EventSource("/api/runs/events");
  let changes = 0;
  let timer;
  let fetching = false;
  let again = false;
  const say = (text) => {
    status.textContent = text;
  };
  const time = () => new Date().toISOString().slice(11, 19);
  const refresh = async () => {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      do {
        again = false;
        let res;
        try {
          res = await fetch(url, { credentials: "same-origin", redirect: "manual", headers: { accept: "text/html" } });
        } catch {
          say("The console could not be reached; the tables may be out of date. Use Refresh.");
          return;
        }
        // A redirect is the login page's: the session ended.
        if (res.type === "opaqueredirect") {
          source.close();
          say("Your console session ended; refresh the page to log in again.");
          return;
        }
        const parsed = new DOMParser().parseFromString(await res.text(), "text/html").body;
        live.replaceChildren(...parsed.childNodes);
        if (res.status === 200) say(`Following the queue live: updated ${time()} UTC, ${changes} run change(s) since the page opened.`);
      } while (again);
    } finally {
      fetching = false;
      document.body.dataset.runsRefreshed = String(Number(document.body.dataset.runsRefreshed ?? 0) + 1);
    }
  };
  const schedule = () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void refresh();
    }, GATHER_MS);
  };
  // Opened (or opened again after a drop): whatever changed before it is read once.
  source.addEventListener("open", schedule);
  source.addEventListener("run", () => {
    changes++;
    schedule();
  });
  source.addEventListener("resync", schedule);
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) say("Live updates stopped (the event stream closed); use Refresh.");
    else say("Live updates interrupted; reconnecting…");
  });
}
