/**
 * The web desk at /desk: sign in with a token, post, and act on the channel's items.
 *
 * Deliberate choices (read before "fixing"):
 * - The token lives in sessionStorage (this tab only, gone when it closes) and goes out
 *   only as an `Authorization: Bearer` header, never in a URL or a cookie. With no
 *   cookies there is no ambient credential, so no cross-site request can act as the
 *   editor (no CSRF surface). The page is served under a CSP without 'unsafe-inline'.
 * - Item text is put in with textContent and attributes with setAttribute, never as
 *   markup: a headline is whatever an editor (or another service) typed.
 * - The channel's stream, read with the token (the desk's view: advisories, held and
 *   embargoed items too), says *that* something changed; the desk's views (with authors,
 *   held items, history) are then fetched with the token. EventSource cannot send a
 *   header and a token never goes in a URL, so the stream is read with fetch() and a
 *   small SSE reader. A slow poll is the safety net while the stream reconnects.
 * - Advisories (notes for the desk and partners, `"kind": "advisory"`) are never on air:
 *   they have a card of their own, styled as not on air, and the Advisory checkbox posts
 *   one (the button says so).
 * - Newer API features (issue #14: the queue endpoint, pins, stories, relative
 *   embargoes, reach) are used when the service has them: the Waiting list falls back
 *   to the held and embargoed items of the recent history when /queue answers 404, and
 *   Pin buttons appear (for a chief) only once items carry a `pinned` field.
 * - A post carries an Idempotency-Key made once per submission of a form's content, so
 *   a double click or a retry after a network error posts once.
 * - Every change says which version it was made from (`If-Match: "v3"`, the version the
 *   desk showed): a change someone else overtook is refused (409 `stale`), never saved
 *   over theirs. A correction then shows the newer text beside the draft to choose from.
 * - Embargo times go to the service as typed (30m, 18:30, a date): it reads them in the
 *   channel's time zone (ticker/when.py), the same rule as the CLI.
 * - Sign-off (ticker/signoff.py): a contributor posts, and its items wait in the Waiting
 *   list marked "needs sign-off" until an editor approves or rejects them. The buttons
 *   follow the service's rules (a contributor's own waiting items: Correct, Withdraw),
 *   which the service enforces whatever the page shows.
 * - The form names the edition it posts to, a switch of edition with a draft typed asks
 *   first (in the page, as every desk dialog: an arrow key on the focused select switches
 *   at once), and a
 *   headline in a script the edition's language is not written in is posted only on a
 *   second click ("Post to ar anyway"), after a warning that says why.
 * - A post refused as a duplicate (409 `duplicate`: the same headline was just posted on
 *   this edition) shows that item and a "Post anyway" button, which sends the form's
 *   content again with `force`, as a new submission. Any edit, or another edition, takes
 *   the button away: it only ever posts what was shown to be a duplicate.
 */

import { isRtlLanguage, safeHref } from "/widget.js";
import { scriptMismatch } from "/static/writing.js";

const TOKEN_KEY = "ticker.desk.token";
const CHANNEL_KEY = "ticker.desk.channel";
const HEADLINE_MAX = 280; // models.HEADLINE_MAX
const URGENCY_MAX = 9; // models.URGENCY_MAX
const HISTORY_LIMIT = 50;
// Events come in bursts (a reset, a push-out with its new item): one refresh for them all.
const REFRESH_DEBOUNCE_MS = 120;
// A safety net for changes missed while the stream reconnects; they arrive as events.
const POLL_MS = 15_000;
// The stream's reconnection delay when the service sends no `retry:` (ms).
const STREAM_RETRY_MS = 3_000;
const WRITE_ROLES = new Set(["contributor", "editor", "chief"]); // may post
const EDIT_ROLES = new Set(["editor", "chief"]); // may act on anyone's items, sign off
// API `details` fields -> the post form's field that shows them.
const FIELD_FOR = {
  headline: "headline", source: "source", urgency: "urgency", regions: "regions",
  categories: "categories", link: "link", ttl: "ttl", expires_at: "ttl",
  embargo: "embargo", embargoed_until: "embargo", story: "story", pinned: "pinned",
  language: "headline", notice: "notice", kind: "advisory",
};

const $ = (id) => document.getElementById(id);
const BOARD_LISTS = ["onair", "waiting", "advisories", "history"];

