// The tenant logs' side of offline verification (docs/proof-format.md sections 13-15): RFC 9162
// leaf and node hashes, inclusion and consistency proof verification, C2SP signed notes and
// checkpoints with Ed25519 (node:crypto), and C2SP tlog-cosignature/v1 witness cosignatures.
// No database code: `runproof proof verify` and the witness of the tests use it.
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const ZERO = Uint8Array.of(0);
const ONE = Uint8Array.of(1);

/** The leaf bytes of a sealed run: ["runproof.log-leaf/1", tenant, run, hex(run root), status, finished_at]. */
export function logLeaf(
  tenantId: string,
  runId: string,
  rootHex: string,
  status: string,
  finishedAt: string,
): Buffer {
  return Buffer.from(
    `["runproof.log-leaf/1", "${tenantId}", "${runId}", "${rootHex}", ${JSON.stringify(status)}, ${JSON.stringify(finishedAt)}]`,
    "utf8",
  );
}
export const leafHash = (leaf: Uint8Array): Buffer => sha(ZERO, leaf);
export const nodeHash = (l: Uint8Array, r: Uint8Array): Buffer => sha(ONE, l, r);

/** RFC 9162 MTH over leaf hashes (used by tests and the benchmark; the database keeps the nodes). */
export function treeRoot(leafHashes: Uint8Array[]): Buffer {
  if (leafHashes.length === 0) return sha();
  if (leafHashes.length === 1) return Buffer.from(leafHashes[0]);
  let k = 1;
  while (k * 2 < leafHashes.length) k *= 2;
  return nodeHash(treeRoot(leafHashes.slice(0, k)), treeRoot(leafHashes.slice(k)));
}

/** RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or null when it cannot be one. */
export function rootFromInclusionProof(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: Uint8Array[],
): Buffer | null {
  if (index < 0n || index >= size) return null;
  let fn = index;
  let sn = size - 1n;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/** RFC 9162 section 2.1.4.2: does the proof show that the tree of size `first` is a prefix of the one of size `second`? */
export function verifyConsistency(
  first: bigint,
  second: bigint,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: Uint8Array[],
): boolean {
  const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
  if (first > second || first < 0n) return false;
  if (first === second) return proof.length === 0 && eq(firstRoot, secondRoot);
  if (first === 0n) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = (first & (first - 1n)) === 0n ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr: Buffer = Buffer.from(path[0]);
  let sr: Buffer = Buffer.from(path[0]);
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && eq(fr, firstRoot) && eq(sr, secondRoot);
}

// ---------------------------------------------------------------------------------------------
// C2SP signed notes, checkpoints and cosignatures
// ---------------------------------------------------------------------------------------------

export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" }) as { x?: string };
  if (!jwk.x) throw new Error("not an Ed25519 key");
  return Buffer.from(jwk.x, "base64url");
}
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
    format: "jwk",
  });
}

/** key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]. */
export const keyId = (name: string, type: number, pub: Uint8Array): Buffer =>
  sha(Buffer.from(`${name}\n`, "utf8"), Uint8Array.of(type), pub).subarray(0, 4);

export interface NoteSigner {
  name: string;
  privateKey: KeyObject;
  publicKey: Buffer;
}

