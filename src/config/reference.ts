// The configuration reference (docs/configuration.md), made from the schema
// the validator uses: every key with its type, default and description, so
// the reference cannot drift from what `check-config` accepts.
// `tandem schema --markdown` prints it; test/docs.test.ts fails when the
// committed file is stale or a key has no description.
import { z } from 'zod';
import { TandemConfig } from './schema.ts';

/** The part of a JSON Schema node this reference reads. */
interface SchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: SchemaNode[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  propertyNames?: SchemaNode;
  items?: SchemaNode;
  required?: string[];
}

export interface ReferenceRow {
  /** dotted path, `<name>` for a map's keys and `[]` for a list's items */
  key: string;
  type: string;
  default: string;
  description: string | undefined;
}

/** The placeholder of a map's keys in a path, by the map's own key name. */
const MAP_KEY: Record<string, string> = {
  nodes: '<node>',
  media_resources: '<device>',
  media_resource_groups: '<group>',
  media_resource_group_lists: '<list>',
  device_pools: '<pool>',
  phones: '<number>',
  trunks: '<trunk>',
  inbound: '<called number>',
  audio_sources: '<id>',
  prompts: '<prompt>',
};

function typeOf(n: SchemaNode): string {
  if (n.anyOf) return n.anyOf.map(typeOf).join(' or ');
  if (n.enum) return n.enum.map((v) => String(v)).join(' | ');
  if (n.const !== undefined) return String(n.const);
  if (n.type === 'array') return `list of ${n.items ? typeOf(n.items) : 'values'}`;
  if (n.type === 'object' && !n.properties && typeof n.additionalProperties === 'object') {
    return `map of ${typeOf(n.additionalProperties)}`;
  }
  if (Array.isArray(n.type)) return n.type.join(' or ');
  return n.type ?? 'any';
}

const isObject = (n: SchemaNode) => n.type === 'object' && n.properties !== undefined;
const isMap = (n: SchemaNode) =>
  n.type === 'object' && !n.properties && typeof n.additionalProperties === 'object' && n.additionalProperties !== null;

function walk(n: SchemaNode, path: string, out: ReferenceRow[]): void {
  const inner = n.anyOf?.find((a) => isObject(a) || isMap(a) || (a.type === 'array' && a.items && isObject(a.items)));
  if (inner && !isObject(n) && !isMap(n))
    return walk({ ...inner, description: n.description, default: n.default }, path, out);
  if (isObject(n)) {
    for (const [k, child] of Object.entries(n.properties!)) {
      const key = path ? `${path}.${k}` : k;
      out.push(row(key, child));
      walk(child, key, out);
    }
  } else if (isMap(n)) {
    const last = path.split('.').at(-1)!;
    const item = n.additionalProperties as SchemaNode;
    if (isObject(item)) walk(item, `${path}.${MAP_KEY[last] ?? '<name>'}`, out);
  } else if (n.type === 'array' && n.items && isObject(n.items)) {
    walk(n.items, `${path}[]`, out);
  }
}

function row(key: string, n: SchemaNode): ReferenceRow {
  const objectLike = isObject(n) || isMap(n);
  const shown = n.default === undefined || (objectLike && JSON.stringify(n.default) === '{}');
  return {
    key,
    type: isObject(n) ? 'section' : typeOf(n),
    default: shown ? '' : `\`${JSON.stringify(n.default)}\``,
    description: n.description,
  };
}

/** Every key of the configuration, in schema order. */
export function referenceRows(): ReferenceRow[] {
  const schema = z.toJSONSchema(TandemConfig, { io: 'input' }) as SchemaNode;
  const out: ReferenceRow[] = [];
  walk(schema, '', out);
  return out;
}

/** Text for a table cell: pipes escaped, and angle brackets (\`<node>\`) kept from being read as HTML. */
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('<', '\\<').replaceAll('\n', ' ');

/** docs/configuration.md */
export function referenceMarkdown(): string {
  const rows = referenceRows();
  const top = rows.filter((r) => !r.key.includes('.'));
  let md = `# Configuration reference

Made from the configuration's schema, the validator's own (\`tandem schema
--markdown > docs/configuration.md\`; \`test/docs.test.ts\` fails when this file
is stale). One YAML file describes the whole cluster and every node reads
the same file; \`tandem check-config FILE\` validates it, \`tandem schema\` prints
the JSON Schema for editors. \`examples/acme.yaml\` is a whole example; the
other documents say what the settings do together.

`;
  for (const t of top) {
    md += `## \`${t.key}\`\n\n${cell(t.description ?? '')}${t.default ? ` Default ${t.default}.` : ''}\n\n`;
    const inner = rows.filter((r) => r.key.startsWith(`${t.key}.`) || r.key.startsWith(`${t.key}[]`));
    if (!inner.length) continue;
    md += '| key | type | default | meaning |\n|---|---|---|---|\n';
    for (const r of inner) {
      md += `| \`${r.key.replaceAll('|', '\\|')}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description ?? '')} |\n`;
    }
    md += '\n';
  }
  return md;
}
