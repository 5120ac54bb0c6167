// What one GraphQL document may ask of the server, checked before anything is planned or sent to
// Postgres, with a coded refusal (HTTP 400, extensions { code, hint, limit, actual }) instead of
// a masked 500 or a 20-second answer. The checks, in the order they run (each one protects the
// next from the input the previous one refused):
//
//   QUERY_NESTING_TOO_DEEP    brackets ({ [ () nested deeper than MAX_NESTING in the text, counted
//                             without parsing (graphql-js parses recursively: 5,000 levels
//                             overflowed the stack, "Maximum call stack size exceeded")
//   ALIAS_LIMIT_EXCEEDED      more aliased fields than maxAliases (500 aliases with different
//                             arguments make 500 plans)
//   DEPTH_LIMIT_EXCEEDED      selection sets deeper than maxDepth, lists inside lists deeper
//                             than MAX_LIST_DEPTH, a field inside itself more than twice
//                             (@graphile/depth-limit, Graphile's validation rule)
//   FIELD_LIMIT_EXCEEDED      more fields than maxFields, fragments expanded where they are used
//   PAGE_SIZE_LIMIT_EXCEEDED  first/last above maxPageSize on any connection (refused, never
//                             silently capped; a connection without first/last returns the first
//                             maxPageSize rows: src/graphql/pagination.ts)
//   COST_LIMIT_EXCEEDED       the estimated cost above maxCost (graphql-query-complexity, with
//                             the request's variables): every field costs 1 (JSON values 5, a
//                             proof 100, a Run.bundle 10,000, a mutation or subscription 10)
//                             plus its selections,
//                             and a connection multiplies its selections by its page size
//                             (first, last, or maxPageSize without them; Run.traces by at most
//                             MAX_ATTEMPTS). Introspection (__schema, __type) costs nothing: it
//                             reads the schema, not the database.
//
// Documents that fail to parse or to validate are left to grafserv, which reports them as usual.
import { isExactDouble } from "../lib/exact-json.ts";
import { depthLimit } from "@graphile/depth-limit";
import { type ComplexityEstimator, getComplexity } from "graphql-query-complexity";
import {
  type DocumentNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  getNamedType,
  isObjectType,
  isScalarType,
  Kind,
  type OperationDefinitionNode,
  parse,
  validate,
  visit,
} from "postgraphile/graphql";
import { MAX_JSON_DEPTH } from "./input-guard.ts";

/** Brackets nested deeper than this are refused before parsing (the JSON body limit, too). */
export const MAX_NESTING = MAX_JSON_DEPTH;
/** Lists inside lists (runs > traces > steps is 3); @graphile/depth-limit's default. */
export const MAX_LIST_DEPTH = 4;
/** How often a field may appear inside itself (run > agent > runs > agent > runs: twice). */
export const MAX_SELF_REFERENTIAL_DEPTH = 2;
/**
 * The most traces a run can have: runs.max_attempts is 1 to 20 (a check constraint and
 * enqueue_run; test/graphql-limits.test.ts asserts the database agrees).
 */
export const MAX_ATTEMPTS = 20;

export const COST_WEIGHTS = {
  field: 1,
  json: 5,
  proof: 100,
  /** Run.bundle (src/graphql/bundle-field.ts): every record of the run, and its proof; a page of runs' bundles is refused. */
  bundle: 10_000,
  rootOperation: 10,
} as const;

export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxFields: number;
  maxCost: number;
  maxPageSize: number;
}

export type LimitCode =
  | "QUERY_NESTING_TOO_DEEP"
  | "DEPTH_LIMIT_EXCEEDED"
  | "ALIAS_LIMIT_EXCEEDED"
  | "FIELD_LIMIT_EXCEEDED"
  | "PAGE_SIZE_LIMIT_EXCEEDED"
  | "COST_LIMIT_EXCEEDED"
  | "INEXACT_NUMBER";

/** A refusal: what the client sees as extensions { code, hint, limit, actual }. */
export interface LimitProblem {
  code: LimitCode;
  message: string;
  hint: string;
  /** The limit and what the request asked for (absent for a refusal that is not a limit). */
  limit?: number;
  actual?: number;
  /** The setting that changes the limit (for operators), if any. */
  setting?: string;
}