const state = {
  token: null,
  me: null,
  channel: null,
  canWrite: false,
  canEdit: false,
  isContributor: false,
  isChief: false,
  pins: false, // the API knows `pinned` (#14)
  queue: null, // /queue exists: null (not asked yet), true, false
  source: null, // the channel's stream: an AbortController for its fetch
  generation: 0, // a refresh for an older channel or session is dropped
  refreshTimer: 0,
  pollTimer: 0,
  postKey: null,
  posting: false,
  items: new Map(), // uri -> the newest known version, for the dialogs
  languages: new Map(), // channel -> its language (GET /channels)
  warned: "", // the channel and headline a script warning was shown for
  editing: new Set(), // uris with an open correction form
  audit: { open: false, before: null }, // the Audit view: shown, and its next page
};

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the service answered ${status}`);
    this.status = status;
    this.code = body?.error || "";
    this.details = Array.isArray(body?.details) ? body.details : [];
    this.item = body?.item ?? null; // 409 stale: the item as it is now
  }
}

/** A request with the token; JSON in and out. A 401 ends the session. */
async function api(method, path, { body, idempotencyKey, version, signInAttempt = false } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  if (version) headers["If-Match"] = `"v${version}"`; // the version this change was made from
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, { message: "The service cannot be reached; try again." });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !signInAttempt) {
      signOut(`${lapsed(error) ?? "Your token is no longer accepted (wrong, expired or revoked)."} ` +
        "Sign in again.");
    }
    throw error;
  }
  return data;
}

/** What the service says of an expired token or a rotated-out secret (it names when). */
function lapsed(error) {
  return ["token_expired", "token_rotated"].includes(error.code) ? `${error.message}.` : null;
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain http (not localhost) have no randomUUID; 128 random bits.
  return [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
  node.classList.toggle("warning", kind === "warning");
}

// -- time -----------------------------------------------------------------------------

function span(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

/** A countdown to `iso`, kept current by tick(). */
function countdown(label, iso) {
  const node = el("span", { class: "countdown", "data-until": Date.parse(iso), "data-label": label });
  paintCountdown(node, Date.now());
  return node;
}

function paintCountdown(node, now) {
  const left = Number(node.dataset.until) - now;
  node.textContent = left > 0 ? `${node.dataset.label} ${span(left)}` : `${node.dataset.label} now`;
  return left;
}

function tick() {
  const now = Date.now();
  let due = false;
  for (const node of document.querySelectorAll("[data-until]")) {
    if (paintCountdown(node, now) <= 0 && !node.dataset.due) {
      node.dataset.due = "1";
      due = true;
    }
  }
  if (due) scheduleRefresh(800); // the sweeper acts within about half a second
}

/** "30m", "90", "PT1H" are durations; anything Date can read is a moment (local if no zone). */
function whenField(value, durationName, momentName) {
  const text = value.trim();
  if (!text) return {};
  if (/^(\d+[smhd]?)+$/i.test(text) || /^P/i.test(text)) return { [durationName]: text };
  const moment = Date.parse(text);
  if (/\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(moment)) {
    return { [momentName]: new Date(moment).toISOString() };
  }
  return { [durationName]: text }; // the service says what is wrong with it
}

function slugs(value) {
  return value.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
}

// -- signing in -----------------------------------------------------------------------

async function signIn(token, { remembered = false } = {}) {
  state.token = token;
  const message = $("signin-message");
  say(message, "Checking the token…");
  let me;
  try {
    me = await api("GET", "/whoami", { signInAttempt: true });
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const text = error.status === 401
      ? (lapsed(error) ?? (remembered
        ? "Your token is no longer accepted (expired or revoked). Sign in again."
        : "That token was not accepted: it is wrong, expired or revoked."))
      : `Could not sign in: ${error.message}`;
    say(message, text, "error");
    $("token").setAttribute("aria-invalid", "true");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("token").removeAttribute("aria-invalid");
  say(message, "");
  state.me = me;
  state.canWrite = WRITE_ROLES.has(me.role);
  state.canEdit = EDIT_ROLES.has(me.role);
  state.isContributor = me.role === "contributor";
  state.isChief = me.role === "chief";
  $("who-name").textContent = me.name;
  $("who-role").textContent = me.role;
  $("who-channels").textContent = me.channels.join(", ");
  $("whoami").hidden = false;
  $("signin").hidden = true;
  $("desk").hidden = false;
  $("post-form").hidden = !state.canWrite;
  $("read-only").hidden = state.canWrite;
  $("contributor-note").hidden = !state.isContributor;
  $("audit-card").hidden = !state.canEdit; // an editor's or a chief's
  await loadChannels();
}

function signOut(text = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.generation += 1;
  state.token = null;
  state.me = null;
  state.channel = null;
  state.items.clear();
  state.editing.clear();
  closeStream();
  clearTimeout(state.refreshTimer);
  clearInterval(state.pollTimer);
  for (const id of BOARD_LISTS) $(id).replaceChildren();
  closeAudit();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("whoami").hidden = true;
  $("desk").hidden = true;
  $("signin").hidden = false;
  say($("signin-message"), text, text ? "error" : "");
  $("token").focus();
}

async function loadChannels() {
  const response = await fetch("/channels", { credentials: "omit" });
  const declared = response.ok ? await response.json() : [];
  state.languages = new Map(declared.map((c) => [c.name, c.language]));
  const mine = state.me.channels.includes("*")
    ? declared
    : declared.filter((c) => state.me.channels.includes(c.name));
  const select = $("channel");
  select.replaceChildren(
    ...mine.map((c) => el("option", { value: c.name, lang: c.language }, `${c.name} (${c.language})`)),
  );
  if (!mine.length) {
    say($("board-message"), "This token has no channel this service declares.", "error");
    return;
  }
  const wanted = sessionStorage.getItem(CHANNEL_KEY);
  select.value = mine.some((c) => c.name === wanted) ? wanted : mine[0].name;
  openChannel(select.value);
}

// -- the channel: stream, refresh -------------------------------------------------------

function closeStream() {
  if (state.source) state.source.abort();
  state.source = null;
  say($("connection"), "");
}

/**
 * Read the channel's stream with the token (`Authorization: Bearer`, never in the URL):
 * every event schedules a refresh. Reconnects after the server's `retry:`; a refused
 * token (401) ends the session as any other request does.
 */
async function readStream(channel, generation) {
  const controller = new AbortController();
  state.source = controller;
  let retry = STREAM_RETRY_MS;
  while (generation === state.generation && !controller.signal.aborted) {
    try {
      const response = await fetch(`/channels/${encodeURIComponent(channel)}/events?reach=off`, {
        headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
      if (response.status === 401) {
        const error = new ApiError(401, await response.json().catch(() => null));
        signOut(`${lapsed(error) ?? "Your token is no longer accepted (wrong, expired or revoked)."} Sign in again.`);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`);
      say($("connection"), "Live", "ok");
      scheduleRefresh();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of block.split("\n")) {
            if (line.startsWith("retry:")) retry = Number(line.slice(6)) || retry;
            if (line.startsWith("event:")) scheduleRefresh(); // item, remove, reset
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    if (generation !== state.generation) return;
    say($("connection"), "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

function openChannel(channel) {
  closeStream();
  state.channel = channel;
  state.generation += 1;
  state.items.clear();
  state.editing.clear();
  sessionStorage.setItem(CHANNEL_KEY, channel);
  for (const id of BOARD_LISTS) $(id).replaceChildren();
  closeAudit();
  $("preview").setAttribute("channel", channel);
  warnScript(null);
  showDuplicate(null);
  // The desk's own stream (a token's: never counted in items' reach).
  readStream(channel, state.generation);
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(() => scheduleRefresh(), POLL_MS);
  refresh();
}

function scheduleRefresh(delay = REFRESH_DEBOUNCE_MS) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, delay);
}

