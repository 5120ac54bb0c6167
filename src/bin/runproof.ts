#!/usr/bin/env -S node --import=tsx
// The runproof command: `npx runproof ...` in a clone (package.json "bin"; npx puts
// node_modules/.bin first on PATH, so `node` above is the pinned Node 22 of the `node`
// devDependency, and tsx runs this file in that one process); `npm start` is `npx runproof start`.
// Only the wiring of commands, options and exit codes. The commands live
// in src/cli/<command>.ts and are loaded on demand, so `proof verify` (offline) never loads any
// database code. Every command that writes calls the same SQL functions the other interfaces
// call (runproof.enqueue_run, ...): there is one creation path.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  centsArg,
  durationArg,
  timestampArg,
  describeError,
  EXIT,
  EXIT_CODES_HELP,
  exitCodeFor,
  OFFLINE_HELP,
  nonNegativeIntArg,
  positiveIntArg,
  runStatusArg,
  uuidArg,
} from "../cli/common.ts";

const program = new Command("runproof")
  .description("RunProof: a tamper-evident run ledger in Postgres")
  .usage("<command> [options]")
  // Options belong to the command they follow (`proof verify FILE --json` is verify's --json).
  .enablePositionalOptions()
  // Commander errors become exceptions, so usage errors get exit code 2 (see main below).
  .exitOverride();

const json = () => new Option("--json", "print JSON instead of a table");
const tenantOpt = (required: boolean, what = "the tenant") =>
  new Option("-t, --tenant-id <uuid>", what).argParser(uuidArg).makeOptionMandatory(required);
const portArg = (v: string) => {
  const n = nonNegativeIntArg(v);
  if (n > 65535) throw new InvalidArgumentError(`port ${v} is out of range.`);
  return n;
};

// ------------------------------------------------------------------------------------------
// Servers and maintenance
// ------------------------------------------------------------------------------------------

program
  .command("start")
  .description(
    "database (embedded unless DATABASE_URL), migrations, a worker and the GraphQL server in one process; prints a demo tenant's new API key and examples",
  )
  .option("-p, --port <port>", "GraphQL port (default RUNPROOF_PORT, 5678; 0 picks a free one)", portArg)
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option(
    "-c, --concurrency <n>",
    "worker jobs at once (default RUNPROOF_WORKER_CONCURRENCY)",
    positiveIntArg,
  )
  .addOption(new Option("--json", "print the URL, key and ids as one JSON object"))
  .action(async (opts) => (await import("../cli/start.ts")).startCommand(opts));

program
  .command("migrate")
  .description("apply the committed migrations (graphile-worker's schema first); idempotent")
  .action(async () => (await import("../cli/migrate.ts")).migrateCommand());

program
  .command("worker")
  .description("run a worker process: registers the skills, then executes queued runs until Ctrl-C")
  .option("-c, --concurrency <n>", "jobs at once (default RUNPROOF_WORKER_CONCURRENCY)", positiveIntArg)
  .action(async (opts) => (await import("../cli/worker.ts")).workerCommand(opts));

program
  .command("serve")
  .description("run the GraphQL server only (API keys map to tenants; run workers separately)")
  .option("-p, --port <port>", "port (default RUNPROOF_PORT, 5678; 0 picks a free one)", portArg)
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option(
    "--read-url <url>",
    "a read-only replica (streaming hot standby) for GraphQL queries; mutations and subscriptions stay on DATABASE_URL (default RUNPROOF_READ_DATABASE_URL)",
  )
  .action(async (opts) => (await import("../cli/serve.ts")).serveCommand(opts));

program
  .command("sql")
  .description(
    "run a SQL statement as the database owner and print its rows (no psql needed); without one, print a psql command line",
  )
  .argument("[statement]", 'e.g. "select * from runproof.verify_all()"')
  .addOption(json())
  .action(async (statement, opts) => (await import("../cli/sql.ts")).sqlCommand(statement, opts));

