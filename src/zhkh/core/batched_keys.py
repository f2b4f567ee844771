"""Foreign keys that PostgreSQL checks once per statement instead of once per row.

A foreign key constraint checks every inserted row by a trigger of its own: an index probe
and a ``FOR KEY SHARE`` lock on the referenced row, per row. On the bulk paths (COPY of a
million postings, of eight million accrual lines) that is more than half of what PostgreSQL
spends writing them: 865,000 accrual lines took 14.5 s to insert with their foreign keys and
6.7 s without the three checked per row (docs/benchmarks.md, 2026-12-06).

For the keys in ``BATCHED_KEYS`` a migration replaces the constraint by triggers that keep its
guarantees and do the work set-based:

* after each INSERT statement on the referencing table, one query over the statement's new
  rows (a transition table) locks every distinct referenced row ``FOR KEY SHARE``, as the
  constraint would, and compares their count with the number of distinct values asked for;
* an UPDATE that changes the column is checked row by row (rare: these tables are appended to);
* after each DELETE statement on the referenced table, one query refuses it if a deleted id
  is still referenced; an UPDATE of a referenced id is refused row by row;
* after a TRUNCATE of the referenced table, it is refused if the referencing table still has
  a reference (migration 0014). Like a constraint, this lets ``TRUNCATE referencing,
  referenced`` through (its triggers fire once both are empty); unlike one, ``CASCADE`` does
  not empty the referencing table for it.

The errors are those of a constraint: SQLSTATE 23503 (``foreign_key_violation``, an
``IntegrityError``), the constraint's name and PostgreSQL's own wording; a refused TRUNCATE
raises what PostgreSQL raises for it, SQLSTATE 0A000 (a ``NotSupportedError``). Like a constraint
they assume READ COMMITTED, the platform's isolation level (each check sees what other
transactions have committed; the lock makes a concurrent delete wait). SQLite keeps its
ordinary foreign keys.
The models still declare these keys (SQLite's schema and the ORM use them); the schema
comparison and autogenerate leave them out on PostgreSQL (``is_batched_on``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchedKey:
    table: str
    column: str
    referenced: str  # a table whose key column is ``id``

    @property
    def constraint(self) -> str:
        """The name of the constraint it replaces (the naming convention of ``core.db``)."""
        return f"fk_{self.table}_{self.column}_{self.referenced}"

    def triggers(self) -> dict[str, str]:
        """Trigger name: the table it is on; in order, the checks after an insert, an update of
        the column, a delete of referenced rows and an update of a referenced id."""
        name = self.constraint
        return {
            f"{name}_inserted": self.table,
            f"{name}_updated": self.table,
            f"{name}_deleted": self.referenced,
            f"{name}_rekeyed": self.referenced,
        }

    @property
    def truncate_trigger(self) -> str:
        """The trigger on the referenced table that refuses a TRUNCATE leaving references
        (migration 0014; not among ``triggers()``, which 0010 and 0012 install and drop)."""
        return f"{self.constraint}_truncated"


# The keys of the bulk paths: the books, the billing run's lines and snapshot, the payments,
# the readings.
BATCHED_KEYS = (
    BatchedKey("postings", "transaction_id", "finance_transactions"),
    BatchedKey("postings", "account_id", "accounts"),
    BatchedKey("postings", "supplier_id", "organisations"),
    BatchedKey("accrual_lines", "account_id", "accounts"),
    BatchedKey("accrual_lines", "supplier_id", "organisations"),
    BatchedKey("accrual_lines", "meter_id", "meters"),
    BatchedKey("billed_accounts", "account_id", "accounts"),
    BatchedKey("billed_accounts", "building_id", "buildings"),
    BatchedKey("payments", "account_id", "accounts"),
    BatchedKey("payments", "transaction_id", "finance_transactions"),
    BatchedKey("payments", "intake_id", "payment_intakes"),
    # Meter readings, tens of thousands a second from gateways and the API (migration 0012).
    BatchedKey("readings", "meter_id", "meters"),
    BatchedKey("readings", "corrects_id", "readings"),
    BatchedKey("readings", "superseded_by_id", "readings"),
)
_CONSTRAINTS = frozenset(key.constraint for key in BATCHED_KEYS)


def is_batched_on(dialect_name: str, constraint_name: Any) -> bool:
    """Whether ``constraint_name`` is one of the keys checked by triggers on ``dialect_name``."""
    return dialect_name == "postgresql" and constraint_name in _CONSTRAINTS


# The four trigger functions, shared by every key; their arguments name the key.
FUNCTIONS = (
    # After an INSERT statement: TG_ARGV = column, referenced table, constraint.
    r"""
    CREATE OR REPLACE FUNCTION batched_key_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        wanted bigint;
        present bigint;
        example text;
    BEGIN
        -- One pass: each distinct value probed and locked once, counted whether found or not.
        EXECUTE format(
            'SELECT count(*), count(p.found) FROM (SELECT DISTINCT %1$I AS id FROM new_rows WHERE %1$I IS NOT NULL) w '
            'LEFT JOIN LATERAL (SELECT true AS found FROM %2$I r WHERE r.id = w.id FOR KEY SHARE) p ON true',
            TG_ARGV[0], TG_ARGV[1]) INTO wanted, present;
        IF wanted <> present THEN
            EXECUTE format(
                'SELECT min(n.%1$I)::text FROM new_rows n '
                'WHERE n.%1$I IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.%1$I)',
                TG_ARGV[0], TG_ARGV[1]) INTO example;
            RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
                TG_TABLE_NAME, TG_ARGV[2]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[2], TABLE = TG_TABLE_NAME,
                    DETAIL = format('Key (%s)=(%s) is not present in table "%s" (%s such keys in the statement).',
                        TG_ARGV[0], example, TG_ARGV[1], wanted - present);
        END IF;
        RETURN NULL;
    END $$
    """,
    # After a row's UPDATE changed the column: TG_ARGV = column, referenced table, constraint.
    r"""
    CREATE OR REPLACE FUNCTION batched_key_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        value text;
        found_id text;
    BEGIN
        EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) USING NEW INTO value;
        IF value IS NOT NULL THEN
            EXECUTE format('SELECT id::text FROM %I WHERE id = $1::bigint FOR KEY SHARE', TG_ARGV[1])
                USING value INTO found_id;
            IF found_id IS NULL THEN
                RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
                    TG_TABLE_NAME, TG_ARGV[2]
                    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[2], TABLE = TG_TABLE_NAME,
                        DETAIL = format('Key (%s)=(%s) is not present in table "%s".', TG_ARGV[0], value, TG_ARGV[1]);
            END IF;
        END IF;
        RETURN NULL;
    END $$
    """,
    # After a DELETE statement on the referenced table: TG_ARGV = referencing table, column,
    # constraint. An id deleted and inserted again by the same statement is not gone.
    r"""
    CREATE OR REPLACE FUNCTION batched_key_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        example text;
    BEGIN
        EXECUTE format(
            'SELECT o.id::text FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM %1$I r WHERE r.id = o.id) '
            'AND EXISTS (SELECT 1 FROM %2$I c WHERE c.%3$I = o.id) LIMIT 1',
            TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1]) INTO example;
        IF example IS NOT NULL THEN
            RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
                TG_TABLE_NAME, TG_ARGV[2], TG_ARGV[0]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[2], TABLE = TG_ARGV[0],
                    DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', example, TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END $$
    """,
    # After a row's UPDATE changed a referenced id: TG_ARGV = referencing table, column, constraint.
    r"""
    CREATE OR REPLACE FUNCTION batched_key_rekeyed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        referenced boolean;
    BEGIN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I = $1)', TG_ARGV[0], TG_ARGV[1])
            USING OLD.id INTO referenced;
        IF referenced THEN
            RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
                TG_TABLE_NAME, TG_ARGV[2], TG_ARGV[0]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[2], TABLE = TG_ARGV[0],
                    DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', OLD.id, TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END $$
    """,
)
DROP_FUNCTIONS = tuple(
    f"DROP FUNCTION {name}()"
    for name in ("batched_key_inserted", "batched_key_updated", "batched_key_deleted", "batched_key_rekeyed")
)


# After a TRUNCATE of the referenced table: TG_ARGV = referencing table, column, constraint.
# PostgreSQL fires the AFTER TRUNCATE triggers once every table the statement names is empty,
# so a referencing table truncated with it passes. The error is PostgreSQL's own for a
# constraint (SQLSTATE 0A000, feature_not_supported), naming the constraint.
TRUNCATE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION batched_key_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I IS NOT NULL)', TG_ARGV[0], TG_ARGV[1])
        INTO referenced;
    IF referenced THEN
        RAISE EXCEPTION 'cannot truncate a table referenced in a foreign key constraint'
            USING ERRCODE = 'feature_not_supported', CONSTRAINT = TG_ARGV[2], TABLE = TG_TABLE_NAME,
                DETAIL = format('Table "%s" references "%s".', TG_ARGV[0], TG_TABLE_NAME),
                HINT = format('Truncate table "%s" at the same time.', TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$
"""
DROP_TRUNCATE_FUNCTION = "DROP FUNCTION batched_key_truncated()"


