// Anchors: where checkpoints go outside the database (docs/proof-format.md section 15). Each takes
// one checkpoint at a time and returns a receipt, or throws (the caller retries with backoff):
// - directory: append-only files, <dir>/<tenant>/<size>.checkpoint (never overwritten: a different
//   checkpoint of a size already there is refused as a fork) and the leaf hashes since the previous
//   one, <from>-<size>.leaves, so that verify-all --against DIR can name the first bad leaf;
// - witness: C2SP tlog-witness add-checkpoint with the consistency proof from the witness's last
//   size; the receipt is its C2SP cosignature, verified with the witness's key;
// - rfc3161: an RFC 3161 timestamping authority stamps sha256(note); the receipt is the token.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import * as asn1js from "asn1js";
import type pg from "pg";
import * as pkijs from "pkijs";
import type { AnchorConfig } from "./config.ts";
import { parseNote, verifyCosignature } from "./offline-checkpoint.ts";

export interface AnchorJob {
  tenantId: string;
  treeSize: number;
  note: string;
}

export interface Anchor {
  name: string;
  kind: "directory" | "witness" | "rfc3161";
  submit(job: AnchorJob, pool: pg.Pool): Promise<string>;
}

export function createAnchor(c: AnchorConfig, timeoutMs = 10_000): Anchor {
  switch (c.kind) {
    case "directory":
      return { name: c.name, kind: c.kind, submit: (job, pool) => toDirectory(c.path, job, pool) };
    case "witness":
      return {
        name: c.name,
        kind: c.kind,
        submit: (job, pool) => toWitness(c.name, c.url, c.key, job, pool, timeoutMs),
      };
    case "rfc3161":
      return { name: c.name, kind: c.kind, submit: (job) => toTsa(c.url, job, timeoutMs) };
  }
}

const pad = (n: number) => String(n).padStart(12, "0");

async function toDirectory(dir: string, job: AnchorJob, pool: pg.Pool): Promise<string> {
  const tdir = path.join(dir, job.tenantId);
  await fs.mkdir(tdir, { recursive: true });
  const file = path.join(tdir, `${pad(job.treeSize)}.checkpoint`);
  const existing = await fs.readFile(file, "utf8").catch(() => null);
  if (existing !== null) {
    if (existing === job.note) return file;
    throw new Error(`${file} already holds a different checkpoint of size ${job.treeSize}: the log forked`);
  }
  // The leaves since the largest checkpoint already in the directory.
  const sizes = (await fs.readdir(tdir))
    .map((f) => /^(\d+)\.checkpoint$/.exec(f)?.[1])
    .filter(Boolean)
    .map(Number);
  const from = Math.max(0, ...sizes.filter((s) => s < job.treeSize));
  const { rows } = await pool.query<{ h: string }>(
    `select encode(leaf_hash, 'hex') as h from runproof.log_leaves where tenant_id = $1 and leaf_index >= $2 and leaf_index < $3 order by leaf_index`,
    [job.tenantId, from, job.treeSize],
  );
  const leaves = path.join(tdir, `${pad(from)}-${pad(job.treeSize)}.leaves`);
  await fs.writeFile(leaves, rows.map((r) => `${r.h}\n`).join(""), { flag: "wx", mode: 0o444 }).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  });
  await fs.writeFile(file, job.note, { flag: "wx", mode: 0o444 });
  return file;
}

