// A small C2SP tlog-witness for the tests: POST /add-checkpoint checks the log's signature, that
// the old size is the size it last cosigned (409 with text/x.tlog.size otherwise), the consistency
// proof (422 when it does not verify), and returns a tlog-cosignature/v1 line.
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  cosign,
  generateSigner,
  type NoteSigner,
  parseNote,
  verifierKey,
  verifyCheckpoint,
  verifyConsistency,
  SIG_COSIGNATURE_V1,
} from "./witness-keys.ts";

export interface TestWitness {
  url: string;
  vkey: string;
  state: Map<string, { size: bigint; root: Buffer }>;
  requests: number;
  close(): Promise<void>;
}

export async function startWitness(logVkey: string, name = "witness.test/w1"): Promise<TestWitness> {
  const signer: NoteSigner = generateSigner(name);
  const state = new Map<string, { size: bigint; root: Buffer }>();
  const w: TestWitness = {
    url: "",
    vkey: verifierKey(name, signer.publicKey, SIG_COSIGNATURE_V1),
    state,
    requests: 0,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      w.requests++;
      const reply = (status: number, text: string, type = "text/plain") => {
        res.writeHead(status, { "content-type": type });
        res.end(text);
      };
      if (req.method !== "POST" || req.url !== "/add-checkpoint") return reply(404, "not found\n");
      const blank = body.indexOf("\n\n");
      if (blank < 0) return reply(400, "no blank line\n");
      const head = body.slice(0, blank).split("\n");
      const m = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? "");
      if (!m) return reply(400, "no old size line\n");
      const old = BigInt(m[1]);
      const proof = head.slice(1).map((l) => Buffer.from(l, "base64"));
      let cp: ReturnType<typeof verifyCheckpoint>;
      try {
        cp = verifyCheckpoint(body.slice(blank + 2), logVkey);
      } catch (e) {
        return reply(403, `${(e as Error).message}\n`);
      }
      if (old > cp.size) return reply(400, "old size is larger than the checkpoint's\n");
      const last = state.get(cp.origin) ?? { size: 0n, root: Buffer.alloc(0) };
      if (old !== last.size) return reply(409, `${last.size}\n`, "text/x.tlog.size");
      if (old === cp.size && !last.root.equals(cp.root))
        return reply(409, `${last.size}\n`, "text/x.tlog.size");
      if (old > 0n && !verifyConsistency(old, cp.size, last.root, cp.root, proof))
        return reply(422, "the consistency proof does not verify\n");
      state.set(cp.origin, { size: cp.size, root: cp.root });
      reply(200, cosign(parseNote(cp.note).body, signer, Math.floor(Date.now() / 1000)));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  w.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  w.close = () => new Promise((r) => server.close(() => r()));
  return w;
}