async function refresh() {
  if (!state.token || !state.channel) return;
  const generation = state.generation;
  const base = `/channels/${encodeURIComponent(state.channel)}`;
  try {
    const [current, history, queue] = await Promise.all([
      api("GET", `${base}/items`),
      api("GET", `${base}/items?history=true&limit=${HISTORY_LIMIT}`),
      readQueue(base),
    ]);
    if (generation !== state.generation) return;
    render(current.items, queue?.items ?? waitingFromHistory(history.items), history.items,
      current.advisories ?? []);
    $("waiting-note").hidden = queue !== null;
    if (state.audit.open) showAudit(); // a kill or a purge shows up there too
  } catch (error) {
    if (generation === state.generation && error.status !== 401) {
      say($("board-message"), `Could not refresh: ${error.message}`, "error");
    }
  }
}

/** The queue (#14), or null where this service has none. */
async function readQueue(base) {
  if (state.queue === false) return null;
  try {
    const queue = await api("GET", `${base}/queue`);
    state.queue = true;
    return queue;
  } catch (error) {
    if (error.status !== 404) throw error;
    state.queue = false;
    return null;
  }
}

/** Held and embargoed items, from the newest history row of each item. */
function waitingFromHistory(rows) {
  const now = Date.now();
  const newest = new Map();
  for (const row of rows) if (row.uri && !newest.has(row.uri)) newest.set(row.uri, row);
  return [...newest.values()].filter((row) => {
    if (row.status === "canceled" || !(Date.parse(row.expires_at) > now)) return false;
    if (["withheld", "pending", "rejected"].includes(row.status)) return true;
    return Date.parse(row.embargoed_until) > now;
  });
}

// -- the board --------------------------------------------------------------------------

function render(onAir, waiting, history, advisories) {
  state.pins = [...onAir, ...waiting, ...history].some((i) => "pinned" in i);
  state.items.clear();
  for (const item of [...history].reverse()) if (item.headline) state.items.set(item.uri, item);
  for (const item of [...waiting, ...onAir, ...advisories]) state.items.set(item.uri, item);
  const live = new Set(onAir.map((i) => i.uri));
  // An advisory is listed with the advisories only (an older service may queue it).
  const notes = new Set(advisories.map((i) => i.uri));
  const held = new Set([...waiting, ...advisories].map((i) => i.uri));
  const waitingNow = waiting.filter((i) => !live.has(i.uri) && !notes.has(i.uri));
  fill("onair", onAir, (item) => itemRow(item, "onair"));
  fill("waiting", waitingNow, (item) => itemRow(item, "waiting"));
  fill("advisories", advisories, (item) => itemRow(item, "advisories"));
  fill("history", history, (row, index) => historyRow(row, history, index, live, held), "id");
  $("onair-count").textContent = onAir.length ? `(${onAir.length})` : "";
  $("waiting-count").textContent = waitingNow.length ? `(${waitingNow.length})` : "";
  $("advisories-count").textContent = advisories.length ? `(${advisories.length})` : "";
}

/** Put one row per entry in the list, keyed, leaving an open correction form alone. */
function fill(listId, entries, build, key = "uri") {
  const list = $(listId);
  const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
  const wanted = [];
  for (const [index, entry] of entries.entries()) {
    const k = entry[key];
    const old = existing.get(k);
    const fresh = build(entry, index);
    fresh.dataset.key = k;
    const editor = old?.querySelector(".editor");
    if (old && editor) {
      old.querySelector(".summary").replaceWith(fresh.querySelector(".summary"));
      wanted.push(old);
    } else {
      wanted.push(fresh);
    }
  }
  const keep = new Set(wanted);
  for (const node of [...list.children]) if (!keep.has(node)) node.remove();
  wanted.forEach((node, index) => {
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] ?? null);
  });
  $(`${listId}-empty`).hidden = entries.length > 0;
}

function headlineLine(item) {
  const line = el("p", { class: "line" });
  const urgency = Number(item.urgency) || 5;
  line.append(el("span", { class: `urgency u${urgency}`, title: `urgency ${urgency}` }, urgency));
  const lang = typeof item.language === "string" ? item.language : null;
  const dir = lang ? (isRtlLanguage(lang) ? "rtl" : "ltr") : "auto";
  const text = el("span", { class: "text", lang, dir });
  if (item.source) text.append(el("bdi", { class: "source" }, item.source), ": ");
  const href = safeHref(item.link);
  const headline = href
    ? el("a", { class: "headline", href, rel: "noopener noreferrer", target: "_blank" }, item.headline)
    : el("bdi", { class: "headline" }, item.headline);
  text.append(headline);
  line.append(text);
  return line;
}

function reachText(reach) {
  if (typeof reach === "number") return `reach ${reach}`;
  if (reach && typeof reach === "object") {
    const n = reach.readers ?? reach.total ?? reach.count;
    if (typeof n === "number") return `reach ${n}`;
  }
  return null;
}

function meta(...parts) {
  const node = el("p", { class: "meta" });
  parts.filter(Boolean).forEach((part, index) => {
    if (index) node.append(" · ");
    node.append(part);
  });
  return node;
}

