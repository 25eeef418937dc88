/**
 * What Open WebUI does with a chat export file when a user imports it, re-stated from its source so tests can hold a
 * recovery file against it. References are to Open WebUI 0.11.0 (github.com/open-webui/open-webui, the tree of
 * release v0.11.0; the same files in the public fork yshishenya/open-webui at commit f9590b80):
 *
 * - src/lib/components/chat/Settings/DataControls.svelte:35-49 — the file is read with `JSON.parse`; when
 *   `getImportOrigin(chats) == 'openai'` it is converted as a ChatGPT export instead.
 * - src/lib/utils/index.ts:782-790 `getImportOrigin` — 'openai' when ANY item has a `mapping` key.
 * - DataControls.svelte:57-80 `importChatsHandler` — `_chats.map(...)`: an item with a truthy `chat` becomes
 *   `{ chat, meta: meta ?? {}, pinned: false, folder_id: folder_id ?? null, created_at ?? null, updated_at ?? null }`;
 *   any other item is a legacy bare chat body: `{ chat: item, meta: {}, … }`.
 * - src/lib/apis/chats/index.ts:163-180 `importChats` — POST /api/v1/chats/import with body `{ chats }`.
 * - backend/open_webui/routers/chats.py:788-810 `import_chats` — body validated as `ChatsImportForm`.
 * - backend/open_webui/models/chats.py:174-189 — `ChatForm { chat: dict; variables: dict | None; folder_id: str |
 *   None }`, `ChatImportForm(ChatForm) { meta: dict | None; pinned: bool | None; current_message_id: str | None;
 *   created_at: int | None; updated_at: int | None }`, `ChatsImportForm { chats: list[ChatImportForm] }`.
 * - models/chats.py:515-532 `_chat_import_form_to_chat_model` — title = `chat['title'] if 'title' in chat else
 *   'New Chat'`; created_at/updated_at = the form's, else now; current_message_id from `history.currentId`.
 * - models/chats.py:534-588 `import_chats` — messages written to chat_message come from `chat.history.messages`
 *   (a dict by id), else from a `chat.messages` list of objects with an `id`; only those with a `role`.
 * - models/chats.py:201-223 `ChatResponse` — the shape of each item of Open WebUI's own export (GET /chats/all,
 *   DataControls.svelte:90-95 `exportChats`).
 *
 * Releases 0.2–0.10 read the same array (0.2: src/lib/components/chat/Settings/Chats.svelte `importChats` posts
 * `chat.chat` when present, else the item), so a file that passes this passes them too.
 */

export type ImportedChat = {
  title: string;
  createdAt: number | null;
  updatedAt: number | null;
  folderId: string | null;
  meta: Record<string, unknown>;
  /** Messages Open WebUI would write to chat_message, by id. */
  messages: Map<string, Record<string, unknown>>;
  currentMessageId: string | null;
  chat: Record<string, unknown>;
};

const isDict = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** pydantic `int` from JSON: an integer number (a float with a fraction fails validation). */
const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);

function check(cond: boolean, problems: string[], what: string): void {
  if (!cond) problems.push(what);
}

