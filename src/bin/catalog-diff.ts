// `npm run catalog:diff -- <database url A> <database url B>`: compares the RunProof schemas of two
// databases object by object (src/lib/catalog.ts) and prints the counts and every difference.
// Exit status 0 when they are identical, 1 when not.
import pg from "pg";
import { countByKind, diffSnapshots, snapshot } from "../lib/catalog.ts";

const [urlA, urlB] = process.argv.slice(2);
if (!urlA || !urlB) {
  console.error("usage: npm run catalog:diff -- <database url A> <database url B>");
  process.exit(2);
}

async function take(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await snapshot(client);
  } finally {
    await client.end();
  }
}

const [a, b] = await Promise.all([take(urlA), take(urlB)]);
const ca = countByKind(a);
const cb = countByKind(b);
console.log("kind".padEnd(16), "A".padStart(6), "B".padStart(6));
for (const kind of [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort()) {
  console.log(kind.padEnd(16), String(ca[kind] ?? 0).padStart(6), String(cb[kind] ?? 0).padStart(6));
}
console.log("total".padEnd(16), String(a.size).padStart(6), String(b.size).padStart(6));
const d = diffSnapshots(a, b);
for (const k of d.onlyInA) console.log(`only in A: ${k}`);
for (const k of d.onlyInB) console.log(`only in B: ${k}`);
for (const k of d.changed)
  console.log(
    `differs:   ${k}\n  A: ${a.get(k)?.replace(/\n/g, "\n     ")}\n  B: ${b.get(k)?.replace(/\n/g, "\n     ")}`,
  );
const n = d.onlyInA.length + d.onlyInB.length + d.changed.length;
console.log(n === 0 ? "identical" : `${n} difference(s)`);
process.exit(n === 0 ? 0 : 1);
