// The README's tour, run as written: the `npm start` block starts a real instance, the `export`
// line it prints is pasted into a shell, and every block marked <!-- readme-tour --> runs there in
// order, as a reader in a second terminal would paste them (npx runproof, curl). Then the banner's
// own ready-to-paste examples run the same way. A README or banner that drifts from the product
// fails here.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { REPO_ROOT } from "../src/lib/database.ts";
import { findFreePort } from "../src/lib/embedded.ts";
import { collect, until } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

const MARK = "<!-- readme-tour -->";
const START_MARK = "<!-- readme-tour: start -->";

/** The ```sh blocks that follow a marker in README.md, in order. */
function markedBlocks(readme: string, marker: string): string[] {
  const blocks: string[] = [];
  for (let at = readme.indexOf(marker); at >= 0; at = readme.indexOf(marker, at + 1)) {
    const m = /^\s*```sh\n([\s\S]*?)\n```/.exec(readme.slice(at + marker.length));
    if (!m) throw new Error(`README.md: ${marker} at offset ${at} is not followed by a sh block`);
    blocks.push(m[1]);
  }
  return blocks;
}

/** The banner's ready-to-paste commands: the lines under "Or try it right away:", without comments. */
function bannerCommands(banner: string): string[] {
  const section = banner.split("Or try it right away:")[1]?.split("Ctrl-C stops it.")[0];
  if (!section) throw new Error(`no examples in the banner:\n${banner}`);
  return section
    .replace(/\\\n\s*/g, "") // continuation lines
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

/** Runs a bash script that prints a line `::block N::` before each block; returns each block's output. */
async function runBlocks(
  blocks: string[],
  prelude: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; outputs: string[]; stderr: string }> {
  const script = [
    "set -euo pipefail",
    prelude,
    // A newline first: curl's output does not end with one.
    ...blocks.map((b, i) => `printf '\\n::block ${i}::\\n'\n${b}`),
    "printf '\\n::end::\\n'",
  ].join("\n");
  const child = spawn("bash", ["-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  const parts = output.stdout.split(/\n::block \d+::\n/).slice(1);
  return { code, outputs: parts.map((p) => p.replace(/\n::end::\n$/, "")), stderr: output.stderr };
}

test("the README tour works as written against npm start, and so do the banner's examples", async (t) => {
  const readme = await fs.readFile(path.join(REPO_ROOT, "README.md"), "utf8");
  const [startBlock] = markedBlocks(readme, START_MARK);
  t.is(startBlock, "npm start");
  const blocks = markedBlocks(readme, MARK);
  t.is(blocks.length, 5, "the five steps of the tour");

  const db = await createTestDatabase("readme-tour");
  t.teardown(() => db.drop());
  const port = await findFreePort();
  // The reader's environment, plus where this test's database and port are (the README's
  // "if you changed them"); nothing of the tour's own variables.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    RUNPROOF_PORT: String(port),
    RUNPROOF_LOG_LEVEL: "warn",
    NO_COLOR: "1",
  };
  for (const k of ["RUNPROOF_GRAPHQL_URL", "RUNPROOF_API_KEY", "RUN_ID"]) delete env[k];

  // Terminal 1: the start block, in its own process group (as a terminal runs it).
  const server = spawn("bash", ["-c", startBlock], {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collect(server);
  const exited = new Promise<number | null>((resolve) => server.on("exit", (c) => resolve(c)));
  t.teardown(() => {
    if (server.exitCode === null && server.signalCode === null) process.kill(-server.pid!, "SIGKILL");
  });
  await until(() => /Ctrl-C stops it\./.test(out.stdout) || server.exitCode !== null, 120_000, "the banner");
  const exportLine = /^\s*(export RUNPROOF_GRAPHQL_URL=.*)$/m.exec(out.stdout)?.[1];
  t.truthy(exportLine, out.stdout + out.stderr);
  t.regex(exportLine!, new RegExp(`RUNPROOF_GRAPHQL_URL=http://127\\.0\\.0\\.1:${port}/graphql `));

  // Terminal 2: in the clone (a git-ignored folder of it, so run.json lands there), the export
  // line pasted, then each block.
  await fs.mkdir(path.join(REPO_ROOT, ".data"), { recursive: true });
  const cwd = await fs.mkdtemp(path.join(REPO_ROOT, ".data", "readme-tour-"));
  t.teardown(() => fs.rm(cwd, { recursive: true, force: true }));
  const tour = await runBlocks(blocks, exportLine!, cwd, env);
  t.is(tour.code, 0, `${tour.outputs.join("\n---\n")}\n${tour.stderr}`);
  const [enqueued, waited, graphql, proof, verified] = tour.outputs;

  const runId = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) │ (pending|planned)/.exec(
    enqueued,
  )?.[1];
  t.truthy(runId, enqueued);
  t.regex(waited, new RegExp(`^run ${runId} succeeded after`, "m"));
  t.regex(waited, /^proof: VERIFIED \(HASH_CHAIN\)/m);
  const body = JSON.parse(graphql);
  t.like(body.data.runs.nodes[0], {
    id: runId,
    status: "succeeded",
    goal: "remember colour = blue, wait 200 ms and recall colour",
    proof: { integrityModel: "HASH_CHAIN", verificationStatus: "VERIFIED", chainLength: 3 },
  });
  t.regex(proof, /│ verification status │ VERIFIED /);
  t.regex(proof, new RegExp(`│ run {17}│ ${runId} `));
  t.regex(verified, /VERIFIED/);
  t.true(existsSync(path.join(cwd, "run.json")));
  // run.json is git-ignored where the README has it written: the clone's root.
  t.notThrows(() => execFileSync("git", ["check-ignore", "-q", "run.json"], { cwd: REPO_ROOT }));

  // The banner's examples, pasted as they are (they carry the real URL, key and ids).
  const examples = bannerCommands(out.stdout);
  t.is(examples.length, 4, out.stdout);
  const tried = await runBlocks(examples, "", cwd, env);
  t.is(tried.code, 0, `${tried.outputs.join("\n---\n")}\n${tried.stderr}`);
  t.regex(tried.outputs[0], /│ (pending|planned) /);
  t.regex(JSON.parse(tried.outputs[1]).data.enqueueRun.run.id, /^[0-9a-f-]{36}$/);
  t.true(JSON.parse(tried.outputs[2]).data.runs.nodes.length >= 3);
  t.regex(tried.outputs[3], /^proof: VERIFIED \(HASH_CHAIN\)/m);

  process.kill(-server.pid!, "SIGINT");
  t.is(await exited, 0, out.stderr);
});
