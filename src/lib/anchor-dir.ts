// Reads what an auditor kept outside the database for `verify-all --against`: a directory written
// by the directory anchor (every *.checkpoint note, and the *.leaves files of anchored leaf hashes),
// or one checkpoint file. Each note is verified with the log's verifier key before it is used.
import fs from "node:fs/promises";
import path from "node:path";
import { verifyCheckpoint } from "./offline-checkpoint.ts";

export interface Against {
  checkpoints: string[];
  leaves: Record<string, string[]>;
  rejected: { file: string; reason: string }[];
}

export async function readAgainst(target: string, vkey: string): Promise<Against> {
  const st = await fs.stat(target);
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else files.push(p);
    }
  };
  if (st.isDirectory()) await walk(target);
  else files.push(target);
  const out: Against = { checkpoints: [], leaves: {}, rejected: [] };
  const ranges = new Map<string, { from: number; to: number; hashes: string[] }[]>();
  for (const f of files.sort()) {
    if (f.endsWith(".leaves")) {
      const m = /(\d+)-(\d+)\.leaves$/.exec(f);
      const tenant = path.basename(path.dirname(f));
      if (!m) continue;
      const hashes = (await fs.readFile(f, "utf8")).split("\n").filter(Boolean);
      const list = ranges.get(tenant) ?? [];
      list.push({ from: Number(m[1]), to: Number(m[2]), hashes });
      ranges.set(tenant, list);
      continue;
    }
    if (st.isDirectory() && !f.endsWith(".checkpoint")) continue;
    const note = await fs.readFile(f, "utf8");
    try {
      verifyCheckpoint(note, vkey);
      out.checkpoints.push(note);
    } catch (e) {
      out.rejected.push({ file: f, reason: (e as Error).message });
    }
  }
  // The anchored leaf hashes of a tenant, from 0 up to where the ranges stop being contiguous.
  for (const [tenant, list] of ranges) {
    list.sort((a, b) => a.from - b.from);
    const all: string[] = [];
    for (const r of list) {
      if (r.from !== all.length || r.hashes.length !== r.to - r.from) break;
      all.push(...r.hashes);
    }
    if (all.length) out.leaves[tenant] = all;
  }
  return out;
}