program
  .command("psql")
  .description("open psql on the database (embedded unless DATABASE_URL); further arguments go to psql")
  .argument("[psql-args...]", "passed to psql, e.g. -c 'select 1'")
  .allowUnknownOption()
  .passThroughOptions()
  .action(async (args) => (await import("../cli/sql.ts")).psqlCommand(args));

// ------------------------------------------------------------------------------------------
// Tenants, API keys, agents, skills
// ------------------------------------------------------------------------------------------

const tenant = program.command("tenant").description("create and list tenants");
tenant
  .command("create")
  .description("create a tenant (runproof_private.create_tenant)")
  .argument("<name>", "a unique name")
  .option("-b, --budget-cents <n>", "daily budget in cents", centsArg, 10000)
  .addOption(json())
  .action(async (name, opts) => (await import("../cli/tenant.ts")).tenantCreate(name, opts));
tenant
  .command("list")
  .description("list tenants with their budgets and counts")
  .addOption(json())
  .action(async (opts) => (await import("../cli/tenant.ts")).tenantList(opts));
tenant
  .command("retention")
  .description(
    "how long a tenant's step payloads are kept after their run finished (then the worker erases them)",
  )
  .argument("<tenant-id>", "the tenant", uuidArg)
  .addOption(new Option("--keep <interval>", "e.g. '180 days' (a PostgreSQL interval)").conflicts("forever"))
  .option("--forever", "keep payloads (the default)")
  .addOption(json())
  .action(async (tenantId, opts) => {
    if (!opts.keep && !opts.forever) throw new InvalidArgumentError("pass --keep <interval> or --forever");
    await (await import("../cli/erase.ts")).retentionCommand(tenantId, opts);
  });

const apiKey = program
  .command("api-key")
  .description("create, revoke and list API keys (only a key's SHA-256 is stored)");
apiKey
  .command("create")
  .description("create an API key for a tenant and print it, once")
  .addOption(tenantOpt(true))
  .option("-l, --label <text>", "what the key is for", "")
  .addOption(
    new Option("--expires-in <duration>", "the key stops working after this long: 30d, 12h, 90m, 3600s, 2w")
      .argParser(durationArg)
      .conflicts("expiresAt"),
  )
  .addOption(
    new Option(
      "--expires-at <time>",
      "the key stops working at this ISO 8601 time, e.g. 2026-12-31T23:59:59Z",
    ).argParser(timestampArg),
  )
  .addOption(json())
  .action(async (opts) => (await import("../cli/api-key.ts")).apiKeyCreate(opts));
apiKey
  .command("revoke")
  .description("revoke an API key: it authenticates nothing from then on")
  .argument("<key-id>", "the key's id (npx runproof api-key list)", uuidArg)
  .addOption(tenantOpt(true))
  .addOption(json())
  .action(async (keyId, opts) => (await import("../cli/api-key.ts")).apiKeyRevoke(keyId, opts));
apiKey
  .command("list")
  .description("list a tenant's keys: id, prefix, label, created, expires, revoked (never the key)")
  .addOption(tenantOpt(true))
  .addOption(json())
  .action(async (opts) => (await import("../cli/api-key.ts")).apiKeyList(opts));

const agent = program.command("agent").description("create and list agents");
agent
  .command("create")
  .description("create an agent for a tenant (runproof.create_agent)")
  .addOption(tenantOpt(true))
  .requiredOption("-n, --name <name>", "a name, unique within the tenant")
  .option("-d, --description <text>", "what the agent does")
  .option(
    "-s, --allowed-skills <list>",
    "comma-separated skills its runs may call (default: every registered skill)",
  )
  .addOption(json())
  .action(async (opts) => (await import("../cli/agent.ts")).agentCreate(opts));
agent
  .command("list")
  .description("list a tenant's agents")
  .addOption(tenantOpt(true))
  .addOption(json())
  .action(async (opts) => (await import("../cli/agent.ts")).agentList(opts));