class LimitExceeded extends Error {
  constructor(readonly problem: LimitProblem) {
    super(problem.message);
  }
}

/**
 * The deepest nesting of { [ ( in a GraphQL document, outside strings and comments, without
 * parsing it; stops counting once past `stopAt`.
 */
export function documentNesting(source: string, stopAt = MAX_NESTING): number {
  let depth = 0;
  let max = 0;
  const n = source.length;
  for (let i = 0; i < n; i++) {
    const c = source.charCodeAt(i);
    if (c === 0x23 /* # */) {
      while (i < n && source.charCodeAt(i) !== 0x0a && source.charCodeAt(i) !== 0x0d) i++;
    } else if (c === 0x22 /* " */) {
      if (source.startsWith('"""', i)) {
        // Block string: ends at the next """ not escaped as \"""
        i += 3;
        while (i < n && !source.startsWith('"""', i)) i += source.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        i++;
        while (i < n) {
          const d = source.charCodeAt(i);
          if (d === 0x5c /* \ */) i += 2;
          else if (d === 0x22 || d === 0x0a || d === 0x0d) break;
          else i++;
        }
      }
    } else if (c === 0x7b || c === 0x5b || c === 0x28) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAt) return max;
      }
    } else if (c === 0x7d || c === 0x5d || c === 0x29) {
      depth--;
    }
  }
  return max;
}

export interface AnalyzedRequest {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

export interface QueryAnalysis {
  /** null: the request may go on (or is malformed, which grafserv reports). */
  problem: LimitProblem | null;
  /** The estimated cost, when it was computed. */
  cost?: number;
  /** Whether every selected root field is __schema, __type or __typename. */
  introspectionOnly: boolean;
  /** The operation the request runs, when the document parsed and names one. */
  operationType?: "query" | "mutation" | "subscription";
}

interface StaticVerdict {
  document?: DocumentNode;
  problem: LimitProblem | null;
}

/**
 * Checks documents against `limits` for one schema. Parse results and the checks that do not
 * depend on variables are cached per document text (like grafserv's own parse cache).
 */
export class QueryLimiter {
  private readonly cache = new Map<string, StaticVerdict>();
  private readonly depthRule;

  constructor(
    private readonly schema: GraphQLSchema,
    readonly limits: QueryLimits,
    private readonly cacheSize = 500,
  ) {
    this.depthRule = depthLimit({
      maxDepth: limits.maxDepth,
      maxListDepth: MAX_LIST_DEPTH,
      maxSelfReferentialDepth: MAX_SELF_REFERENTIAL_DEPTH,
      // graphql-js's own introspection query (Ruru's, GraphiQL's) nests 14 deep with __Type.ofType
      // 9 times, past the rule's defaults (12, 8). Introspection reads the schema, not the database.
      maxIntrospectionDepth: 16,
      maxDepthByFieldCoordinates: { "__Type.ofType": 10 },
      revealDetails: true,
    });
  }

  analyze(req: AnalyzedRequest): QueryAnalysis {
    const verdict = this.staticVerdict(req.query);
    if (verdict.problem || !verdict.document) {
      return { problem: verdict.problem, introspectionOnly: false };
    }
    const document = verdict.document;
    const operation = pickOperation(document, req.operationName);
    if (!operation) return { problem: null, introspectionOnly: false };
    const introspectionOnly = isIntrospectionOnly(document, operation);
    const operationType = operation.operation;
    try {
      const cost = this.cost(document, req);
      if (cost > this.limits.maxCost) {
        return {
          cost,
          introspectionOnly,
          operationType,
          problem: {
            code: "COST_LIMIT_EXCEEDED",
            message: `The query's estimated cost is ${cost}, above the limit of ${this.limits.maxCost}.`,
            hint: "ask for fewer rows (first/last on each connection) or fewer nested connections and proofs, and page with after: pageInfo.endCursor",
            limit: this.limits.maxCost,
            actual: cost,
            setting: "RUNPROOF_GRAPHQL_MAX_COST",
          },
        };
      }
      return { problem: null, cost, introspectionOnly, operationType };
    } catch (e) {
      if (e instanceof LimitExceeded) return { problem: e.problem, introspectionOnly, operationType };
      // Bad variables or arguments: execution reports them with their usual messages.
      return { problem: null, introspectionOnly, operationType };
    }
  }

