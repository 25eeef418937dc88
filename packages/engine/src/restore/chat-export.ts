import { rowValue, type TenantRow, type TenantRows } from './recover-rows.ts';
import type { SqliteValue } from './values.ts';

/**
 * Open WebUI's chat export format, written from backup rows: the JSON file its own "Export chats" produces and its
 * "Import chats" reads (Settings → Data Controls, or a file dropped on the sidebar). In Open WebUI 0.11.0 that file
 * is `JSON.stringify` of the array GET /api/v1/chats/all streams — one `ChatResponse` per chat
 * (backend/open_webui/models/chats.py `ChatResponse`; src/lib/components/chat/Settings/DataControls.svelte
 * `exportChats`). The importer keeps, per item, `chat`, `meta`, `folder_id`, `created_at` and `updated_at` and posts
 * them to POST /api/v1/chats/import as `ChatImportForm`s (DataControls.svelte `importChatsHandler`); Open WebUI
 * gives every imported chat a new id in the importing user's account. Releases since 0.2 read the same array (an
 * item with a truthy `chat` object; an item without one is taken as a bare legacy chat body).
 *
 * The `chat` body (and `meta`, `variables`, `tasks`) is copied as the JSON text the backup holds, byte for byte:
 * no number is re-encoded. A chat whose body is not a JSON object cannot be imported and is reported as skipped.
 */

export type ChatExportItem = {
  readonly id: string;
  readonly title: string;
  readonly createdAt: number | null;
  readonly updatedAt: number | null;
  readonly deletedAt: Date | null;
  /** The item's JSON text (one element of the export array). */
  readonly json: string;
};

export type SkippedChat = { readonly id: string; readonly reason: string };

const str = (v: SqliteValue | undefined): string | null =>
  v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);

function bool(v: SqliteValue | undefined): boolean | null {
  if (v === null || v === undefined) return null;
  const s = String(v).toLowerCase();
  return s === '1' || s === 'true' || s === 't';
}

/** Epoch seconds from an epoch value (seconds, or milliseconds/nanoseconds by size) or a date text. */
export function epochSeconds(v: SqliteValue | undefined): number | null {
  if (v === null || v === undefined || Buffer.isBuffer(v)) return null;
  if (typeof v === 'bigint' || typeof v === 'number' || /^-?\d+(\.\d+)?$/.test(String(v).trim())) {
    let n = Number(v);
    if (!Number.isFinite(n)) return null;
    while (Math.abs(n) >= 1e11) n /= 1000; // milliseconds, microseconds, nanoseconds → seconds
    return Math.trunc(n);
  }
  const ms = Date.parse(String(v).trim().replace(' ', 'T') + (/[zZ]|[+-]\d\d:?\d\d$/.test(String(v)) ? '' : 'Z'));
  return Number.isNaN(ms) ? null : Math.trunc(ms / 1000);
}

/** The JSON text when it parses to a value `accept` likes, else null. */
function jsonText(
  v: SqliteValue | undefined,
  accept: (parsed: unknown) => boolean,
): { text: string; value: unknown } | null {
  const s = str(v);
  if (s === null) return null;
  try {
    const value: unknown = JSON.parse(s);
    return accept(value) ? { text: s.trim(), value } : null;
  } catch {
    return null;
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** One chat row (read by selectTenantRows from the `chat` table) as an export item, or why it cannot be one. */
export function chatExportItem(rows: TenantRows, row: TenantRow): ChatExportItem | SkippedChat {
  const get = (c: string) => rowValue(rows, row, c);
  const id = str(get('id')) ?? '';
  const body = jsonText(get('chat'), isObject);
  if (!body) {
    return { id, reason: 'its chat body is not a JSON object, so Open WebUI could not import it' };
  }
  const bodyTitle = (body.value as { title?: unknown }).title;
  const title = str(get('title')) ?? (typeof bodyTitle === 'string' ? bodyTitle : 'New Chat');
  // Releases before 0.3 had one `timestamp` column instead of created_at/updated_at.
  const createdAt = epochSeconds(get('created_at') ?? get('timestamp'));
  const updatedAt = epochSeconds(get('updated_at') ?? get('timestamp')) ?? createdAt;
  const objectOr = (c: string, fallback: string) => jsonText(get(c), isObject)?.text ?? fallback;
  const tasks = jsonText(get('tasks'), Array.isArray)?.text ?? 'null';
  // Field order and defaults of ChatResponse (0.11.0). meta/variables: a SQL NULL or JSON null is {} — what
  // ChatResponse's defaults and the importer (`chat.meta ?? {}`) make of it.
  const parts = [
    `"id":${JSON.stringify(id)}`,
    `"user_id":${JSON.stringify(str(get('user_id')) ?? '')}`,
    `"title":${JSON.stringify(title)}`,
    `"chat":${body.text}`,
    `"updated_at":${updatedAt === null ? 'null' : String(updatedAt)}`,
    `"created_at":${createdAt === null ? 'null' : String(createdAt)}`,
    `"share_id":${JSON.stringify(str(get('share_id')))}`,
    `"archived":${String(bool(get('archived')) ?? false)}`,
    `"pinned":${String(bool(get('pinned')) ?? false)}`,
    `"meta":${objectOr('meta', '{}')}`,
    `"variables":${objectOr('variables', '{}')}`,
    `"folder_id":${JSON.stringify(str(get('folder_id')))}`,
    `"tasks":${tasks}`,
    `"summary":${JSON.stringify(str(get('summary')))}`,
    `"current_message_id":${JSON.stringify(str(get('current_message_id')))}`,
  ];
  return { id, title, createdAt, updatedAt, deletedAt: row.deletedAt, json: `{${parts.join(',')}}` };
}

/** The export file's text: a JSON array of the items, one per line. */
export function chatExportFile(items: readonly ChatExportItem[]): string {
  return items.length === 0 ? '[]\n' : `[\n${items.map((i) => i.json).join(',\n')}\n]\n`;
}

export function isSkipped(x: ChatExportItem | SkippedChat): x is SkippedChat {
  return 'reason' in x;
}
