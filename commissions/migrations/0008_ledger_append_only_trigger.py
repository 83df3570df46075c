"""The ledger is append-only in the database too: on PostgreSQL a trigger refuses any UPDATE
or DELETE of a ledger entry, whoever sends it (a shell, a script, a future bug). Corrections
are new entries. TRUNCATE (the test suite's flush) is not a row operation and still works.
SQLite (the demo) has no such guard."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION commissions_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % of ledger entry % refused; book a new entry '
        '(a manual adjustment or a reversal) instead', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END
$$;
DROP TRIGGER IF EXISTS commissions_ledger_append_only ON commissions_ledgerentry;
CREATE TRIGGER commissions_ledger_append_only
    BEFORE UPDATE OR DELETE ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION commissions_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS commissions_ledger_append_only ON commissions_ledgerentry;
DROP FUNCTION IF EXISTS commissions_ledger_append_only();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("commissions", "0007_statement_revshare_written_off")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
