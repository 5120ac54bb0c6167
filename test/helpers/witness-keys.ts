// Key helpers for the test witness (re-exports of the offline verifier's note functions).
import { generateCheckpointKeyPem } from "./tsa.ts";
import { type NoteSigner, signerFromPem } from "../../src/lib/offline-checkpoint.ts";

export {
  cosign,
  type NoteSigner,
  parseNote,
  SIG_COSIGNATURE_V1,
  verifierKey,
  verifyCheckpoint,
  verifyConsistency,
} from "../../src/lib/offline-checkpoint.ts";

export const generateSigner = (name: string): NoteSigner => signerFromPem(name, generateCheckpointKeyPem());