const skills = program.command("skills").description("the skill registry");
skills
  .command("list")
  .description("list the registered skills (plans may only name these)")
  .addOption(json())
  .action(async (opts) => (await import("../cli/skills.ts")).skillsList(opts));

// ------------------------------------------------------------------------------------------
// Runs
// ------------------------------------------------------------------------------------------

program
  .command("run")
  .description("enqueue a run (runproof.enqueue_run); with --wait, follow it live and print its proof")
  .addOption(tenantOpt(true))
  .requiredOption("-a, --agent <id-or-name>", "the agent (its id or its name)")
  .requiredOption(
    "-g, --goal <text>",
    "what the run is for; without --plan-file the planner turns it into a plan",
  )
  .option("--origin-system-id <id>", "the system creating the run", "runproof-cli")
  .option(
    "--plan-file <file>",
    'a JSON plan {"version":1,"steps":[{"skill":...,"input":{...}}]} (\'-\' reads stdin)',
  )
  .option("--idempotency-key <key>", "the same key for the same tenant returns the same run")
  .option("--max-attempts <n>", "attempts before a transient failure fails the run (1-20)", positiveIntArg, 3)
  .option("-w, --wait", "follow the run live until it ends; exit 0 only if it succeeded")
  .option(
    "--timeout <seconds>",
    "with --wait: give up after this long (exit 1; the run carries on)",
    positiveIntArg,
  )
  .addOption(json())
  .addHelpText(
    "after",
    `
With --wait, one line is printed per recorded step (index, plan step, skill, status, duration,
cost), then the final status and the proof summary; exit 0 if the run succeeded, 1 otherwise.
Ctrl-C stops following (exit 130); the run itself carries on.`,
  )
  .action(async (opts) =>
    (await import("../cli/run.ts")).runCommand({
      ...opts,
      timeout: opts.timeout === undefined ? undefined : opts.timeout * 1000,
    }),
  );

const runs = program.command("runs").description("inspect runs");
runs
  .command("get")
  .description("a run with its plan, traces, steps and incidents")
  .argument("<run-id>", "the run", uuidArg)
  .addOption(tenantOpt(false, "the run's tenant (found from the run id if omitted)"))
  .addOption(json())
  .action(async (runId, opts) => (await import("../cli/runs.ts")).runsGet(runId, opts));
runs
  .command("list")
  .description("recent runs, newest first")
  .addOption(tenantOpt(false, "only this tenant's runs"))
  .option("-s, --status <status>", "only runs with this status", runStatusArg)
  .option("-n, --limit <n>", "at most this many", positiveIntArg, 20)
  .addOption(json().conflicts("quiet"))
  .option("-q, --quiet", "print only the run ids, one a line: RUN_ID=$(npx runproof runs list -n 1 -q)")
  .action(async (opts) => (await import("../cli/runs.ts")).runsList(opts));
runs
  .command("wait")
  .description(
    "follow a run until it ends (as run --wait does), then print its proof; exit 0 only if it succeeded",
  )
  .argument("<run-id>", "the run", uuidArg)
  .addOption(tenantOpt(false, "the run's tenant (found from the run id if omitted)"))
  .option("--timeout <seconds>", "give up after this long (exit 1; the run carries on)", positiveIntArg)
  .addOption(json())
  .addHelpText(
    "after",
    `
With --json, {run, proof} on stdout at the end and the live lines on stderr.`,
  )
  .action(async (runId, opts) =>
    (await import("../cli/runs.ts")).runsWait(runId, {
      ...opts,
      timeout: opts.timeout === undefined ? undefined : opts.timeout * 1000,
    }),
  );

// ------------------------------------------------------------------------------------------
// Proofs
// ------------------------------------------------------------------------------------------

const proof = program
  .command("proof")
  .description("verify a run in the database (runproof.run_proof); export and offline-verify proof bundles")
  .argument("<run-id>", "the run", uuidArg)
  .addOption(tenantOpt(false, "the run's tenant (found from the run id if omitted)"))
  .addOption(json())
  .addHelpText(
    "after",
    `
Prints integrity model, verification status, chain length, root hash, trace and step counts and,
unless VERIFIED, the first bad attempt/trace/step and the reason. Exit 3 unless VERIFIED.`,
  )
  .action(async (runId, opts) => (await import("../cli/proof.ts")).proofShow(runId, opts));