def guard_truncate(key: BatchedKey) -> str:
    """The statement that makes a TRUNCATE of ``key``'s referenced table check the key (after
    ``TRUNCATE_FUNCTION``)."""
    return (
        f"CREATE TRIGGER {key.truncate_trigger} AFTER TRUNCATE ON {key.referenced} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION batched_key_truncated('{key.table}', '{key.column}', '{key.constraint}')"
    )


def unguard_truncate(key: BatchedKey) -> str:
    return f"DROP TRIGGER {key.truncate_trigger} ON {key.referenced}"


def install(key: BatchedKey) -> list[str]:
    """Statements that replace ``key``'s constraint by its triggers (after ``FUNCTIONS``)."""
    name, table, column, referenced = key.constraint, key.table, key.column, key.referenced
    inserted, updated, deleted, rekeyed = key.triggers()
    forward = f"'{column}', '{referenced}', '{name}'"
    backward = f"'{table}', '{column}', '{name}'"
    return [
        f"ALTER TABLE {table} DROP CONSTRAINT {name}",
        f"CREATE TRIGGER {inserted} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION batched_key_inserted({forward})",
        f"CREATE TRIGGER {updated} AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
        f"WHEN (NEW.{column} IS DISTINCT FROM OLD.{column}) EXECUTE FUNCTION batched_key_updated({forward})",
        f"CREATE TRIGGER {deleted} AFTER DELETE ON {referenced} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION batched_key_deleted({backward})",
        f"CREATE TRIGGER {rekeyed} AFTER UPDATE OF id ON {referenced} FOR EACH ROW "
        f"WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION batched_key_rekeyed({backward})",
    ]


def uninstall(key: BatchedKey) -> list[str]:
    """Statements that put ``key``'s constraint back (before ``DROP_FUNCTIONS``)."""
    drops = [f"DROP TRIGGER {trigger} ON {table}" for trigger, table in key.triggers().items()]
    return [
        *drops,
        f"ALTER TABLE {key.table} ADD CONSTRAINT {key.constraint} "
        f"FOREIGN KEY ({key.column}) REFERENCES {key.referenced} (id)",
    ]
