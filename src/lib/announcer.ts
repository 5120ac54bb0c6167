// The worker's announcer: recorded steps are announced (NOTIFY runproof:run:<id>, and the run's
// progress on runproof:tenant:<id>) after their transaction committed, never inside it.
// PostgreSQL serialises NOTIFYing commits cluster-wide and holds that lock across the WAL flush,
// so a NOTIFY in every step transaction would cap the whole cluster near one step per fsync.
// Announcements queue here and go out in batches, one transaction per batch, on a connection with
// synchronous_commit off (an announcement is worth no fsync). A lost announcement (a crash
// between the commit and the batch) costs latency only: the CLI and the runUpdated subscription
// read the committed rows.
import pg from "pg";
import type { Logger } from "./log.ts";

export class Announcer {
  private readonly pool: pg.Pool;
  private channels: string[] = [];
  private payloads: string[] = [];
  private sending: Promise<void> | null = null;
  private closed = false;

  constructor(
    connectionString: string,
    private readonly logger: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString, max: 1, options: "-c synchronous_commit=off" });
    // A lost connection must not crash the worker: the next batch connects again.
    this.pool.on("error", (e) => logger.warn({ err: e.message }, "announcer connection failed"));
    this.pool.on("connect", (client) =>
      client.on("error", (e) => logger.warn({ err: e.message }, "announcer connection failed")),
    );
  }

  /** Queues announcements (channel i, payload i), sent in order after what is queued already. */
  announce(
    channels: readonly string[] | null | undefined,
    payloads: readonly string[] | null | undefined,
  ): void {
    if (this.closed || !channels?.length || !payloads) return;
    this.channels.push(...channels);
    this.payloads.push(...payloads);
    this.sending ??= this.drain();
  }

  /** Resolves once everything queued so far has been sent (or given up on). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.pool.end().catch(() => {});
  }

  /** Sends batches until the queue is empty: whatever queued during one send goes in the next. */
  private async drain(): Promise<void> {
    try {
      while (this.channels.length) {
        const channels = this.channels;
        const payloads = this.payloads;
        this.channels = [];
        this.payloads = [];
        try {
          await this.pool.query("select runproof_private.announce($1, $2)", [channels, payloads]);
        } catch (e) {
          // Latency only: listeners read the committed rows at the next announcement or poll.
          this.logger.warn({ err: (e as Error).message, dropped: channels.length }, "announcements lost");
        }
      }
    } finally {
      this.sending = null;
    }
  }
}
