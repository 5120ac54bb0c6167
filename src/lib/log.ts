// One pino logger per component. Logs go to stderr so that commands which print
// data (proof bundles, JSON) on stdout stay pipeable, and every logged object is
// redacted first: a log line must not leak what the ledger refuses to store.
// On a terminal the lines are made human-readable by pino-pretty; otherwise (a pipe,
// a file, a log collector) or with RUNPROOF_LOG_FORMAT=json they are JSON, one a line.
import { pino, type DestinationStream, type Logger } from "pino";
import PinoPretty from "pino-pretty";
import type { Config, LogFormat } from "./config.ts";
import { redact } from "./redact.ts";

export type { Logger };

/** Whether logs written to stderr are made human-readable: "pretty", or "auto" on a terminal. */
export function prettyLogs(format: LogFormat = "auto", isTTY = Boolean(process.stderr.isTTY)): boolean {
  return format === "pretty" || (format === "auto" && isTTY);
}

function stderrDestination(format: LogFormat | undefined): DestinationStream {
  if (!prettyLogs(format)) return pino.destination({ fd: 2, sync: true });
  return PinoPretty({
    destination: 2,
    sync: true,
    colorize: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,name,component",
    // "runproof/worker: message", the component first, then the message.
    messageFormat: "{if component}{component}: {end}{msg}",
    singleLine: true,
  });
}

export function createLogger(
  config: Pick<Config, "logLevel"> & Partial<Pick<Config, "logFormat">>,
  name: string,
  destination: DestinationStream = stderrDestination(config.logFormat),
): Logger {
  return pino(
    {
      name,
      level: config.logLevel,
      // Top-level errors are left to the err serializer (it keeps causes and extra
      // fields), whose output is then redacted; everything else is redacted here.
      serializers: { err: (err: unknown) => redact(pino.stdSerializers.err(err as Error)) },
      formatters: {
        log({ err, ...rest }) {
          const out = redact(rest) as Record<string, unknown>;
          if (err !== undefined) out.err = err instanceof Error ? err : redact(err);
          return out;
        },
      },
    },
    destination,
  );
}
