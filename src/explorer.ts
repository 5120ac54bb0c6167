// The web run explorer (web/): a Preact + htm page served at / by the GraphQL server.
//
//   GET /                      the page (HTML, no data: everything it shows comes from /graphql
//                              with the API key the user typed in, so row level security decides)
//   GET /explorer/<name>-<hash>.js|.css   its bundle, built from web/ with esbuild once per
//                              process (on the first request), minified, no CDN
//
// The page keeps the API key in memory and sessionStorage (this tab only, never a URL or
// localStorage) and sends it as the Authorization header to /graphql and in graphql-ws's
// connection_init. Every response carries a strict Content Security Policy: scripts and styles
// from this origin only, connections to this origin only (fetch and its WebSocket).
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { build, type Metafile } from "esbuild";
import { REPO_ROOT } from "./lib/database.ts";

export const EXPLORER_ASSET_PREFIX = "/explorer/";
const ENTRY = path.join(REPO_ROOT, "web", "app.ts");

export interface ExplorerAsset {
  /** URL path, e.g. /explorer/app-3F2A1B.js */
  path: string;
  contentType: string;
  body: Buffer;
}

export interface ExplorerBuild {
  html: Buffer;
  assets: Map<string, ExplorerAsset>;
  /** The JavaScript the page loads before it can render (the entry and its static imports), bytes. */
  firstLoadJsBytes: number;
  /** The same, gzip-compressed, bytes. */
  firstLoadJsGzipBytes: number;
  /** Every JavaScript file, lazily loaded chunks included, bytes. */
  totalJsBytes: number;
}

/** The Content-Security-Policy of the page and its assets. */
export function contentSecurityPolicy(host: string | undefined): string {
  // 'self' covers same-origin ws: in CSP 3; the explicit ws:// source is for older engines. The Host
  // header goes into the policy only when it is a plain host[:port].
  const ws =
    host && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host)
      ? ` ws://${host} wss://${host}`
      : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

let building: Promise<ExplorerBuild> | undefined;

/** Builds web/ once per process (memoised; a failed build is retried on the next call). */
export function explorerBuild(): Promise<ExplorerBuild> {
  building ??= buildExplorer().catch((err) => {
    building = undefined;
    throw err;
  });
  return building;
}

async function buildExplorer(): Promise<ExplorerBuild> {
  const { gzipSync } = await import("node:zlib");
  const outdir = path.join(REPO_ROOT, ".explorer-build"); // never written: write is false
  const result = await build({
    entryPoints: [ENTRY],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: ["chrome120", "firefox120", "safari17"],
    minify: true,
    sourcemap: false,
    write: false,
    metafile: true,
    outdir,
    entryNames: "[name]-[hash]",
    chunkNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    legalComments: "none",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const assets = new Map<string, ExplorerAsset>();
  for (const file of result.outputFiles) {
    const rel = path.relative(outdir, file.path).split(path.sep).join("/");
    const urlPath = EXPLORER_ASSET_PREFIX + rel;
    const contentType = rel.endsWith(".css")
      ? "text/css; charset=utf-8"
      : rel.endsWith(".js")
        ? "text/javascript; charset=utf-8"
        : "application/octet-stream";
    assets.set(urlPath, { path: urlPath, contentType, body: Buffer.from(file.contents) });
  }
  const meta = result.metafile as Metafile;
  const rel = (p: string) => EXPLORER_ASSET_PREFIX + path.relative(outdir, path.resolve(REPO_ROOT, p));
  const [entryOut, entryMeta] = Object.entries(meta.outputs).find(([, o]) => o.entryPoint)!;
  const script = rel(entryOut);
  const style = entryMeta.cssBundle ? rel(entryMeta.cssBundle) : null;
  // What the browser must fetch before the first render: the entry and its static imports.
  const firstLoad = new Set<string>();
  const visit = (out: string) => {
    if (firstLoad.has(out)) return;
    firstLoad.add(out);
    for (const imp of meta.outputs[out]?.imports ?? []) if (imp.kind === "import-statement") visit(imp.path);
  };
  visit(entryOut);
  const jsOf = (outs: Iterable<string>) => [...outs].map((o) => assets.get(rel(o))?.body ?? Buffer.alloc(0));
  const firstLoadJs = jsOf(firstLoad);
  const totalJs = jsOf(Object.keys(meta.outputs).filter((o) => o.endsWith(".js")));

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>RunProof explorer</title>
${style ? `<link rel="stylesheet" href="${style}">` : ""}
<script type="module" src="${script}"></script>
</head>
<body>
<div id="app"><noscript>The RunProof explorer needs JavaScript.</noscript></div>
</body>
</html>
`;
  return {
    html: Buffer.from(html, "utf8"),
    assets,
    firstLoadJsBytes: firstLoadJs.reduce((n, b) => n + b.length, 0),
    firstLoadJsGzipBytes: firstLoadJs.reduce((n, b) => n + gzipSync(b).length, 0),
    totalJsBytes: totalJs.reduce((n, b) => n + b.length, 0),
  };
}

function securityHeaders(req: IncomingMessage): Record<string, string> {
  return {
    "Content-Security-Policy": contentSecurityPolicy(req.headers.host),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
  };
}

/**
 * Serves the explorer's routes; returns false for any other request (left to grafserv).
 * Errors are answered as 500 with a plain-text message and reported to onError.
 */
export function handleExplorerRequest(
  req: IncomingMessage,
  res: ServerResponse,
  onError: (err: unknown) => void,
): boolean {
  const url = new URL(req.url ?? "/", "http://localhost");
  const isPage = url.pathname === "/" || url.pathname === "/index.html";
  if (!isPage && !url.pathname.startsWith(EXPLORER_ASSET_PREFIX)) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" });
    res.end("Method not allowed: the explorer is read with GET; GraphQL is POST /graphql\n");
    return true;
  }
  explorerBuild().then(
    (b) => {
      const asset = isPage ? null : b.assets.get(url.pathname);
      if (!isPage && !asset) {
        res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", ...securityHeaders(req) });
        res.end("Not found\n");
        return;
      }
      const body = asset ? asset.body : b.html;
      res.writeHead(200, {
        "Content-Type": asset ? asset.contentType : "text/html; charset=utf-8",
        "Content-Length": body.length,
        // Assets are named by their hash; the page is not (a new build names new assets).
        "Cache-Control": asset ? "public, max-age=31536000, immutable" : "no-cache",
        ...securityHeaders(req),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    },
    (err: unknown) => {
      onError(err);
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("The explorer could not be built; see the server log\n");
    },
  );
  return true;
}
