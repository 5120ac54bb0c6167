// Fair share between tenants: what one tenant's requests may take of the server at once.
//
//   rate         at most `ratePerSecond` GraphQL requests (and subscription starts) per tenant
//                per second (rate-limiter-flexible, in memory, one window per second); beyond
//                it HTTP 429 RATE_LIMITED with Retry-After
//   cost         at most `costPerSecond` of estimated query cost (limits.ts) per tenant per
//                second: a tenant may send many cheap queries or a few expensive ones, not a
//                stream of the most expensive kind; beyond it HTTP 429 COST_RATE_LIMITED
//   concurrency  at most `maxConcurrent` requests of a tenant execute at once; the next
//                `maxQueued` wait their turn in order (at most `queueTimeoutMs`; a client that
//                hangs up leaves the queue), beyond that HTTP 429 TOO_MANY_CONCURRENT_REQUESTS
//   subscriptions at most `maxSubscriptions` open runUpdated subscriptions per tenant
//
// A flood from one tenant so waits in its own queue: it holds at most `maxConcurrent` database
// connections and CPU slots, and another tenant's request never queues behind it.
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

export interface TenantLimits {
  maxConcurrent: number;
  maxQueued: number;
  queueTimeoutMs: number;
  ratePerSecond: number;
  costPerSecond: number;
  maxSubscriptions: number;
}

export interface GateRefusal {
  status: 429;
  code: "RATE_LIMITED" | "COST_RATE_LIMITED" | "TOO_MANY_CONCURRENT_REQUESTS" | "TOO_MANY_SUBSCRIPTIONS";
  message: string;
  hint: string;
  /** Seconds, for the Retry-After header. */
  retryAfter: number;
  limit: number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; refusal: GateRefusal };

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

interface TenantState {
  running: number;
  queue: Waiter[];
  subscriptions: number;
}

export class TenantGate {
  private readonly states = new Map<string, TenantState>();
  private readonly rate: RateLimiterMemory;
  private readonly cost: RateLimiterMemory;

  constructor(readonly limits: TenantLimits) {
    this.rate = new RateLimiterMemory({ points: limits.ratePerSecond, duration: 1, keyPrefix: "tenant" });
    this.cost = new RateLimiterMemory({ points: limits.costPerSecond, duration: 1, keyPrefix: "cost" });
  }

  /** Counts a request's estimated cost against the tenant's cost per second; null when it may go on. */
  async checkCost(tenantId: string, cost: number): Promise<GateRefusal | null> {
    if (!(cost > 0)) return null;
    try {
      await this.cost.consume(tenantId, Math.ceil(cost));
      return null;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      return this.costRefusal(cost, e.msBeforeNext);
    }
  }

  /**
   * Charges a refused document's cost to the tenant without refusing it for that: the first
   * refusal says what is wrong with the document, and only a tenant already over its cost per
   * second gets COST_RATE_LIMITED, so a loop of refused queries is slowed down like a loop of
   * expensive ones.
   */
  async chargeRefused(tenantId: string, cost: number): Promise<GateRefusal | null> {
    const now = await this.cost.get(tenantId);
    if (now && now.consumedPoints >= this.limits.costPerSecond)
      return this.costRefusal(cost, now.msBeforeNext);
    if (cost > 0) await this.cost.penalty(tenantId, Math.ceil(cost));
    return null;
  }

  private costRefusal(cost: number, msBeforeNext: number): GateRefusal {
    const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
    return {
      status: 429,
      code: "COST_RATE_LIMITED",
      message: `Too much work at once: this tenant may ask for queries of a total estimated cost of ${this.limits.costPerSecond} per second, and this one costs ${Math.ceil(cost)}.`,
      hint: `wait ${retryAfter} s (Retry-After); ask for fewer rows, proofs or nested connections per query`,
      retryAfter,
      limit: this.limits.costPerSecond,
    };
  }