async function toWitness(
  name: string,
  url: string,
  key: string,
  job: AnchorJob,
  pool: pg.Pool,
  timeoutMs: number,
): Promise<string> {
  const {
    rows: [last],
  } = await pool.query<{ size: string | null }>(
    `select max(tree_size)::text as size from runproof.log_anchor_receipts where tenant_id = $1 and anchor = $2 and tree_size <= $3`,
    [job.tenantId, name, job.treeSize],
  );
  let old = Number(last.size ?? 0);
  for (let round = 0; round < 2; round++) {
    const {
      rows: [p],
    } = await pool.query<{ proof: string[] }>(`select runproof.log_consistency_proof($1, $2, $3) as proof`, [
      job.tenantId,
      old,
      job.treeSize,
    ]);
    const body = `old ${old}\n${p.proof.map((h) => `${Buffer.from(h, "hex").toString("base64")}\n`).join("")}\n${job.note}`;
    const res = await fetch(new URL("add-checkpoint", url.endsWith("/") ? url : `${url}/`), {
      method: "POST",
      body,
      headers: { "content-type": "text/plain" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status === 409 && /^text\/x\.tlog\.size/.test(res.headers.get("content-type") ?? "")) {
      const size = Number(text.trim());
      if (!Number.isSafeInteger(size) || size > job.treeSize || size === old)
        throw new Error(
          `witness ${name} is at size ${text.trim()}, which this checkpoint (size ${job.treeSize}) cannot extend`,
        );
      old = size;
      continue;
    }
    if (res.status !== 200)
      throw new Error(`witness ${name} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    const { body: cpBody } = parseNote(job.note);
    const lines = text.split(/(?<=\n)/).filter((l) => l.startsWith("\u2014"));
    for (const line of lines) {
      try {
        verifyCosignature(cpBody, line, key);
        return line.trimEnd();
      } catch {
        // another key's cosignature: ignored
      }
    }
    throw new Error(`witness ${name} returned no valid cosignature by its key`);
  }
  throw new Error(`witness ${name} kept changing its size`);
}

const SHA256_OID = "2.16.840.1.101.3.4.2.1";

/** An RFC 3161 TimeStampReq for sha256(data), with a nonce and certReq. */
export function timeStampRequest(data: Uint8Array): { der: Buffer; nonce: Buffer; digest: Buffer } {
  const digest = createHash("sha256").update(data).digest();
  // A DER INTEGER is minimal and signed: the first byte must be neither 0x00 (before a byte
  // below 0x80) nor have its top bit set, or a strict TSA (openssl) refuses the request as
  // badly formatted (about one request in 256 before this was kept).
  const nonce = randomBytes(8);
  nonce[0] = nonce[0] & 0x7f || 0x01;
  const req = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA256_OID }),
      hashedMessage: new asn1js.OctetString({ valueHex: new Uint8Array(digest).buffer }),
    }),
    nonce: new asn1js.Integer({ valueHex: new Uint8Array(nonce).buffer }),
    certReq: true,
  });
  return { der: Buffer.from(req.toSchema().toBER(false)), nonce, digest };
}

/** Parses a TimeStampResp: the token (DER) when granted, and its TSTInfo's imprint, nonce and time. */
export function parseTimeStampResponse(der: Uint8Array): {
  token: Buffer;
  digest: Buffer;
  nonce: Buffer | null;
  genTime: Date;
} {
  const asn = asn1js.fromBER(new Uint8Array(der).buffer);
  if (asn.offset === -1) throw new Error("the TSA's reply is not DER");
  const resp = new pkijs.TimeStampResp({ schema: asn.result });
  const status = resp.status.status;
  if ((status !== 0 && status !== 1) || !resp.timeStampToken)
    throw new Error(
      `the TSA refused: status ${status}${resp.status.statusStrings?.length ? ` (${resp.status.statusStrings.map((s) => s.valueBlock.value).join("; ")})` : ""}`,
    );
  const signed = new pkijs.SignedData({ schema: resp.timeStampToken.content });
  const content = signed.encapContentInfo.eContent;
  if (!content) throw new Error("the timestamp token has no TSTInfo");
  const info = new pkijs.TSTInfo({ schema: asn1js.fromBER(content.getValue()).result });
  return {
    token: Buffer.from(resp.timeStampToken.toSchema().toBER(false)),
    digest: Buffer.from(info.messageImprint.hashedMessage.valueBlock.valueHexView),
    nonce: info.nonce ? Buffer.from(info.nonce.valueBlock.valueHexView) : null,
    genTime: info.genTime,
  };
}

async function toTsa(url: string, job: AnchorJob, timeoutMs: number): Promise<string> {
  const req = timeStampRequest(Buffer.from(job.note, "utf8"));
  const res = await fetch(url, {
    method: "POST",
    body: new Uint8Array(req.der),
    headers: { "content-type": "application/timestamp-query" },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`the TSA answered HTTP ${res.status}`);
  const r = parseTimeStampResponse(body);
  if (!r.digest.equals(req.digest)) throw new Error("the TSA stamped another digest than the checkpoint's");
  if (r.nonce && BigInt(`0x${r.nonce.toString("hex")}`) !== BigInt(`0x${req.nonce.toString("hex")}`))
    throw new Error("the TSA's reply carries another nonce");
  return r.token.toString("base64");
}