/** Validates the file as Open WebUI's import would; returns what it would store, or throws listing every problem. */
export function importAsOpenWebUI(text: string): ImportedChat[] {
  const problems: string[] = [];
  const parsed: unknown = JSON.parse(text); // DataControls.svelte:39
  if (!Array.isArray(parsed)) throw new Error('the file is not a JSON array (importChatsHandler calls _chats.map)');
  if (parsed.some((c) => isDict(c) && 'mapping' in c)) {
    throw new Error('an item has a "mapping" key: Open WebUI would take the file for a ChatGPT export');
  }
  const forms = parsed.map((item: unknown, i) => {
    if (!isDict(item)) {
      problems.push(`item ${i} is not an object`);
      return null;
    }
    // DataControls.svelte:61-78
    return item.chat
      ? {
          chat: item.chat,
          meta: item.meta ?? {},
          pinned: false,
          folder_id: item.folder_id ?? null,
          created_at: item.created_at ?? null,
          updated_at: item.updated_at ?? null,
        }
      : { chat: item, meta: {}, pinned: false, folder_id: null, created_at: null, updated_at: null };
  });
  const out: ImportedChat[] = [];
  forms.forEach((f, i) => {
    if (!f) return;
    const p = `chats.${i}`;
    // ChatImportForm (models/chats.py:174-189)
    check(isDict(f.chat), problems, `${p}.chat: Input should be a valid dictionary`);
    check(f.meta === null || isDict(f.meta), problems, `${p}.meta: Input should be a valid dictionary`);
    check(f.folder_id === null || typeof f.folder_id === 'string', problems, `${p}.folder_id: should be a string`);
    check(f.created_at === null || isInt(f.created_at), problems, `${p}.created_at: should be a valid integer`);
    check(f.updated_at === null || isInt(f.updated_at), problems, `${p}.updated_at: should be a valid integer`);
    if (!isDict(f.chat)) return;
    const chat = f.chat;
    const history = isDict(chat.history) ? chat.history : {};
    let messages = isDict(history.messages) ? history.messages : {};
    if (Object.keys(messages).length === 0 && Array.isArray(chat.messages)) {
      messages = Object.fromEntries(
        chat.messages.filter((m): m is Record<string, unknown> => isDict(m) && Boolean(m.id)).map((m) => [m.id, m]),
      );
    }
    const stored = new Map<string, Record<string, unknown>>();
    for (const [id, m] of Object.entries(messages)) if (isDict(m) && m.role) stored.set(id, m);
    const listLast = Array.isArray(chat.messages)
      ? [...chat.messages].reverse().find((m): m is Record<string, unknown> => isDict(m) && Boolean(m.id))
      : undefined;
    out.push({
      title: 'title' in chat ? String(chat.title) : 'New Chat',
      createdAt: f.created_at as number | null,
      updatedAt: f.updated_at as number | null,
      folderId: f.folder_id as string | null,
      meta: (f.meta as Record<string, unknown> | null) ?? {},
      messages: stored,
      currentMessageId:
        (history.currentId as string | undefined) ??
        (chat.currentId as string | undefined) ??
        (listLast?.id as string | undefined) ??
        null,
      chat,
    });
  });
  if (problems.length > 0) throw new Error(`Open WebUI would refuse the import (400):\n  ${problems.join('\n  ')}`);
  return out;
}

/** Each item also has the shape of Open WebUI's own export (ChatResponse, models/chats.py:201-223). */
export function assertChatResponseShape(text: string): void {
  const items = JSON.parse(text) as unknown[];
  const problems: string[] = [];
  items.forEach((c, i) => {
    if (!isDict(c)) return problems.push(`${i}: not an object`);
    const str = (k: string) => check(typeof c[k] === 'string', problems, `${i}.${k}: should be a string`);
    const optStr = (k: string) =>
      check(c[k] === undefined || c[k] === null || typeof c[k] === 'string', problems, `${i}.${k}: string or null`);
    str('id');
    str('user_id');
    str('title');
    check(isDict(c.chat), problems, `${i}.chat: dict`);
    check(isInt(c.updated_at), problems, `${i}.updated_at: int`);
    check(isInt(c.created_at), problems, `${i}.created_at: int`);
    optStr('share_id');
    check(typeof c.archived === 'boolean', problems, `${i}.archived: bool`);
    check(c.pinned === undefined || c.pinned === null || typeof c.pinned === 'boolean', problems, `${i}.pinned`);
    check(c.meta === undefined || isDict(c.meta), problems, `${i}.meta: dict`);
    optStr('folder_id');
    check(c.tasks === undefined || c.tasks === null || Array.isArray(c.tasks), problems, `${i}.tasks: list or null`);
    optStr('summary');
    optStr('current_message_id');
    return undefined;
  });
  if (problems.length > 0) throw new Error(`not a ChatResponse:\n  ${problems.join('\n  ')}`);
}
