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
const localLong = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
const localMillis = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hourCycle: "h23", timeZoneName: "short" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", year: "numeric" });

function localizeTime(element) {
  const at = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(at.getTime())) {
    element.textContent = localFormat.format(at);
    element.title = element.getAttribute("datetime") + " (UTC)";
  }
}

// The same words as the server's `relative_time_text`, in the reader's own time zone.
export function relativeTime(at, now) {
  const ago = now.getTime() - at.getTime();
  if (ago >= 0 && ago < 60_000) return "just now";
  if (ago >= 0 && ago < 3_600_000) return Math.floor(ago / 60_000) + " min ago";
  const midnight = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
  const daysBack = Math.round((midnight(now) - midnight(at)) / 86_400_000);
  const clock = clockFormat.format(at);
  if (daysBack === 0) return "today " + clock;
  if (daysBack === 1) return "yesterday " + clock;
  if (daysBack >= 2 && daysBack <= 6) return weekdayFormat.format(at) + " " + clock;
  if (at.getFullYear() === now.getFullYear()) return dayFormat.format(at) + ", " + clock;
  return dayYearFormat.format(at);
}

// A table time: relative words, the absolute local and UTC times on hover.
function relativizeTime(element, now) {
  const utc = element.getAttribute("datetime");
  const at = new Date(utc);
  if (Number.isNaN(at.getTime())) return;
  element.textContent = relativeTime(at, now);
  element.title = localLong.format(at) + "\n" + utc + " (UTC)";
}

// One query term as the query language prints it (logbook_core::query, `write_patterns`): values
// with spaces, quotes, commas or `*` are quoted, so a clicked value stays one exact term.
export function patternTerm(qualifier, value) {
  const text = String(value);
  const needsQuotes = text === "" || /[\s",*]/u.test(text);
  return qualifier + ":" + (needsQuotes ? '"' + text.replace(/["\\]/g, (character) => "\\" + character) + '"' : text);
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

// A value of a row that narrows the list when clicked (the `narrow` form, web::narrowing).
function narrowButton(term, text, hover) {
  const button = document.createElement("button");
  button.className = "narrow";
  button.setAttribute("form", "narrow");
  button.name = "add";
  button.value = term;
  button.tabIndex = -1;
  if (hover) button.title = hover;
  button.textContent = text;
  return button;
}

function rowOf(event) {
  const tr = document.createElement("tr");
  tr.className = "fresh" + (event.outcome === "failure" ? " failed" : "");
  const timeCell = cell("", "time");
  const time = document.createElement("time");
  time.setAttribute("datetime", event.created_at);
  time.dataset.relative = "";
  relativizeTime(time, new Date());
  timeCell.append(time);
  tr.append(timeCell);
  const actor = cell("", "actor");
  if (event.actor) {
    actor.append(narrowButton(patternTerm("actor", event.actor.id), visible(event.actor.name ?? event.actor.id), visible(event.actor.id)));
  }
  tr.append(actor);
  const action = cell("", "action");
  const actionButton = narrowButton(patternTerm("action", event.action), "");
  const code = document.createElement("code");
  code.textContent = visible(event.action);
  actionButton.append(code);
  action.append(actionButton);
  tr.append(action);
  const message = cell("", "message");
  if (event.outcome === "failure") {
    const badge = document.createElement("span");
    badge.className = "badge failure";
    badge.textContent = "✕ failed";
    message.append(badge, " ");
  }
  const link = document.createElement("a");
  link.className = "row-link";
  // The embedded view's links keep its `/view/{token}` prefix (the body's data-base-path).
  link.href = (document.body.dataset.basePath ?? "") + "/events/" + encodeURIComponent(event.id) + (document.getElementById("events").dataset.eventQuery ?? "");
  link.textContent = visible(event.message);
  message.append(link);
  tr.append(message);
  const ip = cell("", "ip");
  if (event.ip) {
    const isNew = Boolean(event.new_ip || event.new_network);
    const mark = event.new_network ? " · new network" : isNew ? " · new" : "";
    const hover = event.new_network ? "A network this actor was not seen in before" : isNew ? "A new IP address for this actor" : "";
    const button = narrowButton("ip:" + event.ip, event.ip + mark, hover);
    if (isNew) button.classList.add("badge", "new-ip");
    ip.append(button);
    const location = event.location ?? {};
    const place = [location.city, location.country_code].filter(Boolean).join(", ");
    if (place) {
      const shown = document.createElement("span");
      shown.className = "ip-place";
      shown.textContent = " · " + visible(place);
      ip.append(" ", shown);
    }
    if (event.new_country) {
      const badge = document.createElement("span");
      badge.className = "badge new-country";
      badge.title = "A country this actor was not located in before";
      badge.textContent = "new country";
      ip.append(" ", badge);
    }
  }
  tr.append(ip);
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

// Clicking anywhere in a row opens its event, unless the click was on a value (which narrows) or
// selected text.
function openRowsByClick(table) {
  table.addEventListener("click", (event) => {
    if (event.target.closest("a, button, input, select, summary")) return;
    if (String(window.getSelection?.() ?? "") !== "") return;
    const link = event.target.closest("tr")?.querySelector("a.row-link");
    if (!link) return;
    if (event.ctrlKey || event.metaKey) window.open(link.href, "_blank", "noopener");
    else window.location.assign(link.href);
  });
}

// Shift-click on a clickable value excludes it instead of adding it.
function excludeByShiftClick() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("button.narrow");
    if (!button || !event.shiftKey) return;
    const form = document.getElementById("narrow");
    if (!form) return;
    event.preventDefault();
    const url = new URL(form.action);
    url.searchParams.set("q", form.elements.q.value);
    url.searchParams.set("exclude", button.value);
    window.location.assign(url.href);
  });
}

// `/` search, `j`/`k` next and previous event, Enter opens it (a link), Escape goes back.
function keyboardShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target instanceof HTMLElement && (target.isContentEditable || target.matches("input, textarea, select"));
    if (event.key === "Escape") {
      if (typing) { target.blur(); return; }
      const back = document.getElementById("back-to-list");
      if (back) { event.preventDefault(); window.location.assign(back.href); }
      return;
    }
    if (typing) return;
    if (event.key === "/") {
      const search = document.getElementById("q");
      if (!search) return;
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "j" || event.key === "k") {
      const links = [...document.querySelectorAll("#events a.row-link")];
      if (links.length === 0) return;
      event.preventDefault();
      const index = links.indexOf(document.activeElement);
      const next = index === -1 ? 0 : Math.min(links.length - 1, Math.max(0, index + (event.key === "j" ? 1 : -1)));
      links[next].focus();
      links[next].closest("tr").scrollIntoView({ block: "nearest" });
    }
  });
}

