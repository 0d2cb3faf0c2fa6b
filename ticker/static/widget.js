/**
 * <breaking-ticker>: a "BREAKING" bar fed by ticker's server-sent events.
 *
 *   <script type="module" src="https://ticker.example.com/widget.js"></script>
 *   <breaking-ticker src="https://ticker.example.com" channel="en" region="europe"></breaking-ticker>
 *
 * Attributes
 *   src           the ticker service (default: where this file was loaded from)
 *   channel       the edition (default "en")
 *   region, category   comma-separated slugs; an item matches if it has any of them,
 *                      or has none (an item with no regions is for every region)
 *   max-urgency   1-9; only items at least this urgent (1 is the most urgent)
 *   label         the label text (default: "BREAKING" in the channel's language)
 *   lang, dir     override the language and direction learnt from the service
 *
 * Theming: --ticker-bg, --ticker-fg, --ticker-accent, --ticker-label-fg, --ticker-font,
 * --ticker-speed (pixels per second), --ticker-height, --ticker-gap, --ticker-urgent-bg,
 * --ticker-urgent-fg; parts: bar, label, viewport, track, item, urgent, flash, link,
 * source, headline, mark (the "Updated" mark), notice (a kill's note in place of the item),
 * status, pause.
 * States (for `breaking-ticker:state(...)`): connecting, live, reconnecting, empty, paused.
 *
 * Deliberate choices (read before "fixing"):
 * - Text from the feed goes in with textContent and attributes with setAttribute, never
 *   as markup; only http(s) links become <a> (safeHref). The feed is trusted no further.
 * - Items are keyed by uri: an `item` event replaces the text in place, so a replay after
 *   a reconnect can never show an item twice.
 * - The moving strip is aria-hidden. A visually hidden role=log mirrors the items for
 *   screen readers: filled silently with what is on the ticker when the page opens (it is
 *   attached only once that first batch is in, and live regions announce changes, not
 *   their initial content), then each new item is appended once; urgency 1 goes to an
 *   assertive region instead. A correction rewrites its entry in place
 *   (aria-relevant="additions": not meant to be re-announced; a screen reader may still
 *   read it) so the old wording never lingers; a kill or expiry removes the entry.
 * - A keyboard user who tabs into the strip gets it still and exposed (aria-hidden off,
 *   horizontally scrollable) until focus leaves; hover and focus elsewhere only pause it.
 * - `reset` does not blank the bar: items are marked stale and those not re-sent within
 *   RESET_GRACE_MS are dropped, so a resync neither flickers nor re-announces.
 * - The strip is a loop, and every headline gets its full pass: a new item goes right
 *   after the headlines that have come into view, so it is the next one in (within the
 *   time one headline takes to come in, however long the loop), nothing on screen moves,
 *   and each pass starts again newest first. Joining the end of the pass made a new item
 *   wait a whole loop (81 s with 15 items). Only an item of urgency 1-2 interrupts: the
 *   strip starts again with it in view, followed by what was being read. Restarting for
 *   every item would leave nothing but the newest one or two readable at a brisk pace.
 * - Items are also dropped locally at expires_at, so a reader that went offline does not
 *   keep stale headlines. The local clock is corrected only when events prove it is behind
 *   the server's (an item updated "in the future").
 * - A correction marked as one carries corrected_at: the item shows "Updated" until
 *   corrected_at + the channel's correction_mark_s (from /channels), by that same clock,
 *   and the mark leaves by itself. The window is judged here, not by the server, because
 *   frames are encoded once for every reader and every replay. A clock behind the server
 *   is corrected by the item's own updated_at (never earlier than corrected_at), so a mark
 *   never outstays its window; a clock ahead shortens it by the skew (a mark that errs
 *   short is harmless, and the same clock already decides expiry).
 * - A kill with a note (a remove event with `notice`, sent only where the channel shows
 *   kill notices) puts the note in the item's place for one whole pass from where the
 *   reader is (the rest of this pass too if the item is already on screen), then drops it;
 *   the note is announced like a new item. A still strip shows it for NOTICE_STILL_MS.
 */

const TAG = "breaking-ticker";
// Denial-of-service guards: whatever the feed sends, the bar and the log stay small.
const MAX_ITEMS = 100;
const MAX_LOG_ENTRIES = 100;
// Items of a reset's snapshot arrive in one burst; stale ones go after this long.
const RESET_GRACE_MS = 1500;
// The first batch is done when events pause this long after the connection opens.
const SETTLE_MS = 400;
const SETTLE_MAX_MS = 3000;
// A reconnect that succeeds this fast is not worth showing.
const RECONNECTING_DELAY_MS = 1000;
// When the browser gives up (EventSource CLOSED), we retry ourselves with backoff.
const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000, 60000];
const DEFAULT_SPEED = 80; // pixels per second
// Items at least this urgent (1 is the most) interrupt the loop; others come next.
const INTERRUPT_URGENCY = 2;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
// The "Updated" mark's window until /channels says the channel's (its default there too).
const DEFAULT_MARK_MS = 600_000;
// A kill's note on a strip that does not move (reduced motion) stays this long; on a
// moving one, one pass, and at most NOTICE_MAX_MS (a strip paused for good).
const NOTICE_STILL_MS = 15_000;
const NOTICE_MAX_MS = 120_000;
// The feed is trusted no further: a note longer than any the service sends is cut
// (characters as the service counts them: code points).
const NOTICE_MAX_CHARS = 280;

