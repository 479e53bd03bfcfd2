/**
 * The chat database's schema as migrations: MIGRATIONS[v] takes a database at `user_version` v to
 * v + 1, in one transaction. Append new migrations; never edit one that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: conversations, branching messages (parent_id), settings.
  `CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    system TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL,                 -- JSON { think, temperature }
    current_leaf_id TEXT,                   -- a message of this conversation (checked by the store)
    created_at INTEGER NOT NULL,            -- ms since the epoch
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL DEFAULT '',
    reasoning TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('done', 'streaming', 'stopped', 'error', 'interrupted')),
    error TEXT,
    model TEXT NOT NULL DEFAULT '',
    think TEXT NOT NULL DEFAULT 'none' CHECK (think IN ('none', 'high', 'max')),
    attachments TEXT NOT NULL DEFAULT '[]', -- JSON [{ name, size, tokens, content }]
    usage TEXT,                             -- JSON, or NULL
    writer_pid INTEGER,                     -- the process writing a 'streaming' reply
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);
  CREATE INDEX messages_by_parent ON messages (parent_id);
  CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
  CREATE INDEX conversations_by_update ON conversations (updated_at);
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL                     -- JSON
  );`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
