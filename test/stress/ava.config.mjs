// `npm run test:stress`: the slow reliability tests (test/stress/*.test.ts), kept out of `npm test`
// (package.json excludes test/stress/**). test/run.ts starts the throwaway Postgres and forwards
// `--config test/stress/ava.config.mjs` to ava, which then ignores package.json's ava section.
// The files run one at a time: each one loads the 2-core box on its own and reports figures.
export default {
  files: ["test/stress/**/*.test.ts"],
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  workerThreads: false,
  concurrency: 1,
  // Inactivity timeout (ava resets it at every test result); each test also bounds itself.
  timeout: "12m",
};
