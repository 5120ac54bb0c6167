// One pino logger per component. Logs go to stderr so that commands which print
// data (proof bundles, JSON) on stdout stay pipeable, and every logged object is
// redacted first: a log line must not leak what the ledger refuses to store.
import { pino, type DestinationStream, type Logger } from "pino";
import type { Config } from "./config.ts";
import { redact } from "./redact.ts";

export type { Logger };

export function createLogger(
  config: Pick<Config, "logLevel">,
  name: string,
  destination: DestinationStream = pino.destination({ fd: 2, sync: true }),
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
