// A fixed flood, as a process of its own (so that its own work does not delay the client that is
// being timed): `concurrency` clients, each sending `query` with `key` to `url` again as soon as
// its previous answer arrives, until SIGTERM or `maxSeconds`; then it prints what it got, as JSON
// on stdout ({"200": n, "429 RATE_LIMITED": n, ...}). Run by test/graphql-fair-share.test.ts.
const [url, key, query, concurrency, maxSeconds] = process.argv.slice(2);
const counts: Record<string, number> = {};
let stop = false;
process.once("SIGTERM", () => {
  stop = true;
});
const deadline = Date.now() + Number(maxSeconds ?? 60) * 1000;

async function client(): Promise<void> {
  while (!stop && Date.now() < deadline) {
    let label: string;
    try {
      const res = await fetch(url!, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          authorization: `Bearer ${key}`,
        },
        body: JSON.stringify({ query }),
      });
      const body = (await res.json().catch(() => null)) as {
        errors?: Array<{ extensions?: { code?: string } }>;
      } | null;
      const code = body?.errors?.[0]?.extensions?.code;
      label = code ? `${res.status} ${code}` : String(res.status);
    } catch {
      label = "network error";
      await new Promise((r) => setTimeout(r, 100));
    }
    counts[label] = (counts[label] ?? 0) + 1;
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, () => client()));
process.stdout.write(`${JSON.stringify(counts)}\n`);
