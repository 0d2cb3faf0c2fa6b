#!/usr/bin/env node
// Read a ticker channel's Redis stream and print one JSON line per event:
// {"id","type","uri","reason","headline","version","status","embargoed_until","notice","kind"}. No npm dependency: it speaks Redis's
// protocol (RESP2) itself, over TCP, TLS (rediss://) or a unix socket. Copy this file.
// docs/streams.md in the ticker repository is the contract this reads against.
//
// With --group, as one consumer of a consumer group (as clients/python/reader.py does):
//   node reader.mjs --url redis://localhost:6379/0 --channel en --group search --consumer c1
// Each entry goes to one consumer of the group and is acknowledged (XACK) only after it
// was handled. On start the consumer first takes back what it had been given and not
// acknowledged before it stopped (resume), then, each round, entries other consumers left
// pending longer than --min-idle-ms (XAUTOCLAIM: a dead consumer's), then new ones. So
// every entry is handled at least once; an entry's id is unique, for idempotent handlers.
//
// Without --group, a plain XREAD from the beginning (or --from ID), nothing saved:
//   node reader.mjs --url redis://localhost:6379/0 --key 'ticker:{en}:events' --timeout 0
//
// Exits after --count events (0: never) or --timeout seconds (0: never); status 1 when the
// timeout came before --count events did. An entry of an unknown schema version (`v`)
// stops the reader with status 3 and the reason on stderr, not acknowledged: skipping it
// would lose events for good (a kill never applied); it stays pending for an upgraded
// reader. An entry of a known version that does not decode is skipped with a warning.
import net from "node:net";
import os from "node:os";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

export const SCHEMA_VERSIONS = new Set(["1"]);

export function streamKey(channel, prefix = "ticker") {
  return `${prefix}:{${channel}}:events`;
}

// An entry of a schema version this reader cannot read: stop and upgrade.
export class UnknownSchemaError extends Error {}

// On the ticker at `now` (a Date), as docs/streams.md says: a headline (an advisory never
// is), "usable", its embargo absent, null or past, and expires_at in the future. Never
// "withheld", "canceled", "pending" or "rejected" (waiting for, or refused, an editor's
// sign-off): those are the desk's.
export function onAir(item, now) {
  if ((item.kind ?? "headline") === "advisory") return false;
  if (item.status !== "usable" || !item.expires_at) return false;
  if (item.embargoed_until && Date.parse(item.embargoed_until) > now.getTime()) return false;
  return Date.parse(item.expires_at) > now.getTime();
}

// One stream entry as {id, type, uri, reason, item, notice}, or null when it does not
// decode (notice: a kill's note readers were shown, or null);
// throws UnknownSchemaError for a `v` this reader does not know.
export function decode(id, fields) {
  if (!SCHEMA_VERSIONS.has(fields.v)) {
    throw new UnknownSchemaError(
      `entry ${id} has schema version v=${JSON.stringify(fields.v ?? null)}; this reader ` +
      `reads v=${[...SCHEMA_VERSIONS].join(", ")}. Stopped without acknowledging it: ` +
      "upgrade the reader (docs/streams.md)");
  }
  let item;
  try {
    item = JSON.parse(fields.item);
  } catch (err) {
    console.error(`skipping entry ${id}: item is not JSON (${err.message})`);
    return null;
  }
  if (item === null || typeof item !== "object" || !fields.type || !fields.uri) {
    console.error(`skipping entry ${id}: missing type, uri or item`);
    return null;
  }
  // Item and kill entries leave the item's id to the entry ID.
  if (item.id === undefined) item.id = id;
  return { id, type: fields.type, uri: fields.uri, reason: fields.reason || null, item,
           notice: fields.notice || null };
}

// -- a minimal Redis connection (RESP2) ------------------------------------------------

export class RedisError extends Error {}