function itemRow(item, list) {
  const now = Date.now();
  const embargoed = item.embargoed_until && Date.parse(item.embargoed_until) > now;
  const held = item.status === "withheld";
  const pending = item.status === "pending";
  const rejected = item.status === "rejected";
  const facets = [...(item.regions || []), ...(item.categories || [])].join(", ");
  const summary = el("div", { class: "summary" },
    headlineLine(item),
    meta(
      list === "advisories" ? el("strong", { class: "advisory" }, "advisory · not on air") : null,
      item.pinned ? el("strong", { class: "pin" }, "pinned") : null,
      held ? el("strong", { class: "held" }, "held") : null,
      item.corrected_at ? `corrected ${clock(Date.parse(item.corrected_at))}` : null,
      pending ? el("strong", { class: "signoff" }, "needs sign-off") : null,
      rejected ? el("strong", { class: "rejected" }, "rejected") : null,
      item.author ? `by ${item.author}` : null,
      item.story ? `story ${item.story}` : null,
      facets || null,
      list !== "onair" && embargoed ? countdown("releases in", item.embargoed_until) : null,
      list !== "onair" && held && !embargoed ? `since ${clock(Date.parse(item.updated_at))}` : null,
      item.expires_at ? countdown("expires in", item.expires_at) : null,
      reachText(item.reach),
    ),
    rejected ? el("p", { class: "meta note", dir: "auto" },
      `Rejected by ${item.rejected_by}: ${item.rejection_note}`) : null,
  );
  const buttons = el("div", { class: "buttons" });
  const add = (name, action, cls = "") => {
    const button = el("button", { type: "button", class: cls || null }, name);
    button.addEventListener("click", () => action(item, button));
    buttons.append(button);
  };
  if (state.canEdit && (pending || rejected)) {
    // Waiting for sign-off: no hold, release or pin (the service says 409); approve or not.
    if (pending) {
      add("Approve", approve);
      add("Reject", openReject);
      add("Correct", openEditor);
    }
    add("Kill", confirmKill, "danger");
    if (state.isChief) add("Purge", openPurge, "danger");
  } else if (state.isContributor && item.author === state.me.name && (pending || rejected)) {
    if (pending) add("Correct", openEditor);
    add("Withdraw", confirmKill, "danger"); // its own: a kill
  } else if (state.canEdit) {
    add("Correct", openEditor);
    // Release puts it on air now: the hold and the embargo both go.
    if (held || embargoed) add("Release", (i) => act(i, RELEASE, "Released"));
    if (!held) add("Hold", (i) => act(i, { status: "withheld" }, "Held"));
    if (state.pins && state.isChief && list !== "advisories") { // a chief's; never an advisory
      if (item.pinned) add("Unpin", (i) => act(i, { pinned: false }, "Unpinned"));
      else add("Pin", (i) => act(i, { pinned: true }, "Pinned"));
    }
    add("Kill", confirmKill, "danger");
    if (state.isChief) add("Purge", openPurge, "danger");
  }
  if (buttons.children.length) summary.append(buttons);
  return el("li", { class: `row ${list}`, "data-uri": item.uri }, summary);
}

// -- history: who changed what ----------------------------------------------------------

const COMPARED = ["headline", "source", "urgency", "link", "regions", "categories", "story"];

function shown(value) {
  if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
  if (value === null || value === undefined || value === "") return "none";
  return String(value);
}

function describe(row, older) {
  if (row.event === "remove") {
    const what = { kill: "killed", withhold: "held", expire: "expired", filter: "moved" }[row.reason]
      ?? `removed (${row.reason})`;
    return row.notice ? `${what}, note: “${row.notice}”` : what;
  }
  if (!older) {
    if (row.version > 1) return `changed (version ${row.version})`;
    let text = row.kind === "advisory" ? "posted an advisory" : "posted";
    if (row.status === "withheld") text += ", held";
    if (row.status === "pending") text += ", needs sign-off";
    if (row.embargoed_until) text += `, under embargo until ${clock(Date.parse(row.embargoed_until))}`;
    return text;
  }
  if (older.version === row.version) return "released from embargo";
  if (older.status === "pending" && row.status === "usable" && row.approved_by) return "approved";
  if (older.status === "pending" && row.status === "rejected") return `rejected: “${row.rejection_note}”`;
  const changes = [];
  if (older.status !== row.status) {
    changes.push(row.status === "usable" ? "released" : row.status === "withheld" ? "held" : row.status);
  }
  if (older.pinned !== row.pinned && row.pinned !== undefined) changes.push(row.pinned ? "pinned" : "unpinned");
  for (const field of COMPARED) {
    if (shown(older[field]) !== shown(row[field])) {
      changes.push(`${field}: “${shown(older[field])}” → “${shown(row[field])}”`);
    }
  }
  if (older.expires_at !== row.expires_at) changes.push(`expires ${clock(Date.parse(row.expires_at))}`);
  if ((older.embargoed_until ?? null) !== (row.embargoed_until ?? null)) {
    changes.push(row.embargoed_until ? `embargo moved to ${clock(Date.parse(row.embargoed_until))}` : "embargo lifted");
  }
  const marked = row.corrected_at && row.corrected_at !== older.corrected_at ? " (marked Updated)" : "";
  return changes.length ? `corrected${marked}: ${changes.join("; ")}` : "changed";
}

function historyRow(row, rows, index, live, held) {
  const older = rows.slice(index + 1).find((r) => r.uri === row.uri && r.version !== undefined);
  const at = Number(String(row.id).split("-")[0]);
  const what = describe(row, older);
  const byService = row.event === "remove" && row.reason === "expire" || what === "released from embargo";
  // A sign-off is the approver's (or rejecter's) act; the words stay the author's.
  const by = what === "approved" ? row.approved_by
    : what.startsWith("rejected") ? row.rejected_by : row.author;
  const summary = el("div", { class: "summary" },
    meta(
      el("time", { datetime: new Date(at).toISOString() }, clock(at)),
      byService ? "the service" : el("strong", {}, by || "someone"),
      el("span", { class: "what" }, what),
    ),
  );
  if (row.headline) summary.append(headlineLine(row));
  const newest = rows.findIndex((r) => r.uri === row.uri) === index;
  if (state.canEdit && newest && !live.has(row.uri) && !held.has(row.uri)) {
    // Off the air, but its text is still in the public history: a kill takes it out.
    const buttons = el("div", { class: "buttons" });
    if (row.status !== "canceled" && row.headline) {
      const kill = el("button", { type: "button", class: "danger" }, "Kill");
      kill.addEventListener("click", () => confirmKill(row, kill));
      buttons.append(kill);
    }
    if (state.isChief && row.headline) {
      const purge = el("button", { type: "button", class: "danger" }, "Purge");
      purge.addEventListener("click", () => openPurge(row, purge));
      buttons.append(purge);
    }
    if (buttons.children.length) summary.append(buttons);
  }
  return el("li", { class: `row history ${row.event}`, "data-uri": row.uri }, summary);
}

