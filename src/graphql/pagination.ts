// Every connection returns at most one page: without first/last, the first `pageSize` rows
// (pageInfo.hasNextPage says whether there are more); first/last above `pageSize` are refused
// before execution by src/graphql/limits.ts (PAGE_SIZE_LIMIT_EXCEEDED). PostGraphile alone
// returns every row of a connection queried without first, e.g. a tenant's million runs.
//
// The default is applied in the plan, not as the argument's default value: a schema default
// `first: Int = 100` would also apply next to `last: 5` and turn it into "the last 5 of the
// first 100".
import { lambda, type Step } from "postgraphile/grafast";

interface PaginatedStep extends Step {
  setFirst(first: Step | number): void;
}

export function makePaginationPlugin(pageSize: number): GraphileConfig.Plugin {
  // Connection fields whose first/last arguments this plugin took over, by coordinate. The
  // arguments are added by an args hook, which runs after the field hook that wraps the plan.
  const paginated = new Map<string, { hasLast: boolean }>();
  return {
    name: "RunProofPaginationPlugin",
    description: `RunProof: connections without first/last return the first ${pageSize} rows`,
    version: "1.0.0",
    after: ["PgFirstLastBeforeAfterArgsPlugin"],
    schema: {
      hooks: {
        GraphQLObjectType_fields_field_args(args, _build, context) {
          const { isPgFieldConnection, fieldName } = context.scope;
          const first = args.first;
          if (!isPgFieldConnection || !first) return args;
          paginated.set(`${context.Self.name}.${fieldName}`, { hasLast: Boolean(args.last) });
          return {
            ...args,
            first: {
              ...first,
              description: `${first.description ?? "Only read the first `n` values of the set."} At most the page size (RUNPROOF_GRAPHQL_MAX_PAGE_SIZE, default 100; more is refused); without first or last, the first page-size values.`,
              // Applied by the field's plan below, together with the default.
              applyPlan: undefined,
            },
          };
        },
        GraphQLObjectType_fields_field(field, _build, context) {
          const { isPgFieldConnection, fieldName } = context.scope;
          const originalPlan = field.plan;
          if (!isPgFieldConnection || !originalPlan) return field;
          const coordinate = `${context.Self.name}.${fieldName}`;
          return {
            ...field,
            plan($parent, fieldArgs, info) {
              const $connection = (originalPlan as (...a: unknown[]) => PaginatedStep)(
                $parent,
                fieldArgs,
                info,
              );
              const spec = paginated.get(coordinate);
              if (!spec) return $connection;
              const $first = fieldArgs.getRaw("first") as Step<number | null | undefined>;
              const $limit = spec.hasLast
                ? lambda(
                    [$first, fieldArgs.getRaw("last") as Step<number | null | undefined>],
                    ([first, last]) => first ?? (last == null ? pageSize : null),
                    true,
                  )
                : lambda($first, (first) => first ?? pageSize, true);
              $connection.setFirst($limit);
              return $connection;
            },
          };
        },
      },
    },
  };
}