export function signerFromPem(name: string, pem: string): NoteSigner {
  if (!name || /[\s+]/.test(name))
    throw new Error(`a key name must be non-empty, without spaces or '+': ${JSON.stringify(name)}`);
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new Error("the checkpoint key must be an Ed25519 private key (runproof checkpoint keygen)");
  return { name, privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/** The C2SP verifier key: <name>+<hex key ID>+<base64(type || public key)>. */
export const verifierKey = (name: string, pub: Uint8Array, type = SIG_ED25519): string =>
  `${name}+${keyId(name, type, pub).toString("hex")}+${Buffer.concat([Uint8Array.of(type), pub]).toString("base64")}`;

export interface Verifier {
  name: string;
  keyId: Buffer;
  type: number;
  publicKey: KeyObject;
}
export function parseVerifierKey(vkey: string): Verifier {
  // The name has no '+'; the key ID is 8 hex digits; the base64 key may hold '+' itself.
  const m = /^([^+\s]+)\+([0-9a-fA-F]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m) throw new Error("a verifier key is <name>+<hex key id>+<base64 key>");
  const [, name, idHex, b64] = m;
  const raw = Buffer.from(b64, "base64");
  if (raw.length !== 33 || (raw[0] !== SIG_ED25519 && raw[0] !== SIG_COSIGNATURE_V1))
    throw new Error("the verifier key is not an Ed25519 key (type 0x01 or 0x04, 32 bytes)");
  const id = keyId(name, raw[0], raw.subarray(1));
  if (id.toString("hex") !== idHex.toLowerCase())
    throw new Error("the verifier key's key ID does not match its name and key");
  return { name, keyId: id, type: raw[0], publicKey: publicKeyFromRaw(raw.subarray(1)) };
}

export interface NoteSignature {
  name: string;
  keyId: Buffer;
  signature: Buffer;
  line: string;
}
export interface ParsedNote {
  body: string;
  signatures: NoteSignature[];
}

/** Splits a signed note into its text (ending in a newline) and its signature lines. */
export function parseNote(note: string): ParsedNote {
  if ([...note].some((ch) => ch < " " && ch !== "\n"))
    throw new Error("a signed note holds no control character but newline");
  const at = note.lastIndexOf("\n\n");
  if (at < 0 || !note.endsWith("\n"))
    throw new Error("not a signed note: no blank line before the signatures, or no final newline");
  const body = note.slice(0, at + 1);
  const signatures: NoteSignature[] = [];
  for (const line of note.slice(at + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error(`not a signature line: ${JSON.stringify(line)}`);
    const raw = Buffer.from(m[2], "base64");
    if (raw.length < 5) throw new Error("a signature is 4 bytes of key ID and the signature");
    signatures.push({ name: m[1], keyId: raw.subarray(0, 4), signature: raw.subarray(4), line: `${line}\n` });
  }
  if (!signatures.length) throw new Error("the note has no signature");
  return { body, signatures };
}

export function signNote(body: string, signer: NoteSigner): string {
  const sig = sign(null, Buffer.from(body, "utf8"), signer.privateKey);
  const id = keyId(signer.name, SIG_ED25519, signer.publicKey);
  return `${body}\n\u2014 ${signer.name} ${Buffer.concat([id, sig]).toString("base64")}\n`;
}

export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Buffer;
  body: string;
  note: string;
}

export function checkpointBody(origin: string, size: bigint | number | string, root: Uint8Array): string {
  return `${origin}\n${size}\n${Buffer.from(root).toString("base64")}\n`;
}

/** Parses a checkpoint's text (origin, size, root; extension lines allowed). Does not check signatures. */
export function parseCheckpointBody(body: string): Omit<Checkpoint, "note" | "body"> {
  const lines = body.split("\n");
  if (lines.length < 4 || !lines[0]) throw new Error("a checkpoint has an origin, a size and a root line");
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1]))
    throw new Error(`the checkpoint size is not a decimal: ${JSON.stringify(lines[1])}`);
  const root = Buffer.from(lines[2], "base64");
  if (root.length !== 32 || root.toString("base64") !== lines[2])
    throw new Error("the checkpoint root is not 32 bytes of base64");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

/**
 * Verifies a checkpoint note with the log's verifier key: a signature by that key (name and key ID)
 * must be present and valid, and no signature by it may fail. Throws with the reason.
 */
export function verifyCheckpoint(note: string, vkey: string | Verifier): Checkpoint {
  const v = typeof vkey === "string" ? parseVerifierKey(vkey) : vkey;
  const parsed = parseNote(note);
  const mine = parsed.signatures.filter((s) => s.name === v.name && s.keyId.equals(v.keyId));
  if (!mine.length)
    throw new Error(`the checkpoint is not signed by ${v.name} (key ID ${v.keyId.toString("hex")})`);
  for (const s of mine)
    if (!verify(null, Buffer.from(parsed.body, "utf8"), v.publicKey, s.signature))
      throw new Error(
        `the checkpoint's signature by ${v.name} does not verify: the checkpoint is forged or altered`,
      );
  return { ...parseCheckpointBody(parsed.body), body: parsed.body, note };
}

/** A C2SP tlog-cosignature/v1 line over a checkpoint body, by a witness key, at `time` (seconds). */
export function cosign(body: string, signer: NoteSigner, time: number): string {
  const msg = Buffer.from(`cosignature/v1\ntime ${time}\n${body}`, "utf8");
  const sig = sign(null, msg, signer.privateKey);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(time));
  const id = keyId(signer.name, SIG_COSIGNATURE_V1, signer.publicKey);
  return `\u2014 ${signer.name} ${Buffer.concat([id, ts, sig]).toString("base64")}\n`;
}

/** Verifies a cosignature line by a witness (its verifier key, type 0x04) over a checkpoint body; returns its time. */
export function verifyCosignature(body: string, line: string, witnessVkey: string | Verifier): number {
  const v = typeof witnessVkey === "string" ? parseVerifierKey(witnessVkey) : witnessVkey;
  if (v.type !== SIG_COSIGNATURE_V1)
    throw new Error("a witness verifier key has type 0x04 (tlog-cosignature)");
  const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)\n?$/.exec(line);
  if (!m || m[1] !== v.name) throw new Error(`not a cosignature line by ${v.name}`);
  const raw = Buffer.from(m[2], "base64");
  if (raw.length !== 4 + 8 + 64 || !raw.subarray(0, 4).equals(v.keyId))
    throw new Error("the cosignature's key ID is not the witness's");
  const time = raw.readBigUInt64BE(4);
  const msg = Buffer.from(`cosignature/v1\ntime ${time}\n${body}`, "utf8");
  if (!verify(null, msg, v.publicKey, raw.subarray(12))) throw new Error("the cosignature does not verify");
  return Number(time);
}

// ---------------------------------------------------------------------------------------------
// A bundle's log section (src/lib/bundle-format.ts): the run's leaf, proof and checkpoint
// ---------------------------------------------------------------------------------------------

