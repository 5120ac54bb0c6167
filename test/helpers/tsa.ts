// A local RFC 3161 timestamping authority for the tests: a tiny HTTP wrapper around
// `openssl ts -reply` with a self-signed TSA certificate (extendedKeyUsage timeStamping).
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";

export const generateCheckpointKeyPem = (): string =>
  generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

export interface TestTsa {
  url: string;
  dir: string;
  cert: string;
  /** `openssl ts -verify` of a token (base64 DER) over data; throws when it does not verify. */
  verify(tokenBase64: string, data: string): string;
  close(): Promise<void>;
}

export async function startTsa(): Promise<TestTsa> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-tsa-"));
  const cert = path.join(dir, "tsa.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      path.join(dir, "tsa.key"),
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=RunProof test TSA",
      "-addext",
      "extendedKeyUsage=critical,timeStamping",
      "-addext",
      "keyUsage=critical,digitalSignature",
    ],
    { stdio: "ignore" },
  );
  fs.writeFileSync(path.join(dir, "serial"), "01\n");
  const cfg = path.join(dir, "tsa.cnf");
  fs.writeFileSync(
    cfg,
    `[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = ${dir}\nserial = $dir/serial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.crt\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n`,
  );
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const q = path.join(dir, `q${++n}.tsq`);
      const r = path.join(dir, `r${n}.tsr`);
      fs.writeFileSync(q, Buffer.concat(chunks));
      try {
        execFileSync("openssl", ["ts", "-reply", "-config", cfg, "-queryfile", q, "-out", r], {
          stdio: "ignore",
        });
        res.writeHead(200, { "content-type": "application/timestamp-reply" });
        res.end(fs.readFileSync(r));
      } catch {
        res.writeHead(400);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    dir,
    cert,
    verify(tokenBase64, data) {
      const tok = path.join(dir, `t${++n}.der`);
      const dat = path.join(dir, `d${n}.txt`);
      fs.writeFileSync(tok, Buffer.from(tokenBase64, "base64"));
      fs.writeFileSync(dat, data);
      return execFileSync(
        "openssl",
        ["ts", "-verify", "-token_in", "-in", tok, "-data", dat, "-CAfile", cert],
        { encoding: "utf8" },
      );
    },
    close: () =>
      new Promise((r) =>
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          r();
        }),
      ),
  };
}
