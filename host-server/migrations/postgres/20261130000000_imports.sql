-- One row per `users import` that wrote accounts: hosts watch the newest id and survey the
-- stored hashes' costs again when it changes, so an imported hash's check time shows in no
-- failed login for longer than a poll.
CREATE TABLE imports (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accounts    BIGINT  NOT NULL,
    imported_at BIGINT  NOT NULL DEFAULT (extract(epoch FROM now())::BIGINT)
);