  private staticVerdict(query: string): StaticVerdict {
    // Only small documents are cached: a cache of 500 two-megabyte ones would be a gigabyte.
    const cacheable = query.length <= 64 * 1024;
    const cached = cacheable ? this.cache.get(query) : undefined;
    if (cached) return cached;
    const verdict = this.computeStaticVerdict(query);
    if (cacheable) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(query, verdict);
    }
    return verdict;
  }

  private computeStaticVerdict(query: string): StaticVerdict {
    const nesting = documentNesting(query);
    if (nesting > MAX_NESTING) {
      return {
        problem: {
          code: "QUERY_NESTING_TOO_DEEP",
          message: `The query nests brackets more than ${MAX_NESTING} levels deep; it was not parsed.`,
          hint: "flatten the query; pass large or nested values (plans, inputs) as JSON variables",
          limit: MAX_NESTING,
          actual: nesting,
        },
      };
    }
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch {
      return { problem: null }; // grafserv reports the syntax error
    }
    let aliases = 0;
    let inexact: string | null = null;
    visit(document, {
      Field(node) {
        if (node.alias) aliases++;
      },
      // graphql-js keeps a number literal's text; JSON values (plans, inputs) would get Number(text).
      IntValue(node) {
        if (!inexact && !isExactDouble(node.value)) inexact = node.value;
      },
      FloatValue(node) {
        if (!inexact && !isExactDouble(node.value)) inexact = node.value;
      },
    });
    if (inexact) {
      return {
        document,
        problem: {
          code: "INEXACT_NUMBER",
          message: `The query holds the number ${inexact}, which no 64-bit float holds exactly: RunProof would record and run another number.`,
          hint: "pass such numbers as strings, or round them to a value a double holds",
        },
      };
    }
    if (aliases > this.limits.maxAliases) {
      return {
        document,
        problem: {
          code: "ALIAS_LIMIT_EXCEEDED",
          message: `The query has ${aliases} aliased fields, above the limit of ${this.limits.maxAliases}.`,
          hint: "ask for a list instead of many aliases (e.g. runs(condition: ...) or runs(first: ...)), or send several requests",
          limit: this.limits.maxAliases,
          actual: aliases,
          setting: "RUNPROOF_GRAPHQL_MAX_ALIASES",
        },
      };
    }
    const depthErrors = validate(this.schema, document, [this.depthRule]);
    if (depthErrors.length) {
      const detail = depthErrors[0]!.message.replace(/^'[^']*' exceeds operation depth limits: ?/, "");
      const m =
        /depth (\d+) exceeds maximum of (\d+)/.exec(detail) ??
        /nested (\d+) times which exceeds .*?(\d+)/.exec(detail);
      return {
        document,
        problem: {
          code: "DEPTH_LIMIT_EXCEEDED",
          message: `The query is too deep: ${detail.replace(/\.$/, "")}.`,
          hint: `nest at most ${this.limits.maxDepth} selection sets, ${MAX_LIST_DEPTH} lists inside each other and a field inside itself at most ${MAX_SELF_REFERENTIAL_DEPTH} times; fetch deeper data with a second query by id`,
          limit: m ? Number(m[2]) : this.limits.maxDepth,
          actual: m ? Number(m[1]) : this.limits.maxDepth + 1,
          setting: "RUNPROOF_GRAPHQL_MAX_DEPTH",
        },
      };
    }
    return { document, problem: null };
  }

