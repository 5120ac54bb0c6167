// Pieces shared by the skills that talk HTTP (http_call, llm_complete).
import { redactString } from "../lib/redact.ts";
import { abortedError, SkillError } from "./types.ts";

/** Worth another attempt: the server is overloaded, down or rate limiting, or the request timed out. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * One timeout for this call, combined with the caller's signal. `error()` says which of the
 * two fired, because a timeout is worth retrying and a cancellation is the caller's decision.
 */
export function callSignal(ctxSignal: AbortSignal, timeoutMs: number) {
  const timeout = AbortSignal.timeout(timeoutMs);
  return {
    signal: AbortSignal.any([ctxSignal, timeout]),
    /** The SkillError for a failed fetch/read, or undefined if it was not an abort. */
    abortError(what: string): SkillError | undefined {
      if (timeout.aborted && !ctxSignal.aborted) {
        return new SkillError(`${what} timed out after ${timeoutMs} ms`, {
          code: "TIMEOUT",
          transient: true,
          cause: timeout.reason,
        });
      }
      if (ctxSignal.aborted) return abortedError(ctxSignal, what);
      return undefined;
    },
  };
}

/** Maps what fetch() throws: aborts, then network failures (transient: the next attempt may connect). */
export function fetchFailure(err: unknown, call: ReturnType<typeof callSignal>, what: string): SkillError {
  if (err instanceof SkillError) return err;
  const aborted = call.abortError(what);
  if (aborted) return aborted;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  // undici reports network failures as TypeError("fetch failed") with a cause; any other
  // TypeError is a request that can never be sent, and so is a port that fetch blocks.
  if (err instanceof TypeError && (err.message !== "fetch failed" || cause?.message === "bad port")) {
    return new SkillError(redactString(`${what} cannot be sent: ${cause?.message ?? err.message}`), {
      code: "INVALID_REQUEST",
      transient: false,
      cause: err,
    });
  }
  const detail = cause?.code ?? cause?.message ?? (err as Error).message;
  return new SkillError(redactString(`${what} failed: ${detail}`), {
    code: "CONNECTION_ERROR",
    transient: true,
    cause: err,
  });
}

/**
 * Reads the body but never holds more than maxBytes of it: a declared Content-Length over
 * the limit is refused before reading, and a streamed body is cut off as soon as it passes it.
 */
export async function readBodyLimited(res: Response, maxBytes: number, what: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new SkillError(`${what}: response is larger than ${maxBytes} bytes`, {
      code: "RESPONSE_TOO_LARGE",
      transient: false,
      details: { max_bytes: maxBytes },
    });
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

export function isJsonContentType(contentType: string | null): boolean {
  return !!contentType && /^application\/(?:[\w.+-]*\+)?json\b|^text\/json\b/i.test(contentType.trim());
}

/** JSON if the server says so and it parses, else UTF-8 text. */
export function decodeBody(bytes: Uint8Array, contentType: string | null): unknown {
  const text = new TextDecoder("utf-8").decode(bytes);
  if (isJsonContentType(contentType)) {
    if (text.trim() === "") return null;
    try {
      return JSON.parse(text);
    } catch {
      // A server that mislabels its body: hand over the text rather than fail the step.
    }
  }
  return text;
}

export function snippet(bytes: Uint8Array, max = 200): string {
  const text = new TextDecoder("utf-8")
    .decode(bytes.subarray(0, max * 4))
    .replace(/\s+/g, " ")
    .trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
