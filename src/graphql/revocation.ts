// Open subscriptions end when their API key stops being valid (revoked, expired, or its tenant
// deleted): every `intervalMs` (RUNPROOF_API_KEY_RECHECK_MS, default 2 s) each key that holds a
// WebSocket open is asked of the database again, bypassing the key cache, and every connection
// of a key that fails is ended with the key's error (src/graphql/websocket.ts sends it to each
// subscription and closes the socket with 4403). recheckNow() runs a check at once: the server
// calls it when the database announces a revocation (NOTIFY), so the interval is the bound,
// not the usual delay.
import type { ApiKeyAuthenticator, AuthError } from "./auth.ts";

export interface KeySession {
  /** Ends the session because its key is no longer valid. */
  revoke(error: AuthError): void;
}

interface TrackedKey {
  apiKey: string;
  sessions: Set<KeySession>;
}

export class KeyRevocationWatcher {
  private readonly keys = new Map<string, TrackedKey>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly auth: ApiKeyAuthenticator,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.recheckNow(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Starts watching `session`, which authenticated with `apiKey` (hash `keyHash`). Returns untrack(). */
  track(keyHash: string, apiKey: string, session: KeySession): () => void {
    let entry = this.keys.get(keyHash);
    if (!entry) {
      entry = { apiKey, sessions: new Set() };
      this.keys.set(keyHash, entry);
    }
    entry.sessions.add(session);
    return () => {
      const e = this.keys.get(keyHash);
      if (!e) return;
      e.sessions.delete(session);
      if (!e.sessions.size) this.keys.delete(keyHash);
    };
  }

  /** How many distinct keys hold sessions (for tests and logs). */
  get trackedKeys(): number {
    return this.keys.size;
  }

  /** Checks every tracked key now; concurrent calls share one pass (plus one more if asked during it). */
  recheckNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async pass(): Promise<void> {
    const entries = [...this.keys.entries()];
    // A few at a time: one round trip per key, on the authenticator's pool.
    for (let i = 0; i < entries.length; i += 8) {
      await Promise.all(
        entries.slice(i, i + 8).map(async ([keyHash, entry]) => {
          try {
            const result = await this.auth.check(entry.apiKey);
            if (result.ok) return;
            this.auth.forget(keyHash);
            this.keys.delete(keyHash);
            for (const s of entry.sessions) s.revoke(result.error);
          } catch (err) {
            // The database is unreachable: keep the sessions; the next pass asks again.
            this.onError(err);
          }
        }),
      );
    }
  }
}

/** What can LISTEN: PostGraphile's pgSubscriber (one pooled connection for all channels). */
export interface Subscriber {
  subscribe(topic: string): AsyncIterable<unknown> | PromiseLike<AsyncIterable<unknown>>;
}

export const API_KEYS_CHANNEL = "runproof:api_keys";

/**
 * Calls `onRevoked` for each revocation or deletion the database announces on
 * runproof:api_keys (sql/api/api_keys.sql). Returns a function that stops listening.
 */
export function listenForRevocations(
  subscriber: Subscriber,
  onRevoked: (event: { event?: string; tenant_id?: string; key_id?: string }) => void,
  onError: (err: unknown) => void = () => {},
): () => Promise<void> {
  let iterator: AsyncIterator<unknown> | undefined;
  let stopped = false;
  const loop = (async () => {
    try {
      const iterable = await subscriber.subscribe(API_KEYS_CHANNEL);
      iterator = iterable[Symbol.asyncIterator]();
      if (stopped) return void (await iterator.return?.());
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        let event = {};
        try {
          event = JSON.parse(String(next.value));
        } catch {}
        onRevoked(event);
      }
    } catch (err) {
      if (!stopped) onError(err);
    }
  })();
  return async () => {
    stopped = true;
    await iterator?.return?.();
    await loop;
  };
}