  private cost(document: DocumentNode, req: AnalyzedRequest): number {
    const { maxFields, maxPageSize } = this.limits;
    const mutationType = this.schema.getMutationType();
    const subscriptionType = this.schema.getSubscriptionType();
    let fields = 0;
    const estimator: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
      fields++;
      if (fields > maxFields) throw tooManyFields(maxFields, fields);
      if (type.name.startsWith("__") || field.name.startsWith("__")) return 0;
      const coordinate = `${type.name}.${field.name}`;
      const named = getNamedType(field.type);
      let weight: number = COST_WEIGHTS.field;
      if (type === mutationType || type === subscriptionType) weight = COST_WEIGHTS.rootOperation;
      else if (field.name === "proof") weight = COST_WEIGHTS.proof;
      else if (coordinate === "Run.bundle") weight = COST_WEIGHTS.bundle;
      else if (isScalarType(named) && named.name === "JSON") weight = COST_WEIGHTS.json;
      if (!isConnectionField(field, named)) return weight + childComplexity;
      for (const arg of ["first", "last"] as const) {
        const value = args[arg];
        if (typeof value === "number" && value > maxPageSize) {
          throw new LimitExceeded({
            code: "PAGE_SIZE_LIMIT_EXCEEDED",
            message: `${arg}: ${value} on ${coordinate} is above the page size limit of ${maxPageSize}.`,
            hint: `ask for at most ${maxPageSize} rows and page with after: pageInfo.endCursor (a connection without first/last returns the first ${maxPageSize})`,
            limit: maxPageSize,
            actual: value,
            setting: "RUNPROOF_GRAPHQL_MAX_PAGE_SIZE",
          });
        }
      }
      const sizes = [args.first, args.last].filter((v): v is number => typeof v === "number" && v >= 0);
      let rows = sizes.length ? Math.min(...sizes) : maxPageSize;
      if (coordinate === "Run.traces") rows = Math.min(rows, MAX_ATTEMPTS);
      return weight + rows * childComplexity;
    };
    try {
      return getComplexity({
        schema: this.schema,
        query: document,
        operationName: req.operationName ?? undefined,
        variables: (req.variables ?? undefined) as Record<string, unknown> | undefined,
        estimators: [estimator],
        // Also counts fragment spreads and inline fragments: a backstop to the field count.
        maxQueryNodes: maxFields * 4,
      });
    } catch (e) {
      if (e instanceof LimitExceeded) throw e;
      if (e instanceof Error && /maximum allowed number of nodes/.test(e.message)) {
        throw tooManyFields(maxFields, fields);
      }
      throw e;
    }
  }
}

function tooManyFields(maxFields: number, counted: number): LimitExceeded {
  return new LimitExceeded({
    code: "FIELD_LIMIT_EXCEEDED",
    message: `The query selects more than ${maxFields} fields (counting each fragment where it is used).`,
    hint: "select only the fields you need, or split the query into several requests",
    limit: maxFields,
    actual: counted,
    setting: "RUNPROOF_GRAPHQL_MAX_FIELDS",
  });
}

/** A PostGraphile connection: a first argument and a type with nodes/edges and pageInfo. */
function isConnectionField(field: GraphQLField<unknown, unknown>, named: GraphQLNamedType): boolean {
  if (!isObjectType(named) || !field.args.some((a) => a.name === "first")) return false;
  const f = named.getFields();
  return "pageInfo" in f && ("nodes" in f || "edges" in f);
}

function pickOperation(
  document: DocumentNode,
  operationName: string | null | undefined,
): OperationDefinitionNode | undefined {
  const ops = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  if (operationName) return ops.find((o) => o.name?.value === operationName);
  return ops.length === 1 ? ops[0] : undefined;
}

/**
 * Whether the operation only reads the schema: a query whose root selections (through
 * fragments) are all __schema, __type or __typename. Such a request needs no API key.
 */
export function isIntrospectionOnly(document: DocumentNode, operation: OperationDefinitionNode): boolean {
  if (operation.operation !== "query") return false;
  const fragments = new Map(
    document.definitions.flatMap((d) =>
      d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [],
    ),
  );
  const seen = new Set<string>();
  let onlyMeta = true;
  let any = false;
  const walk = (selections: OperationDefinitionNode["selectionSet"]["selections"]) => {
    for (const s of selections) {
      if (!onlyMeta) return;
      if (s.kind === Kind.FIELD) {
        any = true;
        if (!s.name.value.startsWith("__")) onlyMeta = false;
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        walk(s.selectionSet.selections);
      } else {
        const name = s.name.value;
        const f = fragments.get(name);
        if (!f) {
          onlyMeta = false;
          return;
        }
        if (seen.has(name)) continue;
        seen.add(name);
        walk(f.selectionSet.selections);
      }
    }
  };
  walk(operation.selectionSet.selections);
  return any && onlyMeta;
}
