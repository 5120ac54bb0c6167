// Imported first by the GraphQL modules: grafast reads GRAPHILE_ENV when it is
// loaded and, if unset, prints a warning to stderr (which would clutter CLI
// output). Production mode unless the environment asks for development checks.
process.env.GRAPHILE_ENV ??= "production";
export {};
