/// The control-plane schema, versioned. A migration is never edited once released: add a new one.
enum Migrations {
    struct Step {
        let version: Int
        let statements: [String]
    }

    static let sqlite: [Step] = [
        Step(version: 1, statements: [
            """
            CREATE TABLE tenants (
              slug TEXT PRIMARY KEY,
              name TEXT NOT NULL,
              status TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              limits TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE tenant_jwt_secrets (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              kid TEXT NOT NULL,
              sealed BLOB NOT NULL,
              created_at_ms INTEGER NOT NULL,
              revoked_at_ms INTEGER,
              PRIMARY KEY (tenant, kid)
            )
            """,
            """
            CREATE TABLE sources (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              name TEXT NOT NULL,
              kind TEXT NOT NULL,
              config TEXT NOT NULL,
              sealed_secrets BLOB NOT NULL,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE audit_log (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              at_ms INTEGER NOT NULL,
              actor TEXT NOT NULL,
              action TEXT NOT NULL,
              tenant TEXT,
              request_id TEXT,
              detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_log_tenant ON audit_log (tenant, id)",
            // Append-only: the database itself refuses to rewrite history.
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]),
        Step(version: 2, statements: ["ALTER TABLE sources ADD COLUMN model TEXT NOT NULL DEFAULT '{}'"]),
        Step(version: 3, statements: [
            """
            CREATE TABLE policies (
              tenant TEXT PRIMARY KEY REFERENCES tenants(slug) ON DELETE CASCADE,
              document TEXT NOT NULL,
              updated_at_ms INTEGER NOT NULL
            )
            """,
        ]),
        Step(version: 4, statements: [
            """
            CREATE TABLE auth_settings (
              tenant TEXT PRIMARY KEY REFERENCES tenants(slug) ON DELETE CASCADE,
              document TEXT NOT NULL,
              sealed_secrets BLOB NOT NULL,
              updated_at_ms INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE auth_users (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              email TEXT NOT NULL,
              profile TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id),
              UNIQUE (tenant, email)
            )
            """,
            """
            CREATE TABLE auth_sessions (
              tenant TEXT NOT NULL,
              id TEXT NOT NULL,
              user_id TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              revoked_at_ms INTEGER,
              PRIMARY KEY (tenant, id),
              FOREIGN KEY (tenant, user_id) REFERENCES auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE auth_tokens (
              tenant TEXT NOT NULL,
              hash TEXT NOT NULL,
              kind TEXT NOT NULL,
              user_id TEXT NOT NULL,
              session_id TEXT,
              data TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              spent_at_ms INTEGER,
              PRIMARY KEY (tenant, hash),
              FOREIGN KEY (tenant, user_id) REFERENCES auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX auth_tokens_session ON auth_tokens (tenant, session_id)",
            "CREATE INDEX auth_tokens_user ON auth_tokens (tenant, user_id, kind)",
            """
            CREATE TABLE auth_identities (
              tenant TEXT NOT NULL,
              provider TEXT NOT NULL,
              subject TEXT NOT NULL,
              user_id TEXT NOT NULL,
              data TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, provider, subject),
              FOREIGN KEY (tenant, user_id) REFERENCES auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 5, statements: [
            """
            CREATE TABLE storage_buckets (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              name TEXT NOT NULL,
              public INTEGER NOT NULL,
              file_size_limit INTEGER,
              allowed_mime_types TEXT,
              owner_id TEXT,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE storage_objects (
              tenant TEXT NOT NULL,
              bucket TEXT NOT NULL,
              name TEXT NOT NULL,
              id TEXT NOT NULL,
              blob_key TEXT NOT NULL,
              size INTEGER NOT NULL,
              mime_type TEXT NOT NULL,
              cache_control TEXT NOT NULL,
              etag TEXT NOT NULL,
              metadata TEXT NOT NULL,
              owner_id TEXT,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, bucket, name),
              FOREIGN KEY (tenant, bucket) REFERENCES storage_buckets(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 6, statements: [
            """
            CREATE TABLE storage_s3_keys (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              access_key_id TEXT NOT NULL UNIQUE,
              sealed_secret BLOB NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE storage_multipart_uploads (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              bucket TEXT NOT NULL,
              name TEXT NOT NULL,
              mime_type TEXT NOT NULL,
              cache_control TEXT NOT NULL,
              metadata TEXT NOT NULL,
              owner_id TEXT,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE storage_multipart_parts (
              tenant TEXT NOT NULL,
              upload_id TEXT NOT NULL,
              number INTEGER NOT NULL,
              blob_key TEXT NOT NULL,
              size INTEGER NOT NULL,
              etag TEXT NOT NULL,
              md5 BLOB NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, upload_id, number),
              FOREIGN KEY (tenant, upload_id) REFERENCES storage_multipart_uploads(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 7, statements: [
            """
            CREATE TABLE jobs (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              kind TEXT NOT NULL,
              dedupe_key TEXT,
              payload TEXT NOT NULL,
              status TEXT NOT NULL,
              attempt INTEGER NOT NULL,
              max_attempts INTEGER NOT NULL,
              run_at_ms INTEGER NOT NULL,
              fence INTEGER,
              claim_expires_at_ms INTEGER,
              last_error TEXT,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            "CREATE UNIQUE INDEX jobs_dedupe ON jobs (tenant, dedupe_key) WHERE dedupe_key IS NOT NULL",
            "CREATE INDEX jobs_due ON jobs (tenant, status, run_at_ms)",
        ]),
        Step(version: 8, statements: [
            "ALTER TABLE jobs ADD COLUMN subject TEXT",
            "CREATE INDEX jobs_subject ON jobs (tenant, subject, created_at_ms) WHERE subject IS NOT NULL",
            """
            CREATE TABLE job_attempts (
              tenant TEXT NOT NULL,
              job_id TEXT NOT NULL,
              attempt INTEGER NOT NULL,
              at_ms INTEGER NOT NULL,
              http_status INTEGER,
              latency_ms INTEGER NOT NULL,
              error TEXT,
              response_body TEXT,
              PRIMARY KEY (tenant, job_id, attempt),
              FOREIGN KEY (tenant, job_id) REFERENCES jobs(tenant, id) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE webhooks (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              name TEXT NOT NULL,
              spec TEXT NOT NULL,
              secrets TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id),
              UNIQUE (tenant, name)
            )
            """,
        ]),
        Step(version: 9, statements: [
            """
            CREATE TABLE queues (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              name TEXT NOT NULL,
              last_id INTEGER NOT NULL DEFAULT 0,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE queue_messages (
              tenant TEXT NOT NULL,
              queue TEXT NOT NULL,
              msg_id INTEGER NOT NULL,
              read_ct INTEGER NOT NULL DEFAULT 0,
              enqueued_at_ms INTEGER NOT NULL,
              vt_ms INTEGER NOT NULL,
              message TEXT NOT NULL,
              archived_at_ms INTEGER,
              PRIMARY KEY (tenant, queue, msg_id),
              FOREIGN KEY (tenant, queue) REFERENCES queues(tenant, name) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX queue_messages_visible ON queue_messages (tenant, queue, vt_ms, msg_id) WHERE archived_at_ms IS NULL",
        ]),
        Step(version: 10, statements: [
            """
            CREATE TABLE cron_jobs (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              name TEXT NOT NULL,
              spec TEXT NOT NULL,
              secrets TEXT NOT NULL,
              next_run_at_ms INTEGER,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
        ]),
        Step(version: 11, statements: [
            """
            CREATE TABLE email_templates (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              id TEXT NOT NULL,
              alias TEXT,
              content TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            "CREATE UNIQUE INDEX email_templates_alias ON email_templates (tenant, alias) WHERE alias IS NOT NULL",
        ]),
        Step(version: 12, statements: [
            """
            CREATE TABLE functions (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              name TEXT NOT NULL,
              active_version INTEGER NOT NULL,
              sealed_secrets TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE function_versions (
              tenant TEXT NOT NULL,
              name TEXT NOT NULL,
              version INTEGER NOT NULL,
              module BLOB NOT NULL,
              settings TEXT NOT NULL,
              sha256 TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name, version),
              FOREIGN KEY (tenant, name) REFERENCES functions(tenant, name) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 13, statements: [
            """
            CREATE TABLE search_indexes (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              uid TEXT NOT NULL,
              source TEXT NOT NULL,
              entity TEXT NOT NULL,
              primary_key TEXT NOT NULL,
              settings TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              updated_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, uid)
            )
            """,
        ]),
        Step(version: 14, statements: [
            """
            CREATE TABLE vector_indexes (
              tenant TEXT NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
              name TEXT NOT NULL,
              dimension INTEGER NOT NULL,
              metric TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE vector_records (
              tenant TEXT NOT NULL,
              index_name TEXT NOT NULL,
              namespace TEXT NOT NULL,
              id TEXT NOT NULL,
              vector BLOB NOT NULL,
              metadata TEXT,
              PRIMARY KEY (tenant, index_name, namespace, id),
              FOREIGN KEY (tenant, index_name) REFERENCES vector_indexes(tenant, name) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 15, statements: ["ALTER TABLE vector_indexes ADD COLUMN binding TEXT"]),
    ]

    static let postgres: [Step] = [
        Step(version: 1, statements: [
            """
            CREATE TABLE minibaas.tenants (
              slug text PRIMARY KEY,
              name text NOT NULL,
              status text NOT NULL,
              created_at timestamptz NOT NULL,
              limits jsonb NOT NULL
            )
            """,
            """
            CREATE TABLE minibaas.tenant_jwt_secrets (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              kid text NOT NULL,
              sealed bytea NOT NULL,
              created_at timestamptz NOT NULL,
              revoked_at timestamptz,
              PRIMARY KEY (tenant, kid)
            )
            """,
            """
            CREATE TABLE minibaas.sources (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              name text NOT NULL,
              kind text NOT NULL,
              config jsonb NOT NULL,
              sealed_secrets bytea NOT NULL,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE minibaas.audit_log (
              id bigserial PRIMARY KEY,
              at timestamptz NOT NULL,
              actor text NOT NULL,
              action text NOT NULL,
              tenant text,
              request_id text,
              detail jsonb NOT NULL
            )
            """,
            "CREATE INDEX audit_log_tenant ON minibaas.audit_log (tenant, id)",
            """
            CREATE FUNCTION minibaas.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$
            """,
            """
            CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON minibaas.audit_log
            FOR EACH ROW EXECUTE FUNCTION minibaas.audit_log_append_only()
            """,
            "CREATE TABLE minibaas.settings (key text PRIMARY KEY, value text NOT NULL)",
        ]),
        Step(version: 2, statements: ["ALTER TABLE minibaas.sources ADD COLUMN model text NOT NULL DEFAULT '{}'"]),
        Step(version: 3, statements: [
            """
            CREATE TABLE minibaas.policies (
              tenant text PRIMARY KEY REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              document jsonb NOT NULL,
              updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
        Step(version: 4, statements: [
            """
            CREATE TABLE minibaas.auth_settings (
              tenant text PRIMARY KEY REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              document jsonb NOT NULL,
              sealed_secrets bytea NOT NULL,
              updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE minibaas.auth_users (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              email text NOT NULL,
              profile jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id),
              UNIQUE (tenant, email)
            )
            """,
            """
            CREATE TABLE minibaas.auth_sessions (
              tenant text NOT NULL,
              id text NOT NULL,
              user_id text NOT NULL,
              created_at timestamptz NOT NULL,
              revoked_at timestamptz,
              PRIMARY KEY (tenant, id),
              FOREIGN KEY (tenant, user_id) REFERENCES minibaas.auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE minibaas.auth_tokens (
              tenant text NOT NULL,
              hash text NOT NULL,
              kind text NOT NULL,
              user_id text NOT NULL,
              session_id text,
              data jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              spent_at timestamptz,
              PRIMARY KEY (tenant, hash),
              FOREIGN KEY (tenant, user_id) REFERENCES minibaas.auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX auth_tokens_session ON minibaas.auth_tokens (tenant, session_id)",
            "CREATE INDEX auth_tokens_user ON minibaas.auth_tokens (tenant, user_id, kind)",
            """
            CREATE TABLE minibaas.auth_identities (
              tenant text NOT NULL,
              provider text NOT NULL,
              subject text NOT NULL,
              user_id text NOT NULL,
              data jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, provider, subject),
              FOREIGN KEY (tenant, user_id) REFERENCES minibaas.auth_users(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 5, statements: [
            """
            CREATE TABLE minibaas.storage_buckets (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              name text NOT NULL,
              public boolean NOT NULL,
              file_size_limit bigint,
              allowed_mime_types jsonb,
              owner_id text,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE minibaas.storage_objects (
              tenant text NOT NULL,
              bucket text NOT NULL,
              name text COLLATE "C" NOT NULL,
              id text NOT NULL,
              blob_key text NOT NULL,
              size bigint NOT NULL,
              mime_type text NOT NULL,
              cache_control text NOT NULL,
              etag text NOT NULL,
              metadata jsonb NOT NULL,
              owner_id text,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, bucket, name),
              FOREIGN KEY (tenant, bucket) REFERENCES minibaas.storage_buckets(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 6, statements: [
            """
            CREATE TABLE minibaas.storage_s3_keys (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              access_key_id text NOT NULL UNIQUE,
              sealed_secret bytea NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE minibaas.storage_multipart_uploads (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              bucket text NOT NULL,
              name text NOT NULL,
              mime_type text NOT NULL,
              cache_control text NOT NULL,
              metadata jsonb NOT NULL,
              owner_id text,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            """
            CREATE TABLE minibaas.storage_multipart_parts (
              tenant text NOT NULL,
              upload_id text NOT NULL,
              number integer NOT NULL,
              blob_key text NOT NULL,
              size bigint NOT NULL,
              etag text NOT NULL,
              md5 bytea NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, upload_id, number),
              FOREIGN KEY (tenant, upload_id) REFERENCES minibaas.storage_multipart_uploads(tenant, id) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 7, statements: [
            """
            CREATE TABLE minibaas.jobs (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              kind text NOT NULL,
              dedupe_key text,
              payload jsonb NOT NULL,
              status text NOT NULL,
              attempt integer NOT NULL,
              max_attempts integer NOT NULL,
              run_at timestamptz NOT NULL,
              fence bigint,
              claim_expires_at timestamptz,
              last_error text,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            "CREATE UNIQUE INDEX jobs_dedupe ON minibaas.jobs (tenant, dedupe_key) WHERE dedupe_key IS NOT NULL",
            "CREATE INDEX jobs_due ON minibaas.jobs (tenant, status, run_at)",
        ]),
        Step(version: 8, statements: [
            "ALTER TABLE minibaas.jobs ADD COLUMN subject text",
            "CREATE INDEX jobs_subject ON minibaas.jobs (tenant, subject, created_at) WHERE subject IS NOT NULL",
            """
            CREATE TABLE minibaas.job_attempts (
              tenant text NOT NULL,
              job_id text NOT NULL,
              attempt integer NOT NULL,
              at timestamptz NOT NULL,
              http_status integer,
              latency_ms integer NOT NULL,
              error text,
              response_body text,
              PRIMARY KEY (tenant, job_id, attempt),
              FOREIGN KEY (tenant, job_id) REFERENCES minibaas.jobs(tenant, id) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE minibaas.webhooks (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              name text NOT NULL,
              spec jsonb NOT NULL,
              secrets jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id),
              UNIQUE (tenant, name)
            )
            """,
        ]),
        Step(version: 9, statements: [
            """
            CREATE TABLE minibaas.queues (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              name text NOT NULL,
              last_id bigint NOT NULL DEFAULT 0,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE minibaas.queue_messages (
              tenant text NOT NULL,
              queue text NOT NULL,
              msg_id bigint NOT NULL,
              read_ct integer NOT NULL DEFAULT 0,
              enqueued_at timestamptz NOT NULL,
              vt timestamptz NOT NULL,
              message jsonb NOT NULL,
              archived_at timestamptz,
              PRIMARY KEY (tenant, queue, msg_id),
              FOREIGN KEY (tenant, queue) REFERENCES minibaas.queues(tenant, name) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX queue_messages_visible ON minibaas.queue_messages (tenant, queue, vt, msg_id) WHERE archived_at IS NULL",
        ]),
        Step(version: 10, statements: [
            """
            CREATE TABLE minibaas.cron_jobs (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              name text NOT NULL,
              spec jsonb NOT NULL,
              secrets jsonb NOT NULL,
              next_run_at timestamptz,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
        ]),
        Step(version: 11, statements: [
            """
            CREATE TABLE minibaas.email_templates (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              id text NOT NULL,
              alias text,
              content jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, id)
            )
            """,
            "CREATE UNIQUE INDEX email_templates_alias ON minibaas.email_templates (tenant, alias) WHERE alias IS NOT NULL",
        ]),
        Step(version: 12, statements: [
            """
            CREATE TABLE minibaas.functions (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              name text NOT NULL,
              active_version integer NOT NULL,
              sealed_secrets text NOT NULL,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE minibaas.function_versions (
              tenant text NOT NULL,
              name text NOT NULL,
              version integer NOT NULL,
              module bytea NOT NULL,
              settings jsonb NOT NULL,
              sha256 text NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name, version),
              FOREIGN KEY (tenant, name) REFERENCES minibaas.functions(tenant, name) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 13, statements: [
            """
            CREATE TABLE minibaas.search_indexes (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              uid text NOT NULL,
              source text NOT NULL,
              entity text NOT NULL,
              primary_key text NOT NULL,
              settings jsonb NOT NULL,
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, uid)
            )
            """,
        ]),
        Step(version: 14, statements: [
            """
            CREATE TABLE minibaas.vector_indexes (
              tenant text NOT NULL REFERENCES minibaas.tenants(slug) ON DELETE CASCADE,
              name text NOT NULL,
              dimension integer NOT NULL,
              metric text NOT NULL,
              created_at timestamptz NOT NULL,
              PRIMARY KEY (tenant, name)
            )
            """,
            """
            CREATE TABLE minibaas.vector_records (
              tenant text NOT NULL,
              index_name text NOT NULL,
              namespace text NOT NULL,
              id text NOT NULL,
              vector bytea NOT NULL,
              metadata jsonb,
              PRIMARY KEY (tenant, index_name, namespace, id),
              FOREIGN KEY (tenant, index_name) REFERENCES minibaas.vector_indexes(tenant, name) ON DELETE CASCADE
            )
            """,
        ]),
        Step(version: 15, statements: ["ALTER TABLE minibaas.vector_indexes ADD COLUMN binding jsonb"]),
    ]
}