// Languages written right to left (primary subtags), and right-to-left scripts.
const RTL_LANGUAGES = new Set([
  "ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd", "syr", "ug", "ur", "yi", "nqo",
]);
const RTL_SCRIPTS = new Set(["arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "mand", "samr"]);

const LABELS = {
  en: "BREAKING",
  ar: "عاجل",
  es: "ÚLTIMA HORA",
  pt: "ÚLTIMA HORA",
  fr: "DERNIÈRE MINUTE",
  de: "EILMELDUNG",
  it: "ULTIM'ORA",
  he: "מבזק",
  fa: "فوری",
};

const STRINGS = {
  en: { pause: "Pause the ticker", reconnecting: "Reconnecting…", region: "Breaking news", updated: "Updated" },
  ar: { pause: "إيقاف الشريط مؤقتًا", reconnecting: "جارٍ إعادة الاتصال…", region: "أخبار عاجلة", updated: "محدّث" },
  es: { pause: "Pausar el teletipo", reconnecting: "Reconectando…", region: "Última hora", updated: "Actualizado" },
};

/** The primary language subtag, lowercased: "es-419" -> "es". */
function primary(tag) {
  return String(tag || "").toLowerCase().split(/[-_]/)[0];
}

/** Is this BCP 47 tag written right to left? A script subtag wins over the language. */
export function isRtlLanguage(tag) {
  if (typeof tag !== "string" || !tag) return false;
  const parts = tag.toLowerCase().split(/[-_]/);
  const script = parts.slice(1).find((p) => /^[a-z]{4}$/.test(p));
  if (script) return RTL_SCRIPTS.has(script);
  return RTL_LANGUAGES.has(parts[0]);
}

/** The link as an href if it is an absolute http(s) URL, else null (plain text). */
export function safeHref(value) {
  if (typeof value !== "string" || !value || value.length > 2048) return null;
  let url;
  try {
    url = new URL(value); // no base: relative and scheme-less values are refused
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

/** Until when (ms, the server's clock) a corrected item carries the "Updated" mark; 0:
 * never (not a marked correction, or the channel shows no marks). */
export function markUntil(item, windowMs) {
  if (!item || !(item.corrected > 0) || !(windowMs > 0)) return 0;
  return item.corrected + windowMs;
}

/** A remove event's note for readers: one line of text, cut to NOTICE_MAX_CHARS; else null. */
export function readNotice(data) {
  if (!data || typeof data !== "object" || data.reason !== "kill") return null;
  const { notice } = data;
  if (typeof notice !== "string") return null;
  const line = notice.replace(/[\r\n\u2028\u2029]+/g, " ").trim();
  return line ? Array.from(line).slice(0, NOTICE_MAX_CHARS).join("") : null; // code points
}

/** The label for a language: "BREAKING" in it, or in English. */
export function labelFor(language) {
  return LABELS[primary(language)] ?? LABELS.en;
}

function slugList(value) {
  return (value || "").split(",").map((s) => s.trim()).filter(Boolean);
}

function urgencyLimit(value) {
  const n = Number.parseInt(value ?? "", 10);
  return n >= 1 && n <= 9 ? n : 9;
}

/** The service's base URL, always ending in "/", so a path prefix is kept. */
function serviceBase(src) {
  const base = new URL(src || new URL(".", import.meta.url).href, document.baseURI);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  return base;
}

/** The SSE URL for a channel and the reader's filter. */
export function eventsUrl(src, channel, { region, category, maxUrgency, lastEventId, reach } = {}) {
  const url = new URL(`channels/${encodeURIComponent(channel)}/events`, serviceBase(src));
  const regions = slugList(region);
  const categories = slugList(category);
  if (regions.length) url.searchParams.set("region", regions.join(","));
  if (categories.length) url.searchParams.set("category", categories.join(","));
  if (urgencyLimit(maxUrgency) < 9) url.searchParams.set("max_urgency", String(urgencyLimit(maxUrgency)));
  // reach="off": this bar is not counted in items' reach (the desk's own preview).
  if (reach === "off") url.searchParams.set("reach", "off");
  // Only for our own reconnects; EventSource sends Last-Event-ID itself on its own.
  if (lastEventId) url.searchParams.set("last_event_id", lastEventId);
  return url.href;
}

/** An item event's data, checked and reduced to what the bar needs; null if unusable. */
export function readItem(data) {
  if (!data || typeof data !== "object") return null;
  const { uri, headline } = data;
  if (typeof uri !== "string" || !uri || typeof headline !== "string" || !headline) return null;
  const strings = (v) => (Array.isArray(v) ? v.filter((s) => typeof s === "string") : []);
  const expires = Date.parse(data.expires_at);
  return {
    uri,
    headline,
    source: typeof data.source === "string" && data.source ? data.source : null,
    urgency: Number.isInteger(data.urgency) ? data.urgency : 5,
    language: typeof data.language === "string" ? data.language : "",
    regions: strings(data.regions),
    categories: strings(data.categories),
    link: safeHref(data.link),
    usable: (data.status ?? "usable") === "usable",
    pinned: data.pinned === true,
    version: Number.isInteger(data.version) ? data.version : 0,
    created: Date.parse(data.created_at) || 0,
    updated: Date.parse(data.updated_at) || 0,
    corrected: Date.parse(data.corrected_at) || 0,
    expires: Number.isNaN(expires) ? Infinity : expires,
  };
}

// One look-up of /channels per service, shared by every widget on the page.
const channelLists = new Map();

/** name -> { language, markMs } for each channel the service declares. */
function channelSettings(base) {
  const key = base.href;
  if (!channelLists.has(key)) {
    const request = fetch(new URL("channels", base), { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : []))
      .then((list) => {
        const channels = new Map();
        for (const c of Array.isArray(list) ? list : []) {
          if (c && typeof c.name === "string" && typeof c.language === "string") {
            const mark = Number.isFinite(c.correction_mark_s) && c.correction_mark_s >= 0
              ? c.correction_mark_s * 1000
              : DEFAULT_MARK_MS;
            channels.set(c.name, { language: c.language, markMs: mark });
          }
        }
        return channels;
      })
      .catch(() => new Map());
    channelLists.set(key, request);
  }
  return channelLists.get(key);
}

const CSS = `
:host {
  --_bg: var(--ticker-bg, #141414);
  --_fg: var(--ticker-fg, #f5f5f5);
  --_accent: var(--ticker-accent, #c8102e);
  --_height: var(--ticker-height, 2.75em);
  --_gap: var(--ticker-gap, 1.25em);
  display: block;
  contain: content;
  font: var(--ticker-font, 600 1rem/1.35 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", sans-serif);
  color: var(--_fg);
}
:host([hidden]) { display: none; }
.bar {
  display: flex;
  align-items: stretch;
  min-block-size: var(--_height);
  background: var(--_bg);
  color: var(--_fg);
  overflow: hidden;
  position: relative;
}
.label {
  flex: none;
  display: flex;
  align-items: center;
  padding-inline: 0.75em;
  background: var(--_accent);
  color: var(--ticker-label-fg, #fff);
  font-weight: 800;
  letter-spacing: 0.04em;
  white-space: nowrap;
}
.viewport {
  position: relative;
  flex: 1 1 auto;
  min-inline-size: 0;
  min-block-size: var(--_height);
  overflow: hidden;
}
.track {
  position: absolute;
  inset-block: 0;
  inset-inline-start: 0;
  display: flex;
  align-items: center;
  inline-size: max-content;
  margin: 0;
  padding: 0;
  list-style: none;
  white-space: nowrap;
  will-change: transform;
}
.item {
  display: flex;
  align-items: center;
  block-size: 100%;
  padding-inline: var(--_gap);
}
.item + .item { border-inline-start: 1px solid color-mix(in srgb, var(--_fg) 30%, transparent); }
.item a { color: inherit; text-decoration: none; }
.item a:hover { text-decoration: underline; }
.item a:focus-visible { outline: 2px solid currentColor; outline-offset: 2px; text-decoration: underline; }
.source { font-weight: 800; }
.mark {
  margin-inline-start: 0.5em;
  padding: 0.05em 0.4em;
  border: 1px solid currentColor;
  border-radius: 0.2em;
  font-size: 0.75em;
  font-weight: 700;
  opacity: 0.85;
}
.item.notice .headline { font-style: italic; }
.headline { font-weight: 500; }
.item[data-urgency="2"] .source { color: var(--ticker-urgent-fg, #ff8a8a); }
.item[data-urgency="1"] {
  background: var(--ticker-urgent-bg, color-mix(in srgb, var(--_accent) 70%, #000));
  color: var(--ticker-label-fg, #fff);
}
.item[data-urgency="1"] .headline, .item[data-urgency="2"] .headline { font-weight: 700; }
.status {
  flex: none;
  align-self: center;
  padding-inline: 0.5em;
  font-size: 0.8em;
  font-weight: 500;
  opacity: 0.8;
  white-space: nowrap;
}
.status[hidden] { display: none; }
.reconnecting .track { opacity: 0.6; }
.pause {
  flex: none;
  inline-size: 2.75em;
  min-block-size: 2.75em;
  padding: 0;
  border: 0;
  background: transparent;
  color: inherit;
  cursor: pointer;
  display: grid;
  place-items: center;
}
.pause:focus-visible { outline: 2px solid currentColor; outline-offset: -4px; }
.pause[hidden] { display: none; }
.icon { display: block; inline-size: 0.7em; block-size: 0.8em; border-inline: 0.22em solid currentColor; box-sizing: border-box; }
.pause[aria-pressed="true"] .icon {
  inline-size: 0;
  block-size: 0;
  border-block: 0.42em solid transparent;
  border-inline-start: 0.7em solid currentColor;
  border-inline-end: 0;
}
.static .viewport { overflow-x: auto; scrollbar-width: thin; }
.static .track { position: static; block-size: 100%; }
.sr-only {
  position: absolute;
  inline-size: 1px;
  block-size: 1px;
  margin: -1px;
  padding: 0;
  overflow: hidden;
  clip-path: inset(50%);
  white-space: nowrap;
  border: 0;
}
@media (prefers-reduced-motion: reduce) {
  .viewport { overflow-x: auto; scrollbar-width: thin; }
  .track { position: static; block-size: 100%; }
  .pause { display: none; }
}
@media (max-width: 30em) {
  .label { padding-inline: 0.5em; font-size: 0.85em; }
  .item { padding-inline: 0.75em; }
}
@media (forced-colors: active) {
  .label, .item[data-urgency="1"] { forced-color-adjust: none; background: Highlight; color: HighlightText; }
}
`;

let sharedSheet = null;

function adoptStyles(root) {
  if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
    // A constructed sheet: allowed by a CSP without 'unsafe-inline', and shared by all.
    sharedSheet ??= new CSSStyleSheet();
    if (!sharedSheet.cssRules.length) sharedSheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sharedSheet];
  } else {
    const style = document.createElement("style"); // old browsers only
    style.textContent = CSS;
    root.append(style);
  }
}

function el(tag, attrs = {}) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

export class BreakingTicker extends HTMLElement {
  static observedAttributes = ["src", "channel", "region", "category", "max-urgency", "label", "lang", "dir"];

  #internals = null;
  #bar;
  #label;
  #viewport;
  #track;
  #status;
  #pause;
  #log;
  #alert;

  #source = null; // the EventSource
  #lastEventId = "";
  #backoff = 0;
  #retryTimer = 0;
  #reconnectingTimer = 0;
  #settled = false;
  #settleTimer = 0;
  #settleDeadline = 0;
  #resetTimer = 0;
  #expiryTimer = 0;
  #markTimer = 0;
  #markMs = DEFAULT_MARK_MS; // the channel's correction_mark_s, once /channels answers
  #clockOffset = 0; // server time minus local time, when known to be positive
  #channelLanguage = "";
  #itemLanguage = "";
  #generation = 0; // bumped on every (re)configuration; stale callbacks check it

  #items = new Map(); // uri -> { item, node, entry, stale, marked, notice, armed }
  #animation = null;
  #pass = null; // the running pass: { from, to, duration } (pixels, ms)
  #pinned = false; // the track's order is set for the next pass (an interruption)
  #motionDirty = true;
  #userPaused = false;
  #hovered = false;
  #focused = false;
  #keyboardInTrack = false;
  #reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
  #resizeObserver = null;
  #lastWidth = 0;

  constructor() {
    super();
    try {
      this.#internals = this.attachInternals();
    } catch {
      this.#internals = null; // custom states are a nicety
    }
    const root = this.attachShadow({ mode: "open" });
    adoptStyles(root);

    this.#bar = el("div", { class: "bar", part: "bar", role: "region" });
    this.#label = el("span", { class: "label", part: "label" });
    this.#viewport = el("div", { class: "viewport", part: "viewport" });
    this.#track = el("ul", { class: "track", part: "track", "aria-hidden": "true" });
    this.#status = el("span", { class: "status", part: "status" });
    this.#status.hidden = true;
    this.#pause = el("button", { class: "pause", part: "pause", type: "button", "aria-pressed": "false" });
    this.#pause.append(el("span", { class: "icon", "aria-hidden": "true" }));
    // Attached when the first batch is in (see the module docstring).
    this.#log = el("div", { class: "sr-only", role: "log", "aria-relevant": "additions" });
    this.#alert = el("div", { class: "sr-only", "aria-live": "assertive", "aria-relevant": "additions" });

    this.#viewport.append(this.#track);
    this.#bar.append(this.#label, this.#viewport, this.#status, this.#pause);
    root.append(this.#bar);

    this.#pause.addEventListener("click", () => {
      this.#userPaused = !this.#userPaused;
      this.#applyMotion();
    });
    this.#bar.addEventListener("pointerenter", (e) => {
      if (e.pointerType !== "touch") this.#setHovered(true);
    });
    this.#bar.addEventListener("pointerleave", () => this.#setHovered(false));
    this.#bar.addEventListener("focusin", (e) => this.#onFocusIn(e));
    this.#bar.addEventListener("focusout", (e) => this.#onFocusOut(e));
    this.#onMotionPreference = () => this.#applyMotion(true);
    this.#onVisibility = () => {
      if (document.visibilityState === "visible") {
        this.#expire();
        this.#renewMarks();
      }
    };
  }

  #onMotionPreference;
  #onVisibility;

  connectedCallback() {
    this.#reducedMotion.addEventListener("change", this.#onMotionPreference);
    document.addEventListener("visibilitychange", this.#onVisibility);
    this.#resizeObserver = new ResizeObserver(() => {
      const width = this.#viewport.clientWidth;
      if (Math.abs(width - this.#lastWidth) > 1) {
        this.#lastWidth = width;
        this.#applyMotion(true);
      }
    });
    this.#resizeObserver.observe(this.#viewport);
    this.#configure();
  }

  disconnectedCallback() {
    this.#reducedMotion.removeEventListener("change", this.#onMotionPreference);
    document.removeEventListener("visibilitychange", this.#onVisibility);
    this.#resizeObserver?.disconnect();
    this.#resizeObserver = null;
    this.#teardown();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this.isConnected) return;
    if (name === "label" || name === "lang" || name === "dir") {
      this.#renderChrome();
    } else {
      this.#configure(); // a different feed: start over
    }
  }

  // -- connection ---------------------------------------------------------------------

  #configure() {
    this.#teardown();
    const generation = ++this.#generation;
    this.#setState("connecting", true);
    this.#renderChrome();
    let base;
    try {
      base = serviceBase(this.getAttribute("src"));
    } catch {
      this.#showStatus(true);
      return; // an unusable src: nothing to connect to
    }
    channelSettings(base).then((channels) => {
      if (generation !== this.#generation) return;
      const settings = channels.get(this.#channel);
      this.#channelLanguage = settings?.language ?? "";
      this.#markMs = settings?.markMs ?? DEFAULT_MARK_MS;
      this.#renderChrome();
      this.#renewMarks(true);
    });
    this.#open();
  }

  get #channel() {
    return this.getAttribute("channel") || "en";
  }

  get #filter() {
    return {
      regions: new Set(slugList(this.getAttribute("region"))),
      categories: new Set(slugList(this.getAttribute("category"))),
      maxUrgency: urgencyLimit(this.getAttribute("max-urgency")),
    };
  }

  #open(lastEventId = "") {
    const url = eventsUrl(this.getAttribute("src"), this.#channel, {
      region: this.getAttribute("region"),
      category: this.getAttribute("category"),
      maxUrgency: this.getAttribute("max-urgency"),
      lastEventId,
      reach: this.getAttribute("reach"),
    });
    const source = new EventSource(url);
    this.#source = source;
    source.addEventListener("open", () => this.#onOpen());
    source.addEventListener("item", (e) => this.#onEvent(e, () => this.#onItem(e.data)));
    source.addEventListener("remove", (e) => this.#onEvent(e, () => this.#onRemove(e.data)));
    source.addEventListener("reset", (e) => this.#onEvent(e, () => this.#onReset()));
    source.addEventListener("error", () => this.#onError(source));
  }

  #teardown() {
    this.#generation++;
    this.#source?.close();
    this.#source = null;
    for (const timer of [this.#retryTimer, this.#reconnectingTimer, this.#settleTimer, this.#resetTimer, this.#expiryTimer, this.#markTimer]) {
      clearTimeout(timer);
    }
    this.#reconnectingTimer = 0;
    this.#lastEventId = "";
    this.#backoff = 0;
    this.#settled = false;
    this.#settleDeadline = 0;
    this.#items.clear();
    this.#track.replaceChildren();
    this.#log.replaceChildren();
    this.#alert.replaceChildren();
    this.#log.remove();
    this.#alert.remove();
    this.#animation?.cancel();
    this.#animation = null;
    this.#pass = null;
    this.#itemLanguage = "";
    this.#channelLanguage = "";
    this.#markMs = DEFAULT_MARK_MS;
    this.#showStatus(false);
    for (const state of ["live", "reconnecting", "connecting"]) this.#setState(state, false);
    this.#setState("empty", true);
  }

  #onOpen() {
    this.#backoff = 0;
    this.#connected();
    if (!this.#settled) {
      this.#settleDeadline ||= Date.now() + SETTLE_MAX_MS;
      this.#scheduleSettle();
    }
  }

  #onEvent(event, handle) {
    this.#lastEventId = event.lastEventId; // reset carries an empty id, and clears it
    this.#connected();
    handle();
    if (!this.#settled) this.#scheduleSettle();
  }

  #onError(source) {
    if (source !== this.#source) return;
    this.#setState("live", false);
    this.#setState("reconnecting", true);
    // Shown once the connection has been down a while; failed retries do not push it back.
    this.#reconnectingTimer ||= setTimeout(() => this.#showStatus(true), RECONNECTING_DELAY_MS);
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (an error status, a wrong content type): retry ourselves,
      // resuming from the last event we saw.
      source.close();
      const delay = BACKOFF_MS[Math.min(this.#backoff++, BACKOFF_MS.length - 1)];
      const generation = this.#generation;
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => {
        if (generation === this.#generation) this.#open(this.#lastEventId);
      }, delay * (0.75 + Math.random() / 2));
    }
  }

  #connected() {
    clearTimeout(this.#reconnectingTimer);
    this.#reconnectingTimer = 0;
    this.#showStatus(false);
    this.#setState("reconnecting", false);
    this.#setState("connecting", false);
    if (this.#settled) this.#setState("live", true);
  }

  #scheduleSettle() {
    clearTimeout(this.#settleTimer);
    const wait = Math.max(0, Math.min(SETTLE_MS, this.#settleDeadline - Date.now()));
    this.#settleTimer = setTimeout(() => this.#settle(), wait);
  }

  #settle() {
    if (this.#settled) return;
    this.#settled = true;
    // Attached now, with the first batch already inside: it is read, not announced.
    this.#bar.append(this.#log, this.#alert);
    if (this.#source?.readyState === EventSource.OPEN) this.#setState("live", true);
  }

  // -- events ---------------------------------------------------------------------------

  #onItem(data) {
    let item;
    try {
      item = readItem(JSON.parse(data));
    } catch {
      item = null;
    }
    if (!item) return;
    // updated_at is server time at or before now: if it is ahead of us, our clock is behind.
    if (item.updated) this.#clockOffset = Math.max(this.#clockOffset, item.updated - Date.now());
    const known = this.#items.get(item.uri);
    if (known?.notice) return; // killed: its note has the place until it goes
    if (known && item.version && known.item.version > item.version) return; // older replay
    if (!item.usable || !this.#matches(item) || item.expires <= this.#now()) {
      if (known) this.#drop(item.uri);
      return;
    }
    if (!this.#itemLanguage && item.language) {
      this.#itemLanguage = item.language;
      this.#renderChrome();
    }
    if (known) {
      known.item = item;
      known.stale = false;
      this.#refill(known);
    } else {
      const record = { item, node: el("li"), entry: null, stale: false, marked: this.#marked(item) };
      this.#fill(record.node, item, record.marked);
      this.#items.set(item.uri, record);
      this.#announce(record);
      if (!this.#settled || !this.#running()) {
        this.#order(); // the first batch, or a still strip: newest first, from the start
        this.#applyMotion(true);
      } else if (item.urgency <= INTERRUPT_URGENCY || item.pinned) {
        this.#interrupt(record.node);
      } else {
        this.#queueNext(record.node);
      }
      this.#trim();
    }
    this.#scheduleExpiry();
    this.#scheduleMarks();
  }

  /** Render a record again in place (a correction, a mark that came or went); one that
   * already went by must not shift what is being read. */
  #refill(record) {
    const passed = this.#passed(record.node);
    const width = record.node.getBoundingClientRect().width;
    record.marked = this.#marked(record.item);
    this.#fill(record.node, record.item, record.marked);
    if (record.entry) record.entry.textContent = this.#spoken(record.item, record.marked);
    this.#stretch(passed ? width - record.node.getBoundingClientRect().width : 0);
  }

  #onRemove(data) {
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    const uri = parsed?.uri;
    if (typeof uri !== "string") return;
    const notice = readNotice(parsed);
    const record = this.#items.get(uri);
    if (notice && record && !record.notice) this.#showNotice(record, notice);
    else this.#drop(uri);
  }

  /** A kill's note in the item's place: for one whole pass from where the reader is. */
  #showNotice(record, notice) {
    const { node } = record;
    const passed = this.#passed(node);
    const width = node.getBoundingClientRect().width;
    record.notice = notice;
    record.marked = false;
    // Not yet in view: this pass shows it whole. On screen or gone by: the next one too.
    record.armed = this.#running() && !this.#entered(node);
    const limit = this.#running() ? NOTICE_MAX_MS : NOTICE_STILL_MS;
    record.item = { ...record.item, expires: Math.min(record.item.expires, this.#now() + limit) };
    node.classList.add("notice");
    node.setAttribute("part", "item notice");
    const text = el("bdi", { class: "headline", part: "headline notice" });
    text.textContent = notice;
    node.replaceChildren(text);
    // Announced as news (an addition), not rewritten in place like a correction.
    record.entry?.remove();
    this.#announce(record, notice);
    this.#stretch(passed ? width - node.getBoundingClientRect().width : 0);
    this.#scheduleExpiry();
  }

  /** At the end of a pass: the notes that had it go; the others have the next one. */
  #endPass() {
    for (const [uri, record] of this.#items) {
      if (!record.notice) continue;
      if (record.armed) this.#forget(uri);
      else record.armed = true;
    }
  }

  #onReset() {
    for (const record of this.#items.values()) record.stale = true;
    clearTimeout(this.#resetTimer);
    this.#resetTimer = setTimeout(() => {
      for (const [uri, record] of this.#items) if (record.stale) this.#drop(uri);
    }, RESET_GRACE_MS);
  }

  #matches(item) {
    const { regions, categories, maxUrgency } = this.#filter;
    // An item with no regions (or no categories) is global: every reader gets it.
    if (regions.size && item.regions.length && !item.regions.some((r) => regions.has(r))) {
      return false;
    }
    if (
      categories.size &&
      item.categories.length &&
      !item.categories.some((c) => categories.has(c))
    ) {
      return false;
    }
    return item.urgency <= maxUrgency;
  }

  #now() {
    return Date.now() + this.#clockOffset;
  }

  /** Take an item off the bar and out of the log, and nothing else (no motion). */
  #forget(uri) {
    const record = this.#items.get(uri);
    if (!record) return;
    this.#items.delete(uri);
    record.node.remove();
    record.entry?.remove(); // removals are not announced
    this.#setState("empty", this.#items.size === 0);
  }

  #drop(uri) {
    const record = this.#items.get(uri);
    if (!record) return;
    const passed = this.#passed(record.node);
    const width = record.node.getBoundingClientRect().width;
    this.#forget(uri);
    if (!this.#items.size) this.#applyMotion(true);
    else this.#stretch(passed ? width : 0); // what is being read stays where it is
    this.#scheduleExpiry();
  }

  /** Does this item carry the "Updated" mark now? */
  #marked(item) {
    return markUntil(item, this.#markMs) > this.#now();
  }

  /** The next moment a mark leaves: then it is taken off (no reload needed). */
  #scheduleMarks() {
    clearTimeout(this.#markTimer);
    let next = Infinity;
    for (const record of this.#items.values()) {
      if (record.marked) next = Math.min(next, markUntil(record.item, this.#markMs));
    }
    if (next === Infinity) return;
    const wait = Math.min(Math.max(0, next - this.#now()), MAX_TIMEOUT_MS);
    this.#markTimer = setTimeout(() => this.#renewMarks(), wait);
  }

  /** Render the items whose mark came or went (the window changed, or it ran out);
   * `all`: every marked one too (the bar's language, which the mark is in, may have). */
  #renewMarks(all = false) {
    for (const record of this.#items.values()) {
      const changed = record.marked !== this.#marked(record.item);
      if (!record.notice && (changed || (all && record.marked))) this.#refill(record);
    }
    this.#scheduleMarks();
  }

  #trim() {
    if (this.#items.size <= MAX_ITEMS) return;
    // Pins stay: the oldest unpinned items go first.
    const oldest = [...this.#items.values()].sort(
      (a, b) => a.item.pinned - b.item.pinned || a.item.created - b.item.created,
    );
    for (const record of oldest.slice(0, this.#items.size - MAX_ITEMS)) this.#drop(record.item.uri);
  }

  #scheduleExpiry() {
    clearTimeout(this.#expiryTimer);
    let next = Infinity;
    for (const { item } of this.#items.values()) next = Math.min(next, item.expires);
    if (next === Infinity) return;
    const wait = Math.min(Math.max(0, next - this.#now()), MAX_TIMEOUT_MS);
    this.#expiryTimer = setTimeout(() => this.#expire(), wait);
  }

  #expire() {
    const now = this.#now();
    for (const [uri, record] of this.#items) if (record.item.expires <= now) this.#drop(uri);
    this.#scheduleExpiry();
  }

  // -- rendering --------------------------------------------------------------------------

  #language() {
    const channel = this.#channel;
    return (
      this.getAttribute("lang") ||
      this.#channelLanguage ||
      this.#itemLanguage ||
      (channel in LABELS ? channel : "") || // until /channels answers: "ar" is probably Arabic
      "en"
    );
  }

  #direction() {
    const dir = this.getAttribute("dir");
    if (dir === "rtl" || dir === "ltr") return dir;
    return isRtlLanguage(this.#language()) ? "rtl" : "ltr";
  }

  #renderChrome() {
    const language = this.#language();
    const dir = this.#direction();
    const strings = STRINGS[primary(language)] ?? STRINGS.en;
    const label = this.getAttribute("label") || labelFor(language);
    this.#label.textContent = label;
    this.#bar.setAttribute("lang", language);
    this.#bar.setAttribute("aria-label", strings.region);
    this.#status.textContent = strings.reconnecting;
    this.#pause.setAttribute("aria-label", strings.pause);
    this.#pause.setAttribute("title", strings.pause);
    if (this.#bar.getAttribute("dir") !== dir) {
      this.#bar.setAttribute("dir", dir);
      this.#track.setAttribute("dir", dir);
      this.#applyMotion(true); // the strip now runs the other way
    }
  }

  /** Fill (or refill, for a correction) one item's node: text and attributes only. */
  #fill(node, item, marked = false) {
    node.className = "item";
    node.setAttribute("part", item.urgency === 1 ? "item urgent flash" : item.urgency === 2 ? "item urgent" : "item");
    node.dataset.urgency = String(item.urgency);
    if (item.language) {
      node.setAttribute("lang", item.language);
      node.setAttribute("dir", isRtlLanguage(item.language) ? "rtl" : "ltr");
    } else {
      node.removeAttribute("lang");
      node.removeAttribute("dir");
    }
    const content = item.link ? el("a", { href: item.link, rel: "noopener", target: "_blank", part: "link" }) : el("span");
    if (item.source) {
      const source = el("bdi", { class: "source", part: "source" });
      source.textContent = item.source;
      content.append(source, ": ");
    }
    const headline = el("bdi", { class: "headline", part: "headline" });
    headline.textContent = item.headline;
    content.append(headline);
    if (marked) {
      // In the bar's language (the reader's), whatever the item's; part of the link's text.
      const language = this.#language();
      const mark = el("bdi", { class: "mark", part: "mark", lang: language, dir: isRtlLanguage(language) ? "rtl" : "ltr" });
      mark.textContent = this.#strings().updated;
      content.append(" ", mark);
    }
    node.replaceChildren(content);
  }

  #strings() {
    return STRINGS[primary(this.#language())] ?? STRINGS.en;
  }

  #spoken(item, marked = false) {
    const text = item.source ? `${item.source}: ${item.headline}` : item.headline;
    return marked ? `${text} (${this.#strings().updated})` : text;
  }

  #announce(record, text = this.#spoken(record.item, record.marked)) {
    const { item } = record;
    const entry = el("p");
    if (item.language) entry.setAttribute("lang", item.language);
    entry.textContent = text;
    record.entry = entry;
    const region = item.urgency === 1 && this.#settled ? this.#alert : this.#log;
    region.append(entry);
    while (region.childElementCount > MAX_LOG_ENTRIES) region.firstElementChild.remove();
  }

  /** Pinned first, then newest first, by created_at; nodes are moved only when the order
   * changed. */
  #order() {
    const records = [...this.#items.values()].sort(
      (a, b) =>
        b.item.pinned - a.item.pinned ||
        b.item.created - a.item.created ||
        (a.item.uri < b.item.uri ? -1 : 1),
    );
    const nodes = records.map((r) => r.node);
    const current = this.#track.children;
    if (nodes.length !== current.length || nodes.some((n, i) => current[i] !== n)) {
      this.#track.replaceChildren(...nodes);
    }
    this.#setState("empty", nodes.length === 0);
  }

  // -- motion -----------------------------------------------------------------------------

  #setHovered(value) {
    this.#hovered = value;
    this.#applyMotion();
  }

  #onFocusIn(event) {
    // Focus on a headline pauses the strip; focus on the pause button does not (it is
    // how the strip is started again). Only keyboard focus makes the strip still and
    // reachable: a mouse click on a link must not move the link away from the pointer.
    if (!this.#track.contains(event.target)) return;
    this.#focused = true;
    if (event.target.matches(":focus-visible")) {
      this.#keyboardInTrack = true;
      this.#track.removeAttribute("aria-hidden");
    }
    this.#applyMotion();
  }

  #onFocusOut(event) {
    const next = event.relatedTarget;
    if (!next || !this.#track.contains(next)) {
      this.#focused = false;
      if (this.#keyboardInTrack) {
        this.#keyboardInTrack = false;
        this.#track.setAttribute("aria-hidden", "true");
        this.#motionDirty = true;
      }
    }
    this.#applyMotion();
  }

  #speed() {
    const value = Number.parseFloat(getComputedStyle(this).getPropertyValue("--ticker-speed"));
    return value > 0 ? value : DEFAULT_SPEED;
  }

  /** Run, pause or stop the strip. `restart` starts it again from the edge. */
  #applyMotion(restart = false) {
    if (restart) this.#motionDirty = true;
    const still = this.#reducedMotion.matches || this.#keyboardInTrack;
    const paused = this.#userPaused || this.#hovered || this.#focused;
    this.#pause.setAttribute("aria-pressed", String(this.#userPaused));
    this.#pause.hidden = this.#reducedMotion.matches;
    this.#bar.classList.toggle("static", still);
    this.#setState("paused", paused || still);
    if (still || !this.#items.size || !this.isConnected) {
      this.#animation?.cancel();
      this.#animation = null;
      this.#motionDirty = true;
      return;
    }
    if (this.#motionDirty && (!paused || !this.#animation)) this.#startLoop(true);
    if (paused) this.#animation?.pause();
    else if (this.#animation?.playState === "paused") this.#animation.play();
  }

  /** One pass of the strip, newest first; after a change, it starts in view. */
  #startLoop(inView = false) {
    this.#motionDirty = false;
    this.#animation?.cancel();
    this.#animation = null;
    if (!this.#pinned) this.#order();
    this.#pinned = false;
    const width = this.#viewport.clientWidth;
    const length = this.#track.scrollWidth;
    if (!width || !length) {
      this.#pass = null;
      this.#motionDirty = true;
      return;
    }
    // To just outside the far edge, from the near edge (in view) or from just outside it:
    // right to left for LTR text, left to right for RTL (the track sits at inline start).
    const rtl = this.#rtl();
    const start = inView ? 0 : width;
    this.#run(rtl ? -start : start, rtl ? length : -length);
  }

  /** Animate the track from `from` to `to` (pixels), at the reader's speed. */
  #run(from, to) {
    const paused = this.#animation?.playState === "paused";
    this.#animation?.cancel();
    const duration = Math.max(1, (Math.abs(to - from) / this.#speed()) * 1000);
    const animation = this.#track.animate(
      [{ transform: `translateX(${from}px)` }, { transform: `translateX(${to}px)` }],
      { duration, easing: "linear", fill: "both" },
    );
    if (paused) animation.pause();
    this.#pass = { from, to, duration };
    // One pass at a time, so each pass is measured again (corrections change widths).
    animation.onfinish = () => {
      if (this.#animation !== animation) return;
      this.#endPass();
      if (this.#items.size) this.#startLoop();
      else this.#applyMotion(true);
    };
    this.#animation = animation;
  }

  /** Is a pass under way (running or paused) that an item can join? */
  #running() {
    return Boolean(this.#animation && this.#pass && !this.#motionDirty);
  }

  #rtl() {
    return this.#bar.getAttribute("dir") === "rtl";
  }

  /** Where the track is now (translateX, pixels), or null with no pass. */
  #position() {
    if (!this.#running()) return null;
    const { from, to, duration } = this.#pass;
    const progress = Math.min(1, Math.max(0, Number(this.#animation.currentTime ?? 0) / duration));
    return from + (to - from) * progress;
  }

  /** Has this node gone by (wholly before the viewport's start edge)? */
  #passed(node) {
    if (!this.#running() || !node.isConnected) return false;
    const box = node.getBoundingClientRect();
    const view = this.#viewport.getBoundingClientRect();
    return this.#rtl() ? box.left >= view.right : box.right <= view.left;
  }

  /** Re-aim the pass under way at the track's new end, from where it is now; `shift`:
   * pixels by which the content before the viewport shrank, made up so nothing jumps. */
  #stretch(shift) {
    const position = this.#position();
    if (position === null) return;
    const rtl = this.#rtl();
    const length = this.#track.scrollWidth;
    this.#run(position + (rtl ? -shift : shift), rtl ? length : -length);
  }

  /** Has this node's leading edge come into the viewport (it is on screen, or gone by)? */
  #entered(node) {
    const box = node.getBoundingClientRect();
    const view = this.#viewport.getBoundingClientRect();
    return this.#rtl() ? box.right > view.left : box.left < view.right;
  }

  /** A new item: next in, right after the headlines on screen. Only what is still beyond
   * the far edge moves back, so nothing being read jumps. */
  #queueNext(node) {
    const next = [...this.#track.children].find((n) => !this.#entered(n)) ?? null;
    this.#track.insertBefore(node, next);
    this.#setState("empty", false);
    this.#stretch(0);
  }

  /** An urgent item: shown at once, then the loop goes on from what was being read. */
  #interrupt(node) {
    const nodes = [...this.#track.children];
    const reading = nodes.findIndex((n) => !this.#passed(n));
    const rest = reading < 0 ? nodes : [...nodes.slice(reading), ...nodes.slice(0, reading)];
    this.#track.replaceChildren(node, ...rest);
    this.#setState("empty", false);
    this.#pinned = true;
    this.#applyMotion(true);
  }

  // -- status -------------------------------------------------------------------------------

  #showStatus(visible) {
    this.#status.hidden = !visible;
    this.#bar.classList.toggle("reconnecting", visible);
  }

  #setState(name, on) {
    const states = this.#internals?.states;
    if (!states) return;
    try {
      if (on) states.add(name);
      else states.delete(name);
    } catch {
      // very old implementations only took "--name"
    }
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, BreakingTicker);
