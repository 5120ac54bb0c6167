// createLogger: named pino loggers whose lines never carry secrets.
import test from "ava";
import { Writable } from "node:stream";
import { loadConfig } from "../src/lib/config.ts";
import { createLogger } from "../src/lib/log.ts";

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
