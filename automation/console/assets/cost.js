// The operator console's tenant page (docs/console.md): while the cost per month is being
// computed, its section names a URL of its own (GET /console/tenants/:id/cost, the section's
// content as the server rendered and escaped it, 202 while computing). This asks it again, less
// often as time goes by, until the answer is final, and puts it in place of the section's content.
// The answer is parsed by DOMParser (its scripts never run) and nothing else is read from it.
const section = document.querySelector("section[data-cost-url]");
if (section) poll(section, section.dataset.costUrl, 1000, Date.now());

/** Past this, the page stops asking and says so (the server keeps computing; a reload asks again). */
const GIVE_UP_MS = 10 * 60 * 1000;

async function poll(section, url, delay, since) {
  await new Promise((resolve) => setTimeout(resolve, delay));
  const next = Math.min(delay * 1.5, 5000);
  let res;
  try {
    res = await fetch(url, { credentials: "same-origin", redirect: "manual", headers: { accept: "text/html" } });
  } catch {
    return Date.now() - since < GIVE_UP_MS ? poll(section, url, next, since) : end(section, "failed", "The console could not be reached; reload the page to ask again.");
  }
  // A redirect is the login page's: the session ended.
  if (res.type === "opaqueredirect") return end(section, "failed", "Your console session ended; reload the page to log in again.");
  const parsed = new DOMParser().parseFromString(await res.text(), "text/html").body;
  section.replaceChildren(section.querySelector("h2"), ...parsed.childNodes);
  if (res.status !== 202) return end(section, res.status === 200 ? "ready" : "failed");
  if (Date.now() - since < GIVE_UP_MS) return poll(section, url, next, since);
  return end(section, "failed", "Still being computed after ten minutes; reload the page to ask again.");
}

function end(section, state, message) {
  if (message) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = message;
    section.appendChild(p);
  }
  section.removeAttribute("aria-busy");
  section.dataset.costState = state;
}
