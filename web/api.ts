// The explorer's only way to the data: POST /graphql with the API key as the Authorization header,
// and graphql-ws on the same URL for runUpdated. The key lives in memory and in sessionStorage (this
// tab only; never a URL, never localStorage), so a reload keeps the tab signed in and closing it
// signs out.
import { type Client, createClient } from "graphql-ws";

const KEY_STORAGE = "runproof.apiKey";
export const GRAPHQL_URL = "/graphql";

export interface GqlErrorInfo {
  message: string;
  code: string | null;
  hint: string | null;
  detail: string | null;
  path: string | null;
}

/** A GraphQL or HTTP failure, with every error the server gave (code, message, hint). */
export class ApiError extends Error {
  constructor(
    readonly errors: GqlErrorInfo[],
    readonly status: number,
  ) {
    super(errors.map((e) => (e.code ? `${e.code}: ${e.message}` : e.message)).join("; "));
  }
  get code(): string | null {
    return this.errors[0]?.code ?? null;
  }
}

interface RawError {
  message?: string;
  path?: Array<string | number>;
  extensions?: { code?: string; hint?: string; detail?: string };
}

const info = (e: RawError): GqlErrorInfo => ({
  message: e.message ?? "unknown error",
  code: e.extensions?.code ?? null,
  hint: e.extensions?.hint ?? null,
  detail: e.extensions?.detail ?? null,
  path: e.path ? e.path.join(".") : null,
});

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export class Api {
  private ws: Client | null = null;

  constructor(readonly key: string) {}

  /** Remembers the key for this tab (sessionStorage), after it was accepted. */
  remember(): void {
    try {
      sessionStorage.setItem(KEY_STORAGE, this.key);
    } catch {
      // Storage disabled: the key stays in memory only.
    }
  }

  /** Forgets the key and closes the WebSocket. */
  signOut(): void {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch {}
    void this.ws?.dispose();
    this.ws = null;
  }

  /** Runs a query or mutation; any error in the response is thrown as an ApiError. */
  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(GRAPHQL_URL, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/graphql-response+json, application/json",
          Authorization: `Bearer ${this.key}`,
        },
        body: JSON.stringify({ query, variables }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(
        [{ ...info({ message: `the server cannot be reached: ${(e as Error).message}` }) }],
        0,
      );
    }
    let body: { data?: T; errors?: RawError[] };
    try {
      body = await res.json();
    } catch {
      throw new ApiError([info({ message: `HTTP ${res.status} ${res.statusText}` })], res.status);
    }
    if (body.errors?.length) throw new ApiError(body.errors.map(info), res.status);
    if (!res.ok || !body.data) throw new ApiError([info({ message: `HTTP ${res.status}` })], res.status);
    return body.data;
  }

  /** Subscribes over graphql-ws; returns the function that unsubscribes. */
  subscribe<T>(
    query: string,
    variables: Record<string, unknown>,
    handlers: { next: (data: T) => void; error?: (e: ApiError) => void; complete?: () => void },
  ): () => void {
    this.ws ??= createClient({
      url: new URL(GRAPHQL_URL, location.href).href.replace(/^http/, "ws"),
      connectionParams: { Authorization: `Bearer ${this.key}` },
      lazy: true,
      retryAttempts: 3,
    });
    return this.ws.subscribe<T>(
      { query, variables },
      {
        next: (msg) => {
          if (msg.errors?.length)
            handlers.error?.(
              new ApiError(
                msg.errors.map((e) => info(e as RawError)),
                0,
              ),
            );
          else if (msg.data) handlers.next(msg.data as T);
        },
        error: (err) => {
          const list = Array.isArray(err)
            ? (err as RawError[]).map(info)
            : [info({ message: err instanceof Error ? err.message : "the live connection closed" })];
          handlers.error?.(new ApiError(list, 0));
        },
        complete: () => handlers.complete?.(),
      },
    );
  }
}
