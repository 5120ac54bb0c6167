// Task checkpoint (graphile-worker crontab, RUNPROOF_CHECKPOINT_SCHEDULE, every minute by default):
// signs the head of every tenant log that grew and sends the checkpoints to the anchors
// (src/lib/checkpoints.ts). Without a key configured it says so once (info) and does nothing.
import type { Task } from "graphile-worker";
import { CheckpointKeyMissing, checkpointNow, loadSigner } from "../src/lib/checkpoints.ts";
import type { NoteSigner } from "../src/lib/offline-checkpoint.ts";
import type { WorkerContext } from "../src/lib/worker-context.ts";

export function createCheckpointTask(ctx: WorkerContext): Task {
  let signer: NoteSigner | null = null;
  let warned = false;
  return async () => {
    try {
      signer ??= loadSigner(ctx.config.checkpoint);
    } catch (e) {
      if (!(e instanceof CheckpointKeyMissing)) throw e;
      // Checkpoints are optional (the hash chain and guards work without them): an info line that
      // says what is off and how to turn it on, not a warning on every laptop start.
      if (!warned)
        ctx.logger.info(
          {},
          `checkpoints are off: the tenants' logs are not signed, so a superuser's consistent rewrite of a run is caught only against a root kept elsewhere (${e.message})`,
        );
      warned = true;
      return;
    }
    const r = await checkpointNow(ctx.pool, ctx.config.checkpoint, signer);
    if (r.signed || r.anchored)
      ctx.logger.info({ signed: r.signed, anchored: r.anchored }, "checkpoints signed and anchored");
    for (const f of r.failed) ctx.logger.warn(f, "an anchor failed; it is retried with backoff");
  };
}
