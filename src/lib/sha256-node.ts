// SHA-256 for the offline verifier on Node: node:crypto, synchronous and several times faster than
// Web Crypto's per-call promise for the many small inputs of a bundle. Same bytes, same digests.
import { createHash } from "node:crypto";
import type { Sha256 } from "./offline-verify.ts";

export const nodeSha256: Sha256 = (data) => createHash("sha256").update(data).digest();
