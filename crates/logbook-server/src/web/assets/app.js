// Logbook's one ES module. The page works without it; it adds local times, live updates and a
// loading notice. Event text is only ever set with textContent, never parsed as HTML.

// The same characters the server makes visible (controls, bidi and zero-width characters).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\u2028\u2029\ufeff]/g;

const UNSAFE_ONE = new RegExp(UNSAFE.source);

// A joiner between two visible non-ASCII characters belongs to an emoji or a script; the server
// keeps it too (terminal_text::is_joiner_inside_a_word).
function isJoinerInsideAWord(character, offset, whole) {
  if (character !== "\u200c" && character !== "\u200d") return false;
  const previous = offset > 0 ? String.fromCodePoint(whole.codePointAt(offset - 1)) : "";
  const next = offset + 1 < whole.length ? String.fromCodePoint(whole.codePointAt(offset + 1)) : "";
  const visibleNonAscii = (neighbour) => neighbour !== "" && neighbour.codePointAt(0) > 0x7f && !UNSAFE_ONE.test(neighbour);
  return visibleNonAscii(previous) && visibleNonAscii(next);
}

export function visible(text) {
  return String(text ?? "").replace(UNSAFE, (character, offset, whole) => {
    if (isJoinerInsideAWord(character, offset, whole)) return character;
    switch (character) {
      case "\n": return "\\n";
      case "\r": return "\\r";
      case "\t": return "\\t";
      case "\u001b": return "\\e";
      default: return "\\u{" + character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "}";
    }
  });
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function localizeTime(element) {
  const at = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(at.getTime())) {
    element.textContent = localFormat.format(at);
    element.title = element.getAttribute("datetime") + " (UTC)";
  }
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function rowOf(event) {
  const tr = document.createElement("tr");
  tr.className = "fresh" + (event.outcome === "failure" ? " failed" : "");
  const message = document.createElement("td");
  message.className = "message";
  const link = document.createElement("a");
  // The embedded view's links keep its `/view/{token}` prefix (the body's data-base-path).
  link.href = (document.body.dataset.basePath ?? "") + "/events/" + encodeURIComponent(event.id);
  link.textContent = visible(event.message);
  message.append(link);
  if (event.outcome === "failure") {
    const badge = document.createElement("span");
    badge.className = "badge failure";
    badge.textContent = "failed";
    message.append(" ", badge);
  }
  tr.append(message);
  const ip = cell("", "ip");
  if (event.new_ip && event.ip) {
    const badge = document.createElement("span");
    badge.className = "badge new-ip";
    badge.textContent = event.ip + " · new";
    ip.append(badge);
    // The embedded view has no security page of its own to send people to.
    if (!document.body.dataset.basePath) {
      const review = document.createElement("a");
      review.href = "/security";
      review.className = "unfamiliar";
      review.textContent = "Unfamiliar?";
      ip.append(" ", review);
    }
  } else {
    ip.textContent = event.ip ?? "";
  }
  tr.append(ip);
  const timeCell = document.createElement("td");
  const time = document.createElement("time");
  time.setAttribute("datetime", event.created_at);
  time.textContent = event.created_at;
  localizeTime(time);
  timeCell.append(time);
  tr.append(timeCell);
  const actor = event.actor ? (event.actor.name ?? event.actor.id) : "";
  tr.append(cell(visible(actor), "actor"));
  const action = cell("", "action");
  const code = document.createElement("code");
  code.textContent = visible(event.action);
  action.append(code);
  tr.append(action);
  return tr;
}

function startLive(toggle) {
  const status = document.getElementById("live-status");
  const notice = document.getElementById("new-events");
  const noticeLink = document.getElementById("new-events-link");
  const table = document.getElementById("events");
  const body = table.querySelector("tbody");
  const empty = document.getElementById("empty-state");
  let paused = false;
  let waiting = 0;
  toggle.hidden = false;
  let source = null;
  const onEvent = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    const atTop = window.scrollY < 80;
    if (!paused && atTop) {
      body.prepend(rowOf(event));
      table.hidden = false;
      if (empty) empty.hidden = true;
      while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
    } else {
      waiting += 1;
      noticeLink.textContent = waiting === 1 ? "1 new event: show it" : waiting + " new events: show them";
      notice.hidden = false;
    }
  };
  const connect = () => {
    if (source) return;
    source = new EventSource(toggle.dataset.liveHref);
    source.addEventListener("open", () => { status.textContent = paused ? "Live updates paused" : "Live"; });
    source.addEventListener("error", () => { status.textContent = "Live updates reconnecting…"; });
    source.addEventListener("event", onEvent);
  };
  const disconnect = () => {
    if (!source) return;
    source.close();
    source = null;
  };
  // A page kept in the back/forward cache or in a hidden tab must not hold its connection open:
  // browsers allow six per host, and old pages' streams would stall the next page load.
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", connect);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") disconnect(); else connect();
  });
  connect();
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.setAttribute("aria-pressed", String(paused));
    toggle.textContent = paused ? "Resume live updates" : "Pause live updates";
    status.textContent = paused ? "Live updates paused" : "Live";
  });
}

function init() {
  document.querySelectorAll("time[datetime]").forEach(localizeTime);
  // The event view checks its proof and checkpoint in the browser; that module is loaded only
  // there, from the hashed URL the server puts on the section (web::browser_verification).
  const verification = document.getElementById("browser-verification");
  if (verification && verification.dataset.verifierScript) {
    import(verification.dataset.verifierScript).catch(() => {
      document.getElementById("browser-verification-status").textContent = "Not checked in your browser: the checking script did not load; reload the page.";
    });
  }
  const toggle = document.getElementById("live-toggle");
  if (toggle && typeof EventSource === "function") startLive(toggle);
  const form = document.getElementById("search-form");
  const loading = document.getElementById("loading");
  if (form && loading) form.addEventListener("submit", () => { loading.hidden = false; });
  // Empty filters stay out of the URL, so a shared link holds only what narrows the view.
  if (form) {
    const fields = () => form.querySelectorAll("input[name], select[name]");
    form.addEventListener("submit", () => {
      fields().forEach((field) => { if (field.value === "") field.disabled = true; });
    });
    // Coming back to this page from the cache, its fields must work again.
    window.addEventListener("pageshow", () => { fields().forEach((field) => { field.disabled = false; }); });
  }
}

init();