// One reply from buf at pos: [value, next position], or null while it is incomplete.
// Lengths are bytes: headlines are UTF-8, often not ASCII.
export function parseReply(buf, pos = 0) {
  const end = buf.indexOf("\r\n", pos);
  if (end < 0) return null;
  const kind = String.fromCharCode(buf[pos]);
  const line = buf.toString("utf8", pos + 1, end);
  const next = end + 2;
  if (kind === "+") return [line, next];
  if (kind === "-") return [new RedisError(line), next];
  if (kind === ":") return [Number(line), next];
  if (kind === "$") {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (buf.length < next + n + 2) return null;
    return [buf.toString("utf8", next, next + n), next + n + 2];
  }
  if (kind === "*") {
    const n = Number(line);
    if (n < 0) return [null, next];
    const out = [];
    let at = next;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, at);
      if (!r) return null;
      out.push(r[0]);
      at = r[1];
    }
    return [out, at];
  }
  throw new RedisError(`unexpected reply type ${JSON.stringify(kind)}`);
}

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join("");
}

export class Redis {
  // redis://[user:password@]host:port/db, rediss://... (TLS), unix:///path?db=N.
  static async connect(url) {
    const u = new URL(url);
    let socket;
    if (u.protocol === "unix:") {
      socket = net.createConnection({ path: decodeURIComponent(u.pathname) });
    } else if (u.protocol === "redis:" || u.protocol === "rediss:") {
      const options = { host: u.hostname || "localhost", port: Number(u.port || 6379) };
      socket = u.protocol === "rediss:"
        ? tls.connect({ ...options, servername: options.host })
        : net.createConnection(options);
    } else {
      throw new RedisError(`unsupported Redis URL scheme ${u.protocol}`);
    }
    await new Promise((resolve, reject) => {
      socket.once(u.protocol === "rediss:" ? "secureConnect" : "connect", resolve);
      socket.once("error", reject);
    });
    socket.setNoDelay(true);
    const client = new Redis(socket);
    const password = decodeURIComponent(u.password);
    if (password) {
      const user = decodeURIComponent(u.username);
      await (user ? client.call("AUTH", user, password) : client.call("AUTH", password));
    }
    const db = u.protocol === "unix:" ? u.searchParams.get("db") : u.pathname.slice(1);
    if (db && db !== "0") await client.call("SELECT", db);
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.waiting = []; // replies come in the order the commands went out
    socket.on("data", (chunk) => this.#received(chunk));
    const fail = (err) => {
      for (const w of this.waiting.splice(0)) w.reject(err ?? new RedisError("connection closed"));
    };
    socket.on("error", fail);
    socket.on("close", () => fail());
  }

  #received(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let at = 0;
    for (let r; this.waiting.length && (r = parseReply(this.buffer, at)); at = r[1]) {
      const w = this.waiting.shift();
      if (r[0] instanceof RedisError) w.reject(r[0]);
      else w.resolve(r[0]);
    }
    this.buffer = this.buffer.subarray(at);
  }

  call(...args) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(encode(args));
    });
  }

  close() {
    this.socket.end();
  }
}

// -- reading ---------------------------------------------------------------------------

// [[id, fields | null], ...] from an XREAD/XREADGROUP reply (null: nothing came).
function entriesOf(reply) {
  const out = [];
  for (const [, entries] of reply ?? []) {
    for (const [id, flat] of entries) out.push([id, flat ? fieldsOf(flat) : null]);
  }
  return out;
}