proof
  .command("export")
  .description("write a run's proof bundle (JSON: canonical step bytes, hashes, seals)")
  .argument("<run-id>", "the run", uuidArg)
  .addOption(tenantOpt(false, "the run's tenant (found from the run id if omitted)"))
  .option("-o, --output <file>", "write here instead of stdout")
  .option(
    "--consistency-from <size...>",
    "add consistency proofs from these checkpoint sizes to the bundle's checkpoint",
    (v: string, prev: number[] = []) => [...prev, nonNegativeIntArg(v)],
  )
  .action(async (runId, opts) => (await import("../cli/proof.ts")).proofExport(runId, opts));
proof
  .command("verify")
  .description("verify a bundle OFFLINE: no database, nor DATABASE_URL, is used; SHA-256 only")
  .argument("<bundle-file>", "a file written by proof export ('-' reads stdin)")
  .option("--expect-root <hex>", "also require this run root (one you recorded outside the database)")
  .option(
    "--key <verifier-key>",
    "the log's verifier key (NAME+ID+KEY): also check the run's leaf, inclusion proof and signed checkpoint (default: $RUNPROOF_CHECKPOINT_VERIFIER_KEY)",
  )
  .option(
    "--checkpoint <file>",
    "an older checkpoint you kept: the bundle's checkpoint must be consistent with it",
  )
  .addOption(json())
  .action(async (file, opts) => (await import("../cli/proof-verify.ts")).proofVerify(file, opts));

program
  .command("erase")
  .description(
    "erase step payloads (input, output, error) of a run, or of a tenant's runs older than an age; proofs stay VERIFIED",
  )
  .addOption(
    new Option("--run <run-id>", "the run whose payloads to erase").argParser(uuidArg).conflicts("olderThan"),
  )
  .option("--older-than <interval>", "erase the payloads of runs that finished longer ago, e.g. '30 days'")
  .requiredOption("--reason <text>", "why (recorded with the erasure), e.g. 'GDPR request 2026-117'")
  .addOption(tenantOpt(false, "the tenant (needed with --older-than; found from the run with --run)"))
  .addOption(json())
  .addHelpText(
    "after",
    `
Records the erasure (who, when, why, which steps) in runproof.payload_erasures; every hash stays as it
was, so proofs and bundles still verify, with the erased steps counted.`,
  )
  .action(async (opts) => {
    if (!opts.run && !opts.olderThan)
      throw new InvalidArgumentError("pass --run <run-id> or --older-than <interval>");
    await (await import("../cli/erase.ts")).eraseCommand(opts);
  });

program
  .command("verify-all")
  .description("DBA scan: run_proof for every run (progress bar on stderr), plus orphaned traces and steps")
  .addOption(tenantOpt(false, "only this tenant"))
  .option("--batch-size <n>", "runs verified per query", positiveIntArg, 50)
  .option(
    "--jobs <n>",
    "connections verifying at once, all reading one snapshot (default: this machine's cores, at most 8)",
    positiveIntArg,
  )
  .option(
    "--against <dir-or-file>",
    "also verify each tenant's log against checkpoints kept outside (a directory anchor, or one checkpoint file)",
  )
  .option(
    "--key <verifier-key>",
    "the log's verifier key for --against (default: $RUNPROOF_CHECKPOINT_VERIFIER_KEY)",
  )
  .option("--no-progress", "no progress bar")
  .addOption(json())
  .addHelpText(
    "after",
    `
Exit 0 when every run is VERIFIED or IN_PROGRESS and nothing is orphaned, 3 otherwise.`,
  )
  .action(async (opts) => (await import("../cli/verify-all.ts")).verifyAll(opts));