// -- actions ----------------------------------------------------------------------------

function itemPath(item) {
  return `/channels/${encodeURIComponent(state.channel)}/items/${encodeURIComponent(item.uri)}`;
}

const RELEASE = { status: "usable", embargoed_until: null };

/** What a refused change says: for a stale one, who changed the item to what. */
function refusal(item, error) {
  if (error.code !== "stale" || !error.item) return `${item.headline}: ${error.message}`;
  const now = error.item;
  return `Not done: ${now.author} changed it meanwhile (version ${now.version}, now “${now.headline}”, ${now.status}). Look again.`;
}

async function act(item, patch, done) {
  const message = $("board-message");
  try {
    const updated = await api("PATCH", itemPath(item), { body: patch, version: item.version });
    if (updated.changed === false) say(message, `Nothing to do, already so: ${updated.headline}`, "ok");
    else say(message, `${done}: ${updated.headline}`, "ok");
  } catch (error) {
    if (error.status !== 401) say(message, refusal(item, error), "error");
  }
  refresh();
}

function confirmKill(item) {
  const dialog = $("kill-dialog");
  $("kill-headline").textContent = item.headline;
  // #14: a story's item can be killed in every edition at once.
  $("kill-story").hidden = !item.story;
  $("kill-all").checked = false;
  $("kill-notice").value = "";
  dialog.returnValue = "";
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "kill") return;
    const message = $("board-message");
    try {
      const all = item.story && $("kill-all").checked;
      const path = `${itemPath(item)}${all ? "?all_editions=true" : ""}`;
      const notice = $("kill-notice").value.trim();
      const body = notice ? { notice } : undefined; // a note for readers, if any
      const result = await api("DELETE", path, { body, version: item.version });
      if (all) say(message, ...killReport(item, result));
      else say(message, `Killed: ${item.headline}`, "ok");
    } catch (error) {
      if (error.status !== 401) say(message, refusal(item, error), "error");
    }
    refresh();
  }, { once: true });
  dialog.showModal();
}

/** A kill in every edition: which editions were killed, which were not, and why. */
function killReport(item, result) {
  const killed = (result.killed ?? []).map((edition) => edition.channel);
  // First-strong isolates: an Arabic headline must not carry the sentence after it along.
  const done = `Killed in ${killed.join(", ")}: \u2068${item.headline}\u2069`;
  const refused = result.refused ?? [];
  if (!refused.length) return [done, "ok"];
  const why = refused.map((r) => `Not killed in ${r.channel}: ${r.message}.`);
  return [[`${done}.`, ...why].join(" "), "warning"];
}

/** An editor's sign-off: on air now, or at its embargo. */
async function approve(item) {
  const message = $("board-message");
  try {
    const done = await api("POST", `${itemPath(item)}/approve`, { version: item.version });
    say(message, `${done.changed === false ? "Already approved" : "Approved"}: ${done.headline}`, "ok");
  } catch (error) {
    if (error.status !== 401) say(message, refusal(item, error), "error");
  }
  refresh();
}

let rejecting = null;

function openReject(item) {
  rejecting = item;
  $("reject-headline").textContent = item.headline;
  $("reject-note").value = "";
  say($("reject-message"), "");
  $("reject-dialog").showModal();
}

async function submitReject(event) {
  event.preventDefault();
  const item = rejecting;
  if (!item) return;
  try {
    const body = { note: $("reject-note").value };
    await api("POST", `${itemPath(item)}/reject`, { body, version: item.version });
  } catch (error) {
    if (error.status !== 401) say($("reject-message"), error.details[0]?.message ?? error.message, "error");
    return;
  }
  rejecting = null;
  $("reject-dialog").close();
  say($("board-message"), `Rejected: ${item.headline}`, "ok");
  refresh();
}

let purging = null;

function openPurge(item) {
  purging = item;
  $("purge-headline").textContent = item.headline;
  $("purge-reason").value = "";
  say($("purge-message"), "");
  $("purge-dialog").showModal();
}

async function submitPurge(event) {
  event.preventDefault();
  const item = purging;
  if (!item) return;
  try {
    await api("POST", `${itemPath(item)}/purge`, { body: { reason: $("purge-reason").value } });
  } catch (error) {
    if (error.status !== 401) say($("purge-message"), error.details[0]?.message ?? error.message, "error");
    return;
  }
  purging = null;
  $("purge-dialog").close();
  say($("board-message"), `Purged: ${item.uri}`, "ok");
  refresh();
}

// -- the audit: kills, purges and sign-offs, read back ----------------------------------

const AUDIT_LIMIT = 20;

/** The newest page of the channel's audit, or (`more`) the page after those shown. */
async function showAudit({ more = false } = {}) {
  if (!state.token || !state.channel) return;
  const generation = state.generation;
  // A later ask, or a close, makes this answer stale: it must not reopen the view.
  const ask = (state.auditAsk = (state.auditAsk ?? 0) + 1);
  const query = new URLSearchParams({ limit: String(AUDIT_LIMIT) });
  if (more && state.audit.before) query.set("before", state.audit.before);
  let page;
  try {
    page = await api("GET", `/channels/${encodeURIComponent(state.channel)}/audit?${query}`);
  } catch (error) {
    if (generation === state.generation && ask === state.auditAsk && error.status !== 401) {
      say($("audit-message"), `Could not read the audit: ${error.message}`, "error");
    }
    return;
  }
  if (generation !== state.generation || ask !== state.auditAsk) return;
  const list = $("audit");
  const rows = page.records.map(auditRow);
  if (more) list.append(...rows);
  else list.replaceChildren(...rows);
  state.audit = { open: true, before: page.next_before };
  list.hidden = false;
  $("audit-empty").hidden = list.children.length > 0;
  $("audit-more").hidden = !page.next_before;
  $("audit-show").textContent = "Hide the audit";
  $("audit-show").setAttribute("aria-expanded", "true");
  say($("audit-message"), "");
}