// A search that cannot be run: select the bad term in the box, where it can be fixed.
function markTheBadTerm() {
  const search = document.getElementById("q");
  if (!search || search.dataset.errorStart === undefined) return;
  search.focus();
  search.setSelectionRange(Number(search.dataset.errorStart), Number(search.dataset.errorEnd));
}

// Dragging across the timeline's bars narrows `created:` to the bars it covers (from the first
// bar's start to the last one's end); a plain click still follows the bar's link. Like a clicked
// value, the range goes to the server as `add=`, which replaces the search's `created:` term.
export function timelineTerm(first, last) {
  return "created:" + first.dataset.start + ".." + last.dataset.endInclusive;
}

function dragOverTimeline(chart) {
  const form = document.getElementById("narrow");
  const selection = document.getElementById("timeline-selection");
  const bars = [...chart.querySelectorAll(".timeline-bar")];
  if (!form || !selection || bars.length === 0) return;
  const slotWidth = chart.viewBox.baseVal.width / bars.length;
  const barAt = (clientX) => {
    const box = chart.getBoundingClientRect();
    const fraction = Math.min(0.9999, Math.max(0, (clientX - box.left) / box.width));
    return Math.floor(fraction * bars.length);
  };
  let from = null;
  let to = null;
  const draw = () => {
    const [low, high] = from <= to ? [from, to] : [to, from];
    selection.setAttribute("x", String(low * slotWidth));
    selection.setAttribute("width", String((high - low + 1) * slotWidth));
  };
  chart.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    from = to = barAt(event.clientX);
  });
  chart.addEventListener("pointermove", (event) => {
    if (from === null) return;
    to = barAt(event.clientX);
    if (to === from) return;
    // Captured only once the pointer leaves the first bar, so a plain click still reaches the
    // bar's link.
    if (!chart.hasPointerCapture(event.pointerId)) chart.setPointerCapture(event.pointerId);
    draw();
  });
  // A link would otherwise start the browser's own drag and drop instead of a selection.
  chart.addEventListener("dragstart", (event) => event.preventDefault());
  const finish = (event) => {
    if (from === null) return;
    const [low, high] = from <= to ? [from, to] : [to, from];
    from = to = null;
    // One bar is a click: its link (if it has events) does the rest.
    if (event.type !== "pointerup" || low === high) {
      selection.setAttribute("width", "0");
      return;
    }
    const url = new URL(form.action);
    url.searchParams.set("q", form.elements.q.value);
    url.searchParams.set("add", timelineTerm(bars[low], bars[high]));
    window.location.assign(url.href);
  };
  chart.addEventListener("pointerup", finish);
  chart.addEventListener("pointercancel", finish);
  // After a drag the browser also sends a click to where the pointer went up: not a bar's link.
  chart.addEventListener("click", (event) => {
    if (selection.getAttribute("width") !== "0") event.preventDefault();
  });
}

// The event view's copy buttons: the event JSON exactly as the API returns it (held in the
// button's data, never parsed as HTML), and the event's absolute link. Shown only with script.
function copyButtons() {
  const status = document.getElementById("copy-status");
  document.querySelectorAll("button.copy").forEach((button) => {
    const text = () => {
      if (button.dataset.copy !== undefined) return button.dataset.copy;
      const link = document.getElementById(button.dataset.copyLink);
      return link ? link.href : "";
    };
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(text());
        if (status) status.textContent = button.dataset.copy !== undefined ? "Event JSON copied" : "Link copied";
      } catch {
        if (status) status.textContent = "Copying was refused by the browser";
      }
    });
  });
}

function init() {
  const relativize = () => {
    const now = new Date();
    document.querySelectorAll("time[datetime][data-relative]").forEach((time) => relativizeTime(time, now));
  };
  relativize();
  // "just now" must not stay "just now" on a page left open.
  window.setInterval(relativize, 60_000);
  // The event view states the whole local time to the millisecond, with its zone, next to UTC.
  document.querySelectorAll("time[datetime][data-local-long]").forEach((time) => {
    const at = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) time.textContent = localMillis.format(at) + " (your time)";
  });
  copyButtons();
  document.querySelectorAll("time[datetime]:not([data-relative]):not([data-local-long])").forEach(localizeTime);
  const events = document.getElementById("events");
  if (events) openRowsByClick(events);
  const chart = document.getElementById("timeline-chart");
  if (chart) dragOverTimeline(chart);
  excludeByShiftClick();
  keyboardShortcuts();
  markTheBadTerm();
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