const checkpoint = program
  .command("checkpoint")
  .description(
    "signed checkpoints of the tenants' Merkle logs (C2SP tlog-checkpoint, Ed25519), and their anchors",
  );
checkpoint
  .command("now")
  .description(
    "sign every log that grew and send the checkpoints to the anchors (what the worker does every minute)",
  )
  .addOption(json())
  .action(async (opts) => (await import("../cli/checkpoint.ts")).checkpointNowCommand(opts));
checkpoint
  .command("keygen")
  .description("make an Ed25519 checkpoint signing key (PKCS#8 PEM) and print its verifier key")
  .option(
    "-o, --output <file>",
    "write the private key here (mode 0600, never overwritten) instead of stdout",
  )
  .option("--name <key-name>", "the key name (default: $RUNPROOF_CHECKPOINT_KEY_NAME or runproof.local/log)")
  .addOption(json())
  .action(async (opts) => (await import("../cli/checkpoint.ts")).checkpointKeygen(opts));
checkpoint
  .command("show")
  .description(
    "a tenant's log: size, latest checkpoint, key name and verifier key, not checkpointed runs, anchor backlog",
  )
  .addOption(tenantOpt(true))
  .addOption(json())
  .action(async (opts) => (await import("../cli/checkpoint.ts")).checkpointShow(opts));
checkpoint
  .command("list")
  .description("a tenant's checkpoints, newest first, with the anchors that took them and those pending")
  .addOption(tenantOpt(true))
  .option("--limit <n>", "how many", positiveIntArg, 20)
  .addOption(json())
  .action(async (opts) => (await import("../cli/checkpoint.ts")).checkpointList(opts));
checkpoint
  .command("consistency")
  .description("the RFC 9162 consistency proof between two sizes of a tenant's log (e.g. two checkpoints)")
  .addOption(tenantOpt(true))
  .requiredOption("--from <size>", "the older size", nonNegativeIntArg)
  .requiredOption("--to <size>", "the newer size", nonNegativeIntArg)
  .addOption(json())
  .action(async (opts) => (await import("../cli/checkpoint.ts")).checkpointConsistency(opts));

program
  .command("demo")
  .description(
    "a narrated, one-minute tour: a run, its proof, a refused UPDATE, a superuser's edit caught, offline bundles",
  )
  .option("--pause-ms <ms>", "pause between sections", nonNegativeIntArg, 5000)
  .option("--out-dir <dir>", "where to write the bundles (default: a new temporary directory)")
  .action(async (opts) => (await import("../cli/demo.ts")).demoCommand(opts));

let commanderPrinted = false;

// The exit codes in every command's help, and commander's own errors (unknown option, missing
// argument, ...) in the one form every error has: `runproof: <message>` and a hint line.
(function addExitCodes(cmd: Command) {
  const offline = cmd.name() === "verify" && cmd.parent?.name() === "proof";
  cmd.addHelpText("after", offline ? OFFLINE_HELP : EXIT_CODES_HELP);
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  const help = `npx ${names.join(" ")} --help`;
  cmd.configureOutput({
    outputError: (message, write) => {
      commanderPrinted = true;
      write(
        `${usageMessage(message)}\n  hint: ${help} lists ${cmd.commands.length ? "its commands" : "its options"}\n`,
      );
    },
  });
  for (const sub of cmd.commands) addExitCodes(sub);
})(program);

/** "error: unknown option '--x'\n" → "runproof: unknown option '--x'". */
function usageMessage(message: string): string {
  return `runproof: ${message.trim().replace(/^error: /, "")}`;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; everything else commander rejects is a usage error. Commander
      // printed why when it rejected the command line; an action's own InvalidArgumentError not.
      if (e.exitCode !== 0 && !commanderPrinted) process.stderr.write(`${usageMessage(e.message)}\n`);
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    process.stderr.write(`runproof: ${describeError(e)}\n`);
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv);
// Everything a command opened is closed by now; should a stray handle linger, do not hang.
setTimeout(() => process.exit(), 3000).unref();
