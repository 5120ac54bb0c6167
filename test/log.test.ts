// createLogger: named pino loggers whose lines never carry secrets.
import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import test from "ava";
import { loadConfig } from "../src/lib/config.ts";
import { REPO_ROOT } from "../src/lib/database.ts";
import { createLogger, prettyLogs } from "../src/lib/log.ts";

function capture() {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

test("lines carry the logger name and honour RUNPROOF_LOG_LEVEL", (t) => {
  const { lines, stream } = capture();
  const log = createLogger(loadConfig({ RUNPROOF_LOG_LEVEL: "warn" }), "worker", stream);
  log.info("hidden");
  log.warn({ jobId: 7 }, "shown");
  t.is(lines.length, 1);
  t.like(lines[0], { name: "worker", msg: "shown", jobId: 7, level: 40 });
});

test("secrets in logged objects and errors are redacted", (t) => {
  const { lines, stream } = capture();
  const log = createLogger(loadConfig({}), "skills", stream);
  log.info(
    { headers: { authorization: "Bearer abc", accept: "*/*" }, url: "https://x.test/?api_key=zzz" },
    "request",
  );
  log.error({ err: new Error("connect to postgres://u:pw@db failed") }, "boom");
  t.deepEqual(lines[0].headers, { authorization: "[REDACTED]", accept: "*/*" });
  t.is(lines[0].url, "https://x.test/?api_key=[REDACTED]");
  t.like(lines[1].err, { type: "Error", message: "connect to postgres://u:[REDACTED]@db failed" });
  t.notRegex(JSON.stringify(lines), /abc|zzz|:pw@/);
});

/** What a child process writes to stderr when it logs one line in this format. */
function logLineIn(format: string): string {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "-e",
      `import("./src/lib/log.ts").then(({ createLogger }) => createLogger({ logLevel: "info", logFormat: "${format}" }, "runproof").child({ component: "worker" }).info({ concurrency: 4 }, "worker started"))`,
    ],
    { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stderr;
}

test("human-readable on a terminal (or RUNPROOF_LOG_FORMAT=pretty), JSON lines otherwise (or =json)", (t) => {
  t.true(prettyLogs("auto", true));
  t.false(prettyLogs("auto", false));
  t.false(prettyLogs("json", true));
  t.true(prettyLogs("pretty", false));
  // What a terminal shows: time, level, component and message, the fields on the same line.
  t.regex(
    logLineIn("pretty"),
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker: worker started \{"concurrency":4\}\n$/,
  );
  t.like(JSON.parse(logLineIn("json")), {
    level: 30,
    name: "runproof",
    component: "worker",
    msg: "worker started",
    concurrency: 4,
  });
});
