// The peer in the execute section: DBOS Transact (npm @dbos-inc/dbos-sdk) running the same N-step
// no-op workflows on the same Postgres server, in a child process of its own (DBOS is a process-wide
// singleton). Each step is a DBOS.runStep, checkpointed in DBOS's system database; `concurrency`
// loops start workflows (DBOS.startWorkflow, then getResult) like a worker of that concurrency.
//
//   tsx bench/dbos-peer.ts <system database url> <workflows> <steps per workflow> <concurrency> <latency samples>
//
// Prints one JSON line: { steps_per_s, workflows_per_s, latency_ms: [...] } (latency: a 1-step
// workflow started and its result read, one at a time).
import { DBOS } from "@dbos-inc/dbos-sdk";

const [url, workflowsArg, stepsArg, concurrencyArg, samplesArg] = process.argv.slice(2);
const workflows = Number(workflowsArg);
const steps = Number(stepsArg);
const concurrency = Number(concurrencyArg);
const samples = Number(samplesArg ?? 0);

async function noop(i: number): Promise<{ echo: { i: number } }> {
  return { echo: { i } };
}

const noopWorkflow = DBOS.registerWorkflow(
  async (n: number) => {
    for (let i = 0; i < n; i++) await DBOS.runStep(() => noop(i), { name: "noop" });
    return n;
  },
  { name: "bench_noop_workflow" },
);

async function main(): Promise<void> {
  DBOS.setConfig({
    name: "runproof-bench-peer",
    systemDatabaseUrl: url,
    systemDatabasePoolSize: concurrency + 4,
    logLevel: "error",
  });
  await DBOS.launch();
  try {
    const runOne = async (n: number) => (await DBOS.startWorkflow(noopWorkflow)(n)).getResult();
    // Warm-up: the statements and the tables.
    for (let i = 0; i < 20; i++) await runOne(steps);
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < workflows) {
          next++;
          await runOne(steps);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const latency: number[] = [];
    for (let i = 0; i < samples + 5; i++) {
      const t0 = performance.now();
      await runOne(1);
      if (i >= 5) latency.push(performance.now() - t0);
    }
    process.stdout.write(
      `${JSON.stringify({ steps_per_s: (workflows * steps) / seconds, workflows_per_s: workflows / seconds, latency_ms: latency })}\n`,
    );
  } finally {
    await DBOS.shutdown();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