export interface BundleLog {
  leaf_index: number;
  leaf: string;
  checkpoint: string | null;
  inclusion_proof: string[] | null;
  consistency: { from_size: number; proof: string[] }[];
}

export interface LogVerdict {
  ok: boolean;
  status: "CHECKPOINTED" | "NOT_CHECKPOINTED" | "BAD_CHECKPOINT" | "NOT_INCLUDED" | "INCONSISTENT";
  reason: string;
  leaf_index: number | null;
  checkpoint_size: number | null;
  consistent_with: number | null;
}

/**
 * Verifies a bundle's log section against the run the bundle proves: the leaf is the run's (its
 * tenant, id, root, status and finished_at, from the run seal text), the checkpoint is signed by
 * the given key, the inclusion proof leads from the leaf to its root, and, when the auditor kept
 * an older checkpoint, the bundle's checkpoint is consistent with it.
 */
export function verifyBundleLog(
  log: BundleLog | null | undefined,
  run: { tenantId: string; runId: string; sealText: string | null },
  opts: { verifierKey: string; kept?: string },
): LogVerdict {
  const base = { leaf_index: log?.leaf_index ?? null, checkpoint_size: null, consistent_with: null };
  if (!log?.checkpoint || !log.inclusion_proof)
    return {
      ...base,
      ok: false,
      status: "NOT_CHECKPOINTED",
      reason:
        "the bundle carries no checkpoint for its run (sealed after the last checkpoint, or exported before one)",
    };
  if (!run.sealText) return { ...base, ok: false, status: "NOT_INCLUDED", reason: "the run is not sealed" };
  const seal = JSON.parse(run.sealText) as unknown[];
  const rootHex = sha(Buffer.from(run.sealText, "utf8")).toString("hex");
  const expected = logLeaf(run.tenantId, run.runId, rootHex, String(seal[4]), String(seal[11]));
  if (expected.toString("utf8") !== log.leaf)
    return {
      ...base,
      ok: false,
      status: "NOT_INCLUDED",
      reason: "the bundle's leaf is not its run's (tenant, run, root, status or finished_at differ)",
    };
  let cp: Checkpoint;
  try {
    cp = verifyCheckpoint(log.checkpoint, opts.verifierKey);
    if (!cp.origin.endsWith(`/${run.tenantId}`))
      throw new Error(`the checkpoint is of log ${cp.origin}, not of tenant ${run.tenantId}'s`);
  } catch (e) {
    return { ...base, ok: false, status: "BAD_CHECKPOINT", reason: (e as Error).message };
  }
  const size = Number(cp.size);
  const root = rootFromInclusionProof(
    BigInt(log.leaf_index),
    cp.size,
    leafHash(expected),
    log.inclusion_proof.map((h) => Buffer.from(h, "hex")),
  );
  if (!root?.equals(cp.root))
    return {
      ...base,
      checkpoint_size: size,
      ok: false,
      status: "NOT_INCLUDED",
      reason: `the inclusion proof of leaf ${log.leaf_index} does not lead to the root of the checkpoint of size ${size}`,
    };
  if (opts.kept) {
    let kept: Checkpoint;
    try {
      kept = verifyCheckpoint(opts.kept, opts.verifierKey);
    } catch (e) {
      return {
        ...base,
        checkpoint_size: size,
        ok: false,
        status: "BAD_CHECKPOINT",
        reason: `the kept checkpoint: ${(e as Error).message}`,
      };
    }
    if (kept.origin !== cp.origin)
      return {
        ...base,
        checkpoint_size: size,
        ok: false,
        status: "INCONSISTENT",
        reason: `the kept checkpoint is of log ${kept.origin}, the bundle's of ${cp.origin}`,
      };
    const [older, newer] = kept.size <= cp.size ? [kept, cp] : [cp, kept];
    const proof =
      older.size === newer.size
        ? []
        : log.consistency
            .find((c) => BigInt(c.from_size) === older.size && newer === cp)
            ?.proof.map((h) => Buffer.from(h, "hex"));
    if (!proof)
      return {
        ...base,
        checkpoint_size: size,
        ok: false,
        status: "INCONSISTENT",
        reason: `the bundle carries no consistency proof from size ${kept.size} to ${size}: export it with --consistency-from ${kept.size}`,
      };
    if (!verifyConsistency(older.size, newer.size, older.root, newer.root, proof))
      return {
        ...base,
        checkpoint_size: size,
        ok: false,
        status: "INCONSISTENT",
        reason: `the bundle's checkpoint (size ${size}) is not consistent with the kept checkpoint (size ${kept.size}): the log was rewritten or forked`,
      };
    return {
      ...base,
      checkpoint_size: size,
      consistent_with: Number(kept.size),
      ok: true,
      status: "CHECKPOINTED",
      reason: `leaf ${log.leaf_index} is in the signed checkpoint of size ${size}, consistent with the kept checkpoint of size ${kept.size}`,
    };
  }
  return {
    ...base,
    checkpoint_size: size,
    ok: true,
    status: "CHECKPOINTED",
    reason: `leaf ${log.leaf_index} is in the signed checkpoint of size ${size}`,
  };
}
