#!/usr/bin/env node
// Read a ticker channel's Redis stream from the beginning (or --from ID) with XREAD and
// print one JSON line per event: {"id","type","uri","reason","headline","version"}.
// docs/streams.md in the ticker repository is the contract this reads against.
//
//   node reader.mjs --url redis://localhost:6379/0 --channel en --count 10
//   node reader.mjs --url redis://localhost:6379/0 --key 'ticker:{en}:events' --timeout 0
//
// Exits after --count events (0: never) or --timeout seconds (0: never); status 1 when the
// timeout came before --count events did. An entry of an unknown schema version (`v`) is
// skipped with a warning on stderr, never a crash: the contract only ever adds fields.
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { createClient } from "redis";

export const SCHEMA_VERSIONS = new Set(["1"]);

export function streamKey(channel, prefix = "ticker") {
  return `${prefix}:{${channel}}:events`;
}

// One stream entry as {id, type, uri, reason, item}, or null when this reader cannot read it.
export function decode(id, fields) {
  if (!SCHEMA_VERSIONS.has(fields.v)) {
    console.error(`skipping entry ${id}: unknown schema version v=${JSON.stringify(fields.v)}`);
    return null;
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
  return { id, type: fields.type, uri: fields.uri, reason: fields.reason || null, item };
}

// Options for createClient: redis://, rediss://, or unix:///path/to/redis.sock?db=N.
export function clientOptions(url) {
  if (!url.startsWith("unix:")) return { url };
  const u = new URL(url);
  return { socket: { path: decodeURIComponent(u.pathname) },
           database: Number(u.searchParams.get("db") ?? 0) };
}

// XREAD's reply as [[id, fields], ...], whichever shape the client gives (RESP2 or RESP3).
function entriesOf(reply) {
  if (!reply) return [];
  const streams = Array.isArray(reply) ? reply : Object.values(reply);
  const out = [];
  for (const stream of streams) {
    for (const m of stream.messages ?? stream) {
      if (m) out.push(Array.isArray(m) ? [m[0], m[1]] : [m.id, m.message]);
    }
  }
  return out;
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
      count: { type: "string", default: "0" },
      timeout: { type: "string", default: "30" },
    },
  });
  const key = opt.key ?? streamKey(opt.channel, opt.prefix);
  const want = Number(opt.count);
  const deadline = Number(opt.timeout) > 0 ? Date.now() + Number(opt.timeout) * 1000 : Infinity;
  const client = createClient(clientOptions(opt.url));
  client.on("error", (err) => console.error(`redis: ${err.message}`));
  await client.connect();
  let last = opt.from; // always a concrete ID, never "$": nothing is missed between reads
  let seen = 0;
  try {
    while (want === 0 || seen < want) {
      const left = deadline - Date.now();
      if (left <= 0) return want === 0 ? 0 : 1;
      const block = Math.max(1, Math.min(5000, left));
      const reply = await client.xRead({ key, id: last }, { COUNT: 100, BLOCK: block });
      for (const [id, fields] of entriesOf(reply)) {
        last = id;
        const event = decode(id, fields);
        if (!event) continue;
        const { type, uri, reason, item } = event;
        const line = { id, type, uri, reason, headline: item.headline ?? null,
                       version: item.version ?? null };
        process.stdout.write(JSON.stringify(line) + "\n");
        if (want !== 0 && ++seen >= want) break;
      }
    }
    return 0;
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => { process.exitCode = code; },
    (err) => { console.error(err); process.exitCode = 2; },
  );
}