function closeAudit() {
  state.auditAsk = (state.auditAsk ?? 0) + 1; // an answer still on its way is dropped
  state.audit = { open: false, before: null };
  $("audit").replaceChildren();
  $("audit").hidden = true;
  $("audit-empty").hidden = true;
  $("audit-more").hidden = true;
  $("audit-show").textContent = "Show the audit";
  $("audit-show").setAttribute("aria-expanded", "false");
  say($("audit-message"), "");
}

const AUDITED = { purge: "purged", kill: "killed", approve: "approved", reject: "rejected" };

/** Who, when, what, which item and why; never the text (the API has none). */
function auditRow(record) {
  const at = Date.parse(record.at);
  const when = Number.isNaN(at)
    ? record.at
    : `${new Date(at).toLocaleDateString([], { dateStyle: "medium" })} ${clock(at)}`;
  return el("li", { class: `row ${record.action}`, "data-uri": record.uri },
    el("div", { class: "summary" },
      meta(
        el("time", { datetime: record.at }, when),
        el("strong", {}, record.by),
        el("span", { class: "what" }, AUDITED[record.action] ?? record.action),
        el("code", {}, record.uri),
      ),
      record.reason ? el("p", { class: "meta reason", dir: "auto" },
        `${record.action === "reject" ? "Note" : "Reason"}: ${record.reason}`) : null,
    ));
}

// -- correcting in place ----------------------------------------------------------------

function editorField(uri, name, label, value, { tag = "input", ...attrs } = {}) {
  const id = `ed-${uri}-${name}`;
  const input = tag === "select"
    ? el("select", { id, name })
    : el("input", { id, name, dir: "auto", autocomplete: "off", ...attrs, value: value ?? "" });
  if (tag === "select") {
    for (let n = 1; n <= URGENCY_MAX; n++) input.append(el("option", { value: n }, n));
    input.value = String(value);
  }
  input.setAttribute("aria-describedby", `${id}-error`);
  return el("div", { class: `field ${name === "headline" || name === "link" ? "wide" : ""}` },
    el("label", { for: id }, label), input, el("p", { id: `${id}-error`, class: "field-error" }));
}

function openEditor(item) {
  const row = document.querySelector(`#onair [data-uri="${CSS.escape(item.uri)}"], #waiting [data-uri="${CSS.escape(item.uri)}"]`);
  if (!row || row.querySelector(".editor")) return;
  const uri = item.uri;
  const embargoed = item.embargoed_until && Date.parse(item.embargoed_until) > Date.now();
  // `started`: the version the form was filled from (what the editor changed is measured
  // against it); `base`: the version the change is sent for (If-Match).
  const draft = { started: item, base: item };
  const form = el("form", { class: "editor", novalidate: true, "aria-label": `Correct ${item.headline}` },
    editorField(uri, "headline", "Headline", item.headline, { maxlength: 400 }),
    editorField(uri, "source", "Source", item.source),
    editorField(uri, "urgency", "Urgency", item.urgency, { tag: "select" }),
    editorField(uri, "regions", "Regions", (item.regions || []).join(", ")),
    editorField(uri, "categories", "Categories", (item.categories || []).join(", ")),
    editorField(uri, "link", "Link", item.link, { type: "url" }),
    editorField(uri, "ttl", "TTL or expires", "", { placeholder: "unchanged" }),
    embargoed ? editorField(uri, "embargo", "Move embargo", "", { placeholder: "unchanged (30m, 18:30 or a time)" }) : null,
    // Unmarked, a fix is silent; marked, readers see "Updated" on the item for a while.
    el("div", { class: "field check wide" },
      el("input", { id: `ed-${uri}-notice`, name: "notice", type: "checkbox", "aria-describedby": `ed-${uri}-notice-error` }),
      el("label", { for: `ed-${uri}-notice` }, "Mark as corrected (readers see “Updated”)"),
      el("p", { id: `ed-${uri}-notice-error`, class: "field-error" })),
    el("div", { class: "stale wide", role: "alert", hidden: true }),
    el("div", { class: "actions wide" },
      el("button", { type: "submit" }, "Save correction"),
      el("button", { type: "button", class: "quiet", "data-cancel": "1" }, "Cancel"),
      el("p", { class: "message", role: "status" })),
  );
  form.querySelector("[data-cancel]").addEventListener("click", () => closeEditor(row, uri));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveCorrection(form, row, draft);
  });
  state.editing.add(uri);
  row.append(form);
  form.querySelector("input").focus();
}

function closeEditor(row, uri) {
  row.querySelector(".editor")?.remove();
  state.editing.delete(uri);
  refresh();
}

/** The fields the editor changed, against the version the correction is made from. */
function correction(form, item) {
  const value = (name) => form.elements[name].value;
  const patch = {};
  if (value("headline") !== item.headline) patch.headline = value("headline");
  const source = value("source").trim();
  if (source !== (item.source ?? "")) patch.source = source || null;
  if (Number(value("urgency")) !== item.urgency) patch.urgency = Number(value("urgency"));
  const link = value("link").trim();
  if (link !== (item.link ?? "")) patch.link = link || null;
  for (const name of ["regions", "categories"]) {
    const list = slugs(value(name));
    if (list.join(",") !== (item[name] || []).join(",")) patch[name] = list;
  }
  Object.assign(patch, whenField(value("ttl"), "ttl", "expires_at"));
  const embargo = form.elements.embargo?.value.trim();
  if (embargo) patch.embargo = embargo; // as typed: the service reads it
  return patch;
}

