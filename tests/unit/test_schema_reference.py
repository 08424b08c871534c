"""Every column of `events` and `alerts` says what it holds (migration 0061), `extractguard sql
--schema` lists them, and the README's schema reference is exactly what the migrations give."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from extractguard.cli import main
from extractguard.storage import schema
from tests.conftest import migrated_client, read_only_query

pytestmark = pytest.mark.clickhouse
README = Path(__file__).parents[2] / "README.md"
BEGIN, END = (
    "<!-- schema reference: extractguard sql --schema --format markdown -->",
    "<!-- end of schema reference -->",
)


@pytest.fixture
def client(embedded_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    handle = migrated_client(embedded_path, events_ttl_days=30)
    monkeypatch.setattr("extractguard.storage.query.query_any", read_only_query(handle))
    yield handle


def test_every_events_and_alerts_column_has_a_comment(client: Client) -> None:
    rows = client.query(schema.columns_sql(schema.DOCUMENTED_TABLES)).result_rows
    by_table = {t: [r for r in rows if r[0] == t] for t in schema.DOCUMENTED_TABLES}
    assert len(by_table["events"]) == 60 and len(by_table["alerts"]) == 16
    assert [r[1] for r in rows if not r[3].strip()] == []


def test_sql_schema_lists_them_and_the_readme_reference_is_generated_from_them(client: Client) -> None:
    listed = CliRunner().invoke(main, ["sql", "--schema"])
    assert listed.exit_code == 0, listed.output
    assert "output_tokens" in listed.output and "gen_ai.usage.output_tokens" in listed.output
    generated = CliRunner().invoke(main, ["sql", "--schema", "--format", "markdown"])
    assert generated.exit_code == 0, generated.output
    text = README.read_text()
    in_readme = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert in_readme == generated.output.strip(), "regenerate: extractguard sql --schema --format markdown"
    assert CliRunner().invoke(main, ["sql"]).exit_code == 2  # neither a query nor --schema
