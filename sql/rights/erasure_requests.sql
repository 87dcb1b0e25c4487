-- Requests to erase a person (GDPR art. 17) and what became of them. A person's own key may
-- request (lake.request_erasure: status requested); an administrator performs the erasure
-- (lake.erase_user: status erased, with its report); lake.finish_erasure, once the transaction
-- committed, deletes the archive files the erasure superseded and, when every bridge has passed
-- the erasure's change event (and so removed the person from Redis), closes it (status done).
-- The person's id is kept only while the erasure is open: then user_id becomes NULL and only a
-- salted SHA-256 of it (subject_sha256) remains, which confirms a named person's erasure to
-- whoever knows the id, and names no one to anyone else.
CREATE TABLE lake.erasure_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text COLLATE "C",
    salt            bytea NOT NULL DEFAULT public.gen_random_bytes(16),
    subject_sha256  bytea NOT NULL CHECK (length(subject_sha256) = 32),
    reason          text CHECK (length(reason) <= 1000),
    -- self: the person's own key asked; admin: an administrator asked (or erased at once).
    requested_by    text NOT NULL CHECK (requested_by IN ('self', 'admin')),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'requested'
                    CHECK (status IN ('requested', 'erased', 'done')),
    erased_at       timestamptz,
    erased_by       name,
    -- lake.erase_user's report: what was removed from where (counts, never values).
    report          jsonb,
    -- Archive files the erasure superseded, deleted by lake.finish_erasure after the commit.
    files           text[] NOT NULL DEFAULT '{}',
    files_done_at   timestamptz,
    done_at         timestamptz,
    CHECK ((user_id IS NULL) = (status = 'done'))
);
CREATE UNIQUE INDEX erasure_requests_open ON lake.erasure_requests (user_id)
    WHERE status = 'requested';
ALTER TABLE lake.erasure_requests OWNER TO lake_owner;
GRANT SELECT ON lake.erasure_requests TO lake_admin;

COMMENT ON TABLE lake.erasure_requests IS
    'Erasure requests (GDPR art. 17): requested by the person or an administrator, performed by '
    'an administrator (lake.erase_user), closed by lake.finish_erasure.';
COMMENT ON COLUMN lake.erasure_requests.id IS 'The request''s id (the erasure''s, in reports).';
COMMENT ON COLUMN lake.erasure_requests.user_id IS
    'The person, while the erasure is open; NULL once done.';
COMMENT ON COLUMN lake.erasure_requests.salt IS 'Random salt of subject_sha256.';
COMMENT ON COLUMN lake.erasure_requests.subject_sha256 IS
    'SHA-256 of salt and the person''s id: confirms a named person''s erasure, names no one.';
COMMENT ON COLUMN lake.erasure_requests.reason IS 'Why (as given; should not hold personal data).';
COMMENT ON COLUMN lake.erasure_requests.requested_by IS
    'self: the person''s own key; admin: an administrator.';
COMMENT ON COLUMN lake.erasure_requests.requested_at IS 'When it was requested.';
COMMENT ON COLUMN lake.erasure_requests.status IS
    'requested, erased (the database''s part committed), done (files and Redis too).';
COMMENT ON COLUMN lake.erasure_requests.erased_at IS 'When lake.erase_user ran.';
COMMENT ON COLUMN lake.erasure_requests.erased_by IS 'The database role that erased.';
COMMENT ON COLUMN lake.erasure_requests.report IS
    'What lake.erase_user removed, per store (counts only).';
COMMENT ON COLUMN lake.erasure_requests.files IS
    'Archive files superseded by the erasure, deleted after its commit by lake.finish_erasure.';
COMMENT ON COLUMN lake.erasure_requests.files_done_at IS 'When those files were deleted.';
COMMENT ON COLUMN lake.erasure_requests.done_at IS
    'When the erasure was complete: files deleted and every bridge past its change event.';
