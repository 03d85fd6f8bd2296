"""The database of the FastAPI service Loom's Python side ran, as it would have left it: a
SQLAlchemy `users` table (id, email, username, hashed_password, is_active, plus a column this
service never had), with password hashes made by the libraries that service used, and rows an
import must refuse.

Usage: fastapi_source.py OUT.sqlite [ID...] [--pbkdf2-classes=N]. Writes the SQLite database, and
prints the same rows as JSON (`[{"id", "email", "username", "hashed_password", "is_active", "password",
"expect"}]`) so the tests can put them into a PostgreSQL source too. `password` is what logs in;
`expect` is what an import should do with the row. Rows from 111 on are made only when named.
`--pbkdf2-classes=N` adds N accounts whose passlib pbkdf2_sha256 hashes each have rounds of their own
(what `vary_rounds` or years of raised defaults leave), the dearest last.
"""

import json
import sqlite3
import sys

import bcrypt
from passlib.hash import bcrypt as passlib_bcrypt
from passlib.hash import pbkdf2_sha256
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


def rows():
    ada, bob, carl, dora, erin = (
        "Ada's passphrase 2016",
        "bob likes long passwords",
        "carl's pbkdf2 password",
        "dora's 2a password",
        "erin's 2y password",
    )
    # passlib[bcrypt]'s default: $2b$, cost 12.
    yield dict(id=101, email="ada@example.com", username="ada", password=ada, is_active=True, expect="import",
               hashed_password=bcrypt.hashpw(ada.encode(), bcrypt.gensalt(12)).decode())
    # pwdlib's recommended hasher (FastAPI's tutorial today): argon2id, 64 MiB, 3 passes, 4 lanes.
    yield dict(id=102, email="Bob@Example.com", username=None, password=bob, is_active=True, expect="import",
               hashed_password=PasswordHash((Argon2Hasher(),)).hash(bob))
    # passlib's pbkdf2_sha256, on an account that was deactivated.
    yield dict(id=103, email="carl@example.com", username="carl", password=carl, is_active=False, expect="import",
               hashed_password=pbkdf2_sha256.hash(carl))
    # passlib's bcrypt with the $2a$ and $2y$ prefixes; a username that does not fit the rules.
    yield dict(id=104, email="dora@example.com", username="do ra", password=dora, is_active=True, expect="import",
               hashed_password=passlib_bcrypt.using(ident="2a", rounds=10).hash(dora))
    yield dict(id=105, email="erin@example.com", username="erin", password=erin, is_active=True, expect="import",
               hashed_password=passlib_bcrypt.using(ident="2y", rounds=10).hash(erin))
    # Rows an import refuses.
    yield dict(id=106, email="not-an-email", username=None, password=None, is_active=True, expect="refuse",
               hashed_password=bcrypt.hashpw(b"whatever", bcrypt.gensalt(4)).decode())
    yield dict(id=107, email="ADA@example.com", username=None, password=None, is_active=True, expect="refuse",
               hashed_password=bcrypt.hashpw(b"whatever", bcrypt.gensalt(4)).decode())
    yield dict(id=108, email="frank@example.com", username=None, password=None, is_active=True, expect="refuse",
               hashed_password="plain-text-password-7")
    # A hostile row: bcrypt cost 17 (a format-valid header, the hash itself never checked).
    cheap = bcrypt.hashpw(b"whatever", bcrypt.gensalt(4)).decode()
    yield dict(id=109, email="gail@example.com", username=None, password=None, is_active=True, expect="refuse",
               hashed_password="$2b$17$" + cheap[7:])
    yield dict(id=110, email="hank@example.com", username=None, password=None, is_active=True, expect="refuse",
               hashed_password="$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA")


def extra_rows():
    # A password longer than bcrypt's 72 bytes: bcrypt hashed its first 72 (bcrypt 4.0 truncates).
    iris = "iris keeps a very long passphrase: " + "correct horse battery staple " * 3
    assert len(iris.encode()) > 80
    yield dict(id=111, email="iris@example.com", username=None, password=iris, is_active=True, expect="import",
               hashed_password=bcrypt.hashpw(iris.encode(), bcrypt.gensalt(10)).decode())
    # bcrypt of cost 15: about two seconds to check, past a short --hash-deadline-ms.
    jack = "jack's costly password"
    yield dict(id=112, email="jack@example.com", username=None, password=jack, is_active=True, expect="import",
               hashed_password=bcrypt.hashpw(jack.encode(), bcrypt.gensalt(15)).decode())


def pbkdf2_classes(count):
    for n in range(1, count + 1):
        # The dearest last: the cheap ones in id order first.
        rounds = 400_000 if n == count else 1_000 * n
        password = f"class {n} password"
        yield dict(id=1000 + n, email=f"class{n}@example.com", username=None, password=password, is_active=True,
                   expect="import", rounds=rounds, hashed_password=pbkdf2_sha256.using(rounds=rounds).hash(password))


def main(out, only, classes):
    all_rows = [row for row in rows() if (not only and not classes) or row["id"] in only]
    all_rows += [row for row in extra_rows() if row["id"] in only]
    all_rows += list(pbkdf2_classes(classes))
    db = sqlite3.connect(out)
    # What SQLAlchemy's `create_all` makes of the FastAPI tutorial's model, with one more column.
    db.executescript("""
        CREATE TABLE users (
            id INTEGER NOT NULL,
            email VARCHAR,
            username VARCHAR,
            hashed_password VARCHAR,
            is_active BOOLEAN,
            full_name VARCHAR,
            PRIMARY KEY (id)
        );
        CREATE UNIQUE INDEX ix_users_email ON users (email);
        CREATE INDEX ix_users_id ON users (id);
    """)
    for row in all_rows:
        db.execute(
            "INSERT INTO users (id, email, username, hashed_password, is_active, full_name) VALUES (?, ?, ?, ?, ?, ?)",
            (row["id"], row["email"], row["username"], row["hashed_password"], row["is_active"], "Someone"),
        )
    db.commit()
    db.close()
    print(json.dumps(all_rows))


if __name__ == "__main__":
    classes = [int(arg.split("=", 1)[1]) for arg in sys.argv[2:] if arg.startswith("--pbkdf2-classes=")]
    ids = [int(arg) for arg in sys.argv[2:] if not arg.startswith("--")]
    main(sys.argv[1], ids, classes[0] if classes else 0)