function fieldsOf(flat) {
  const fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

export class GroupReader {
  constructor(client, key, group, consumer,
              { start = "$", count = 100, blockMs = 5000, minIdleMs = 60000 } = {}) {
    Object.assign(this, { client, key, group, consumer, start, count, blockMs, minIdleMs });
    this.resumed = false;
  }

  // XGROUP CREATE ... MKSTREAM; a group that exists already is kept as it is.
  async ensureGroup() {
    try {
      await this.client.call("XGROUP", "CREATE", this.key, this.group, this.start, "MKSTREAM");
    } catch (err) {
      if (!String(err.message).startsWith("BUSYGROUP")) throw err;
    }
  }

  // What this consumer was given and never acknowledged (it stopped, or crashed, before):
  // its own pending entries, read again from the start of its list.
  async resume() {
    const reply = await this.client.call("XREADGROUP", "GROUP", this.group, this.consumer,
      "COUNT", this.count, "STREAMS", this.key, "0");
    const rows = entriesOf(reply);
    if (rows.length === 0) this.resumed = true;
    return rows;
  }

  // Entries another consumer left pending longer than minIdleMs (XAUTOCLAIM).
  async claim() {
    const rows = [];
    let cursor = "0-0";
    do {
      const reply = await this.client.call("XAUTOCLAIM", this.key, this.group, this.consumer,
        this.minIdleMs, cursor, "COUNT", this.count);
      cursor = reply[0];
      // An entry trimmed away meanwhile is null (Redis 6.2) or listed apart (7+).
      for (const entry of reply[1]) if (entry) rows.push([entry[0], entry[1] ? fieldsOf(entry[1]) : null]);
    } while (cursor !== "0-0" && rows.length < this.count);
    return rows;
  }

  // New entries for this consumer; they stay pending until acknowledged.
  async read(blockMs = this.blockMs) {
    const reply = await this.client.call("XREADGROUP", "GROUP", this.group, this.consumer,
      "COUNT", this.count, "BLOCK", Math.max(1, blockMs), "STREAMS", this.key, ">");
    return entriesOf(reply);
  }

  // One round's entries: own unacknowledged first (once), then claimed, then new.
  async next(blockMs = this.blockMs) {
    if (!this.resumed) {
      const rows = await this.resume();
      if (rows.length) return rows;
    }
    const claimed = await this.claim();
    return claimed.length ? claimed : this.read(blockMs);
  }

  ack(id) {
    return this.client.call("XACK", this.key, this.group, id);
  }
}

function show(event) {
  const { id, type, uri, reason, item, notice } = event;
  const line = { id, type, uri, reason, headline: item.headline ?? null,
                 version: item.version ?? null, status: item.status ?? null,
                 embargoed_until: item.embargoed_until ?? null, notice: notice ?? null,
                 // headline or advisory (never on air); null for a purge's notice
                 kind: item.purged ? null : (item.kind ?? "headline") };
  process.stdout.write(JSON.stringify(line) + "\n");
}

export async function main(argv = process.argv.slice(2)) {
  const { values: opt } = parseArgs({
    args: argv,
    options: {
      url: { type: "string", default: process.env.TICKER_REDIS_URL ?? "redis://localhost:6379" },
      key: { type: "string" },
      channel: { type: "string", default: "en" },
      prefix: { type: "string", default: "ticker" },
      from: { type: "string", default: "0-0" },
      group: { type: "string" },
      consumer: { type: "string", default: `${os.hostname()}-${process.pid}` },
      start: { type: "string", default: "$" }, // where a new group starts: $ (new) or 0 (all)
      batch: { type: "string", default: "100" },
      "min-idle-ms": { type: "string", default: "60000" },
      count: { type: "string", default: "0" },
      timeout: { type: "string", default: "30" },
    },
  });
  const key = opt.key ?? streamKey(opt.channel, opt.prefix);
  const want = Number(opt.count);
  const batch = Number(opt.batch);
  const deadline = Number(opt.timeout) > 0 ? Date.now() + Number(opt.timeout) * 1000 : Infinity;
  const client = await Redis.connect(opt.url);
  let seen = 0;
  try {
    if (opt.group) {
      const reader = new GroupReader(client, key, opt.group, opt.consumer,
        { start: opt.start, count: batch, minIdleMs: Number(opt["min-idle-ms"]) });
      await reader.ensureGroup();
      while (want === 0 || seen < want) {
        const left = deadline - Date.now();
        if (left <= 0) return want === 0 ? 0 : 1;
        for (const [id, fields] of await reader.next(Math.min(5000, left))) {
          const event = fields && decode(id, fields);
          if (event) show(event);
          // Acknowledged once handled: stopped mid-batch, the rest stays pending for us.
          await reader.ack(id);
          if (event && want !== 0 && ++seen >= want) break;
        }
      }
      return 0;
    }
    let last = opt.from; // always a concrete ID, never "$": nothing is missed between reads
    while (want === 0 || seen < want) {
      const left = deadline - Date.now();
      if (left <= 0) return want === 0 ? 0 : 1;
      const block = Math.max(1, Math.min(5000, left));
      const reply = await client.call("XREAD", "COUNT", batch, "BLOCK", block,
        "STREAMS", key, last);
      for (const [id, fields] of entriesOf(reply)) {
        last = id;
        const event = fields && decode(id, fields);
        if (!event) continue;
        show(event);
        if (want !== 0 && ++seen >= want) break;
      }
    }
    return 0;
  } finally {
    client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => { process.exitCode = code; },
    (err) => {
      console.error(`error: ${err.message}`);
      process.exitCode = err instanceof UnknownSchemaError ? 3 : 2;
    },
  );
}
