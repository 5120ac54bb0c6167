#!/usr/bin/env node
// The `runproof` command (package.json "bin"; `npx runproof ...` in a clone, `npm start` too).
// Plain JavaScript so that any Node can start it: on a Node older than the one this project pins
// (the `node` devDependency, Node 22, installed into node_modules by `npm install`), it runs
// itself again on the pinned Node; then it loads tsx and the TypeScript entry point,
// src/bin/runproof.ts, in this same process (no extra process between the terminal and the
// command, so Ctrl-C and exit codes are the command's own).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [major, minor] = process.versions.node.split(".").map(Number);

if (major < 22 || (major === 22 && minor < 18)) {
  const pinned = path.join(root, "node_modules", "node", "bin", "node");
  if (!existsSync(pinned)) {
    process.stderr.write(
      `runproof: Node ${process.versions.node} is too old and the pinned Node 22 is not installed\n  hint: run npm install in ${root}\n`,
    );
    process.exit(1);
  }
  // The child has the terminal (stdio inherited, same process group): a Ctrl-C reaches it
  // directly, so this process only waits for it and passes its exit status on.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => {});
  const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(r.status ?? 1);
}

const { register } = await import("tsx/esm/api");
register();
await import(pathToFileURL(path.join(root, "src", "bin", "runproof.ts")).href);
