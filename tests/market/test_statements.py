"""The polls' prepared statements: written so that each execution only binds values (a constant list given as
values would be expanded into the SQL again at every poll), and guarded against anything but state names."""

from __future__ import annotations

import types

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from sparecycles.agent.market_server import market


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_the_poll_statements_need_no_expanding_at_execution(dialect: object) -> None:
    postgresql = getattr(dialect, "name", "") == "postgresql"
    statements = market._Statements(types.SimpleNamespace(bids_per_poll=8), postgresql=postgresql)
    for statement in (statements.provider_leases, statements.biddable, statements.biddable_in_group):
        compiled = statement.compile(dialect=dialect)  # type: ignore[arg-type]
        assert "POSTCOMPILE" not in str(compiled)
        assert "IN ('" in str(compiled)  # the states, written into the statement


def test_only_state_names_are_written_into_a_statement() -> None:
    with pytest.raises(ValueError, match="not a state name"):
        market._one_of(market.tables.Lease.state, ("active", "x') OR ('1"))