async function saveCorrection(form, row, draft) {
  const item = draft.base;
  const patch = correction(form, draft.started); // only the fields this editor changed
  const status = form.querySelector(".message");
  for (const node of form.querySelectorAll(".field-error")) say(node, "");
  form.querySelector(".stale").hidden = true;
  if (!Object.keys(patch).length) {
    say(status, "Nothing changed.");
    return;
  }
  if (form.elements.notice.checked) patch.notice = "corrected"; // it marks what changed
  let saved;
  try {
    saved = await api("PATCH", itemPath(item), { body: patch, version: item.version });
  } catch (error) {
    if (error.status === 401) return;
    if (error.code === "stale" && error.item) {
      showNewer(form, row, draft, error.item);
      return;
    }
    let placed = false;
    for (const detail of error.details) {
      const name = FIELD_FOR[String(detail.field).split(".")[0]];
      const target = name && form.querySelector(`#${CSS.escape(`ed-${item.uri}-${name}-error`)}`);
      if (target) {
        say(target, detail.message, "error");
        placed = true;
      }
    }
    if (!placed) say(status, error.message, "error");
    return;
  }
  const what = saved.changed === false
    ? "Nothing to do, already so"
    : patch.notice ? "Corrected, marked Updated" : "Corrected";
  say($("board-message"), `${what}: ${saved.headline}`, "ok");
  closeEditor(row, item.uri);
}

/** Someone corrected the item while this draft was open: their text beside the draft,
 *  and the editor's choice (nothing is saved until then). */
function showNewer(form, row, draft, newer) {
  const box = form.querySelector(".stale");
  const keep = el("button", { type: "button" }, "Keep my draft");
  const take = el("button", { type: "button", class: "quiet" }, "Take the newer text");
  box.replaceChildren(
    el("p", {}, `${newer.author} changed this item while you were editing (now version ${newer.version}).`),
    el("div", { class: "newer" }, el("strong", {}, "Newer"), headlineLine(newer)),
    el("div", { class: "mine" }, el("strong", {}, "Your draft"),
      el("p", { class: "line" }, el("bdi", { dir: "auto" }, form.elements.headline.value))),
    el("div", { class: "buttons" }, keep, take),
  );
  box.hidden = false;
  say(form.querySelector(".message"), "Not saved yet: choose.", "error");
  keep.addEventListener("click", () => {
    draft.base = newer; // this editor's changes, on the newer version (theirs stay)
    saveCorrection(form, row, draft);
  });
  take.addEventListener("click", () => {
    draft.started = draft.base = newer;
    for (const name of ["headline", "source", "link"]) form.elements[name].value = newer[name] ?? "";
    form.elements.urgency.value = String(newer.urgency);
    for (const name of ["regions", "categories"]) form.elements[name].value = (newer[name] || []).join(", ");
    box.hidden = true;
    say(form.querySelector(".message"), "The newer text is in the form: edit it and save, or cancel.");
  });
}

// -- posting ----------------------------------------------------------------------------

function postBody(form) {
  const value = (name) => form.elements[name].value;
  const body = { headline: value("headline"), urgency: Number(value("urgency")) };
  if (value("source").trim()) body.source = value("source").trim();
  const regions = slugs(value("regions"));
  if (regions.length) body.regions = regions;
  const categories = slugs(value("categories"));
  if (categories.length) body.categories = categories;
  if (value("link").trim()) body.link = value("link").trim();
  Object.assign(body, whenField(value("ttl"), "ttl", "expires_at"));
  // As typed (30m, 18:30, a date): the service reads it in the channel's time zone.
  if (value("embargo").trim()) body.embargo = value("embargo").trim();
  if (value("story").trim()) body.story = value("story").trim();
  if (form.elements.pinned.checked) body.pinned = true;
  if (form.elements.advisory.checked) body.kind = "advisory";
  return body;
}

