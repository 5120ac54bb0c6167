// The WebSocket side of /graphql (graphql-ws, protocol graphql-transport-ws), in place of
// grafserv's built-in upgrade handler, so that its messages get the same limits as a POST:
//   - a message over maxPayload bytes (RUNPROOF_GRAPHQL_MAX_BODY_BYTES) closes the socket (1009);
//   - a text frame that is not UTF-8 closes it (1007, checked by ws), a binary frame too (1003);
//   - JSON with a lone surrogate or nested deeper than 256 levels gets an error for that
//     subscription (INVALID_UNICODE, JSON_TOO_DEEP), like the HTTP body check;
//   - each subscribe goes through `admit` (key, rate, limits, open subscriptions per tenant);
//   - the connections of a key that stops being valid get an error for each subscription
//     (API_KEY_REVOKED or API_KEY_EXPIRED) and are closed with 4403 (revocation.ts).
// Everything else is grafserv's own graphql-ws configuration (makeGraphQLWSConfig): the same
// execution, context and error masking as before.
import type http from "node:http";
import type { Duplex } from "node:stream";
import { type Context, makeServer, type ServerOptions } from "graphql-ws";
import type { GraphQLError } from "postgraphile/graphql";
import { makeGraphQLWSConfig, normalizeConnectionParams } from "postgraphile/grafserv";
import type { NodeGrafserv } from "postgraphile/grafserv/node";
import { type WebSocket, WebSocketServer } from "ws";
import { type AuthError, bearerKey, keyHashOf } from "./auth.ts";
import { checkJsonText } from "./input-guard.ts";
import type { KeyRevocationWatcher } from "./revocation.ts";

/** The WebSocket close code graphql-ws uses for "Forbidden". */
export const CLOSE_FORBIDDEN = 4403;

export interface SubscribeRequest {
  ctx: Context;
  authorization: string | string[] | undefined;
  payload: { query?: unknown; operationName?: unknown; variables?: unknown };
}

/** Errors to send for the subscription, or a release() to call when it ends. */
export type SubscribeAdmission = { errors: GraphQLError[] } | { release: () => void };

export interface WebSocketOptions {
  server: http.Server;
  serv: NodeGrafserv;
  path: string;
  maxPayload: number;
  keepaliveMs?: number;
  admit(request: SubscribeRequest): Promise<SubscribeAdmission>;
  watcher: KeyRevocationWatcher;
  onError?(err: unknown): void;
}

interface SocketState {
  untrack?: () => void;
  releases: Map<string, () => void>;
}

export function attachWebSockets(opts: WebSocketOptions): { close(): void; sockets: Set<WebSocket> } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
  const sockets = new Set<WebSocket>();
  const states = new WeakMap<object, SocketState>();
  const base = makeGraphQLWSConfig(opts.serv);

  const stateOf = (ctx: Context): SocketState => {
    const socket = (ctx.extra as { socket: WebSocket }).socket;
    let s = states.get(socket);
    if (!s) {
      s = { releases: new Map() };
      states.set(socket, s);
    }
    return s;
  };

  const config: ServerOptions = {
    ...base,
    async onSubscribe(ctx, id, payload) {
      const authorization = normalizeConnectionParams(ctx.connectionParams)?.authorization;
      const admission = await opts.admit({ ctx, authorization, payload });
      if ("errors" in admission) return admission.errors;
      const state = stateOf(ctx);
      state.releases.set(id, admission.release);
      // Watch the key that holds this socket open (once per socket: one connection_init, one key).
      if (!state.untrack) {
        const bearer = bearerKey(authorization);
        if ("key" in bearer) {
          const socket = (ctx.extra as { socket: WebSocket }).socket;
          state.untrack = opts.watcher.track(keyHashOf(bearer.key), bearer.key, {
            revoke: (error) => revokeSocket(ctx, socket, error),
          });
        }
      }
      const result = await base.onSubscribe!(ctx, id, payload);
      if (Array.isArray(result)) releaseOne(ctx, id);
      return result;
    },
    async onComplete(ctx, id) {
      releaseOne(ctx, id);
    },
  };
  const graphqlWs = makeServer(config);

  function releaseOne(ctx: Context, id: string): void {
    const state = stateOf(ctx);
    state.releases.get(id)?.();
    state.releases.delete(id);
  }

  function revokeSocket(ctx: Context, socket: WebSocket, error: AuthError): void {
    const code = error.code === "API_KEY_EXPIRED" ? "API_KEY_EXPIRED" : "API_KEY_REVOKED";
    const message = `This subscription ended because its API key is no longer valid: ${error.message}`;
    for (const id of Object.keys(ctx.subscriptions)) {
      // graphql-ws stops delivering for an id that is no longer in ctx.subscriptions.
      delete (ctx.subscriptions as Record<string, unknown>)[id];
      socket.send(
        JSON.stringify({ id, type: "error", payload: [{ message, extensions: { code, hint: error.hint } }] }),
      );
    }
    socket.close(CLOSE_FORBIDDEN, code === "API_KEY_EXPIRED" ? "API key expired" : "API key revoked");
  }

  wss.on("connection", (socket: WebSocket, request: http.IncomingMessage) => {
    sockets.add(socket);
    keepalive(socket, opts.keepaliveMs ?? 12_000);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on("message", async (data, isBinary) => {
            if (isBinary) {
              socket.close(1003, "binary frames are not supported; send JSON text");
              return;
            }
            const text = data.toString("utf8");
            const checked = checkJsonText(text);
            if (checked.problem) {
              const id = (checked.value as { id?: unknown } | undefined)?.id;
              if (typeof id === "string") {
                socket.send(
                  JSON.stringify({
                    id,
                    type: "error",
                    payload: [
                      {
                        message: checked.problem.message,
                        extensions: { code: checked.problem.code, hint: checked.problem.hint },
                      },
                    ],
                  }),
                );
              } else socket.close(4400, checked.problem.code);
              return;
            }
            try {
              await cb(text);
            } catch (err) {
              opts.onError?.(err);
              try {
                socket.close(4500, "internal error");
              } catch {}
            }
          }),
      },
      { socket, request },
    );
    socket.once("close", (code, reason) => {
      sockets.delete(socket);
      const state = states.get(socket);
      state?.untrack?.();
      for (const release of state?.releases.values() ?? []) release();
      state?.releases.clear();
      void closed(code, String(reason));
    });
  });

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    if ((q >= 0 ? url.slice(0, q) : url) !== opts.path) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  };
  opts.server.on("upgrade", onUpgrade);

  return {
    sockets,
    close() {
      opts.server.off("upgrade", onUpgrade);
      for (const s of sockets) s.terminate();
      wss.close();
    },
  };
}

/** Pings every `intervalMs`; a socket that does not answer within the next interval is dropped. */
function keepalive(socket: WebSocket, intervalMs: number): void {
  if (!(intervalMs > 0)) return;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const ping = () => {
    stop();
    timer = setTimeout(() => socket.terminate(), intervalMs);
    socket.ping();
  };
  socket.on("pong", () => {
    stop();
    timer = setTimeout(ping, intervalMs);
  });
  socket.once("close", stop);
  timer = setTimeout(ping, intervalMs);
}
