// esbuild bundles the stylesheet the entry imports (src/explorer.ts).
declare module "*.css";
