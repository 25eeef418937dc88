"""Validates a chat export file with Open WebUI's own pydantic models, as its import does.

The models below are copied verbatim from Open WebUI 0.11.0, backend/open_webui/models/chats.py:174-223
(BSD-3-Clause, Copyright (c) 2023- Open WebUI Inc.); the mapping from file items to ChatImportForm is that of
src/lib/components/chat/Settings/DataControls.svelte:57-80 (importChatsHandler). Usage: python3 THIS FILE.json
Prints {"imported": N, "titles": [...]} or exits 1 with pydantic's errors.
"""

from __future__ import annotations

import json
import sys

from pydantic import BaseModel, ValidationError, field_validator


class ChatForm(BaseModel):
    chat: dict
    variables: dict | None = None
    folder_id: str | None = None


class ChatImportForm(ChatForm):
    meta: dict | None = {}
    pinned: bool | None = False
    current_message_id: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class ChatsImportForm(BaseModel):
    chats: list[ChatImportForm]


class ChatResponse(BaseModel):
    id: str
    user_id: str
    title: str
    chat: dict
    updated_at: int  # timestamp in epoch
    created_at: int  # timestamp in epoch
    share_id: str | None = None  # id of the chat to be shared
    archived: bool
    pinned: bool | None = False
    meta: dict = {}
    variables: dict = {}
    folder_id: str | None = None

    tasks: list | None = None
    summary: str | None = None
    current_message_id: str | None = None
    context_usage: dict | None = None

    @field_validator('variables', mode='before')
    @classmethod
    def normalize_variables(cls, value):
        return value if isinstance(value, dict) else {}


def main() -> int:
    with open(sys.argv[1], encoding='utf-8') as f:
        items = json.load(f)
    if any(isinstance(c, dict) and 'mapping' in c for c in items):  # getImportOrigin: a ChatGPT export
        print('the file would be taken for a ChatGPT export', file=sys.stderr)
        return 1
    forms = [
        {
            'chat': c['chat'],
            'meta': c.get('meta') if c.get('meta') is not None else {},
            'pinned': False,
            'folder_id': c.get('folder_id'),
            'created_at': c.get('created_at'),
            'updated_at': c.get('updated_at'),
        }
        if c.get('chat')
        else {'chat': c, 'meta': {}, 'pinned': False, 'folder_id': None, 'created_at': None, 'updated_at': None}
        for c in items
    ]
    try:
        parsed = ChatsImportForm.model_validate({'chats': forms})
        for c in items:
            ChatResponse.model_validate(c)
    except ValidationError as e:
        print(str(e), file=sys.stderr)
        return 1
    titles = [f.chat['title'] if 'title' in f.chat else 'New Chat' for f in parsed.chats]
    print(json.dumps({'imported': len(parsed.chats), 'titles': titles}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