  /** Counts one request against the tenant's rate; null when it may go on. */
  async checkRate(tenantId: string): Promise<GateRefusal | null> {
    try {
      await this.rate.consume(tenantId, 1);
      return null;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      const retryAfter = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      return {
        status: 429,
        code: "RATE_LIMITED",
        message: `Too many requests: this tenant may send ${this.limits.ratePerSecond} GraphQL requests per second.`,
        hint: `wait ${retryAfter} s (Retry-After) and send fewer requests; batch reads into one query`,
        retryAfter,
        limit: this.limits.ratePerSecond,
      };
    }
  }

  /**
   * Waits for one of the tenant's execution slots. `signal` aborts the wait (the client went
   * away). The caller must call release() once the request is done.
   */
  async acquire(tenantId: string, signal?: AbortSignal): Promise<Admission> {
    const state = this.state(tenantId);
    const release = once(() => this.release(tenantId));
    if (state.running < this.limits.maxConcurrent) {
      state.running++;
      return { ok: true, release };
    }
    if (state.queue.length >= this.limits.maxQueued) {
      return { ok: false, refusal: this.busy() };
    }
    return new Promise<Admission>((resolve) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          signal?.removeEventListener("abort", onAbort);
          resolve({ ok: true, release });
        },
        timer: setTimeout(() => {
          leave();
          resolve({ ok: false, refusal: this.busy() });
        }, this.limits.queueTimeoutMs),
      };
      const leave = () => {
        const i = state.queue.indexOf(waiter);
        if (i >= 0) state.queue.splice(i, 1);
        clearTimeout(waiter.timer);
        signal?.removeEventListener("abort", onAbort);
        this.forgetIfIdle(tenantId, state);
      };
      const onAbort = () => {
        leave();
        resolve({ ok: false, refusal: this.busy() });
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      state.queue.push(waiter);
    });
  }

  /** One more open subscription for the tenant, or a refusal; call the returned close() when it ends. */
  openSubscription(tenantId: string): Admission {
    const state = this.state(tenantId);
    if (state.subscriptions >= this.limits.maxSubscriptions) {
      return {
        ok: false,
        refusal: {
          status: 429,
          code: "TOO_MANY_SUBSCRIPTIONS",
          message: `Too many open subscriptions: this tenant may hold ${this.limits.maxSubscriptions} at once.`,
          hint: "complete subscriptions you no longer need (runUpdated completes by itself when the run finishes), or poll run(id) instead",
          retryAfter: 1,
          limit: this.limits.maxSubscriptions,
        },
      };
    }
    state.subscriptions++;
    return {
      ok: true,
      release: once(() => {
        state.subscriptions--;
        this.forgetIfIdle(tenantId, state);
      }),
    };
  }

  /** For tests and logs: what a tenant holds now. */
  snapshot(tenantId: string): { running: number; queued: number; subscriptions: number } {
    const s = this.states.get(tenantId);
    return { running: s?.running ?? 0, queued: s?.queue.length ?? 0, subscriptions: s?.subscriptions ?? 0 };
  }

  private busy(): GateRefusal {
    return {
      status: 429,
      code: "TOO_MANY_CONCURRENT_REQUESTS",
      message: `Too many concurrent requests: this tenant may run ${this.limits.maxConcurrent} GraphQL requests at once, and ${this.limits.maxQueued} more may wait.`,
      hint: "wait for your requests in flight to finish before sending more (Retry-After), or ask for less in each",
      retryAfter: 1,
      limit: this.limits.maxConcurrent,
    };
  }

  private state(tenantId: string): TenantState {
    let s = this.states.get(tenantId);
    if (!s) {
      s = { running: 0, queue: [], subscriptions: 0 };
      this.states.set(tenantId, s);
    }
    return s;
  }

  private release(tenantId: string): void {
    const state = this.states.get(tenantId);
    if (!state) return;
    const next = state.queue.shift();
    // The slot passes straight to the next waiter: running stays the same.
    if (next) next.grant();
    else {
      state.running--;
      this.forgetIfIdle(tenantId, state);
    }
  }

  private forgetIfIdle(tenantId: string, state: TenantState): void {
    if (state.running === 0 && state.queue.length === 0 && state.subscriptions === 0) {
      this.states.delete(tenantId);
    }
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