function clearFieldErrors() {
  for (const node of $("post-form").querySelectorAll(".field-error")) say(node, "");
  for (const node of $("post-form").querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

/** A refusal shown at the post form's field `name` (its `err-` line, `aria-invalid`). */
function markField(name, message) {
  say($(`err-${name}`), message, "error");
  $(`f-${name}`).setAttribute("aria-invalid", "true");
}

/** Post the form; `force`: even if its headline was just posted ("Post anyway"). */
async function submitPost(event, { force = false } = {}) {
  event?.preventDefault();
  if (state.posting || !state.channel) return;
  const form = $("post-form");
  const message = $("post-message");
  if (!form.elements.headline.value.trim()) {
    // The second click of a double click lands on the emptied form: nothing to say.
    if (Date.now() - (state.postedAt ?? 0) < 1000) return;
    clearFieldErrors();
    markField("headline", "Write a headline first.");
    return; // not sent: the service would only refuse it (422)
  }
  clearFieldErrors();
  showDuplicate(null);
  if (!scriptChecked(form.elements.headline.value)) return;
  state.postKey ??= newKey();
  state.posting = true;
  $("post").disabled = true;
  say(message, "Posting…");
  try {
    const body = postBody(form);
    if (force) body.force = true;
    const item = await api("POST", `/channels/${encodeURIComponent(state.channel)}/items`, {
      body,
      idempotencyKey: state.postKey,
    });
    state.postKey = null;
    state.postedAt = Date.now();
    form.reset();
    warnScript(null);
    $("f-urgency").value = "5";
    updateCount();
    nameEdition();
    const sent = item.kind === "advisory" ? "Advisory posted (not on air)" : "Posted";
    const waits = item.status === "pending" ? ", waits for sign-off" : "";
    say(message, `${sent}${waits}: ${item.headline}`, "ok");
    refresh();
  } catch (error) {
    if (error.status === 401) return;
    if (error.code === "duplicate" && error.item) showDuplicate(error.item); // Post anyway?
    let placed = false;
    for (const detail of error.details) {
      const name = FIELD_FOR[String(detail.field).split(".")[0]];
      if (!name) continue;
      markField(name, detail.message);
      placed = true;
    }
    if (!placed && error.status === 403 && form.elements.pinned.checked) {
      say($("err-pinned"), error.message, "error"); // #14: only a chief pins
      placed = true;
    }
    const why = error.code === "duplicate" ? "the same headline was just posted." : error.message;
    say(message, placed ? "Not posted: see the fields marked." : `Not posted: ${why}`, "error");
    if (error.status !== 0) state.postKey = null; // refused, nothing written: a fix is a new post
  } finally {
    state.posting = false;
    $("post").disabled = false;
  }
}

/** The item a post would duplicate, and "Post anyway"; with null, neither. */
function showDuplicate(other) {
  const box = $("post-duplicate");
  box.hidden = !other;
  if (!other) {
    box.replaceChildren();
    return;
  }
  const anyway = el("button", { type: "button" }, "Post anyway");
  const age = span(Date.now() - Date.parse(other.created_at));
  box.replaceChildren(
    el("p", {}, `${other.author} posted the same headline ${age} ago (${other.status}):`),
    headlineLine(other),
    el("div", { class: "buttons" }, anyway),
  );
  anyway.addEventListener("click", () => submitPost(null, { force: true }));
}

function updateCount() {
  const length = [...$("f-headline").value.trim()].length;
  const count = $("count-headline");
  count.textContent = `${length}/${HEADLINE_MAX}`;
  count.classList.toggle("over", length > HEADLINE_MAX);
}

// -- the edition: named on the form, asked before a switch, its script checked -----------

function languageName(language) {
  if (!language) return "";
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(language) ?? language;
  } catch {
    return language; // not a tag Intl knows
  }
}

/** The heading and the button name the edition a post goes to. */
function nameEdition() {
  const channel = state.channel ?? "";
  const language = state.languages.get(channel);
  $("compose-title").replaceChildren(`Post to ${channel}`,
    ...(language ? [" ", el("span", { class: "muted" }, `(${languageName(language)})`)] : []));
  const what = $("f-advisory").checked ? "advisory" : "";
  const post = what ? `Post ${what} to ${channel}` : `Post to ${channel}`;
  $("post").textContent = state.warned ? `${post} anyway` : post;
}

/** Show (or, with null, take away) the warning that the headline's script is not the
 * edition's; while it shows, the button posts anyway. */
function warnScript(mismatch, headline = "") {
  const node = $("post-warning");
  state.warned = mismatch ? `${state.channel}\n${headline}` : "";
  node.hidden = !mismatch;
  if (mismatch) {
    const language = state.languages.get(state.channel);
    say(node, `This headline is in ${mismatch.found} script, but ${state.channel} is the ` +
      `${languageName(language)} edition (${mismatch.expected.join(" or ")} script). ` +
      "Check the channel, or post anyway.", "warning");
  } else {
    say(node, "");
  }
  nameEdition();
}

/** May this headline be posted to this edition now? The first try of a headline in a script
 * the edition's language is not written in only warns. */
function scriptChecked(headline) {
  if (state.warned === `${state.channel}\n${headline}`) return true; // "anyway"
  const mismatch = scriptMismatch(headline, state.languages.get(state.channel));
  warnScript(mismatch, headline);
  return !mismatch;
}

function hasDraft() {
  return [...$("post-form").elements].some((field) =>
    field.type === "checkbox" ? field.checked : field.tagName === "INPUT" && field.value.trim() !== "");
}

/** A switch of edition with a draft typed asks first; "no" keeps the edition and the draft. */
function changeChannel(select) {
  const wanted = select.value;
  if (wanted === state.channel) return;
  if (!(state.canWrite && hasDraft())) {
    openChannel(wanted);
    return;
  }
  // Asked in the page, as every desk dialog is; until answered, the edition stays.
  select.value = state.channel;
  const language = languageName(state.languages.get(wanted));
  const dialog = $("switch-dialog");
  $("switch-title").textContent =
    `Switch to the ${wanted} edition${language ? ` (${language})` : ""}?`;
  $("switch-text").textContent =
    `Your draft stays in the form, and Post would send it to ${wanted}.`;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "switch") {
      select.focus();
      return;
    }
    select.value = wanted;
    openChannel(wanted);
  }, { once: true });
  dialog.showModal();
}

// -- start ------------------------------------------------------------------------------

function start() {
  const urgency = $("f-urgency");
  for (let n = 1; n <= URGENCY_MAX; n++) {
    urgency.append(el("option", { value: n }, n === 1 ? "1 (flash)" : n === 5 ? "5 (default)" : n));
  }
  urgency.value = "5";
  $("f-headline").addEventListener("input", () => {
    updateCount();
    if (state.warned) warnScript(null); // another headline: checked again on Post
  });
  $("post-form").addEventListener("input", () => {
    state.postKey = null; // other content: another submission
    showDuplicate(null); // and no longer what was found to be a duplicate
  });
  $("post-form").addEventListener("submit", submitPost);
  $("f-advisory").addEventListener("change", () => nameEdition());
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      say($("signin-message"), "Paste a token first.", "error");
      return;
    }
    signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("channel").addEventListener("change", (event) => changeChannel(event.target));
  $("purge-form").addEventListener("submit", submitPurge);
  $("purge-cancel").addEventListener("click", () => $("purge-dialog").close());
  $("reject-form").addEventListener("submit", submitReject);
  $("reject-cancel").addEventListener("click", () => $("reject-dialog").close());
  $("audit-show").addEventListener("click", () => (state.audit.open ? closeAudit() : showAudit()));
  $("audit-more").addEventListener("click", () => showAudit({ more: true }));
  setInterval(tick, 1000);
  const remembered = sessionStorage.getItem(TOKEN_KEY);
  if (remembered) signIn(remembered, { remembered: true });
}

start();
