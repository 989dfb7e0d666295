"""Schema migrations; bin/pre-deploy runs this once per deploy, before any node switches."""

import os

from shop import db

MIGRATIONS = [
    "CREATE TABLE IF NOT EXISTS products (name TEXT PRIMARY KEY, price INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO products (name, price) VALUES ('apple', 40), ('bread', 250)",
]


def main():
    os.makedirs(os.path.dirname(db.path()), exist_ok=True)
    with db.connect() as conn:
        for statement in MIGRATIONS:
            conn.execute(statement)
    print("migrated %s" % db.path())


if __name__ == "__main__":
    main()
