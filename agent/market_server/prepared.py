"""The marketplace's busiest SQLite statements run on the driver's cursor, compiled once by SQLAlchemy.

Why: on SQLite ``market serve`` answers on one thread, so every microsecond of CPU per statement is throughput.
SQLAlchemy's Core execution (an execution context, the compiled-cache lookup, parameter processing, a result
object with its metadata) took about two thirds of a hot statement's CPU, the database the rest. A job runs
some twenty such statements (submit, polls, heartbeat, report): docs/benchmarks.md, market_load.

What stays SQLAlchemy's: the SQL itself (compiled by SQLAlchemy for the dialect, once), and the conversion of
every parameter and every column (its own bind and result processors for each type, the project's
``UtcDateTime`` and ``BaseUnitsType`` included). Only the execution around them is skipped. So a prepared
statement answers exactly as ``Connection.execute`` does; tests/market/test_prepared.py compares the two on
every statement prepared.

Only what can be run that way is accepted, and anything else refused when the statement is prepared (at the
server's start, not at a request): a SQLite statement with positional parameters, no parameter expanded at
run time (``IN`` lists), and an insert only for a fixed set of columns that leaves none to a default computed
in Python (SQLAlchemy fills those in when it runs an insert; here each execution must give exactly the columns
it was prepared for, or it is refused).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a parameter the statement has no value of: each execution must give one


class Rows(Protocol):
    """What the marketplace reads of a statement's result: SQLAlchemy's results and ``PreparedRows`` both are."""

    def __iter__(self) -> Iterator[Any]: ...

    def one(self) -> Any: ...

    def one_or_none(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...

    def __enter__(self) -> Rows: ...

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None: ...


class PreparedStatement:
    """One Core statement compiled for SQLite, run on the DBAPI connection of a SQLAlchemy ``Connection``
    (inside its transaction, which SQLAlchemy still begins and commits)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, *, columns: Sequence[str] | None = None) -> None:
        """``columns``: for an insert, the columns every execution gives (and no other)."""
        if dialect.name != "sqlite":
            raise ValueError(f"prepared statements are for SQLite, not {dialect.name}")
        self._columns: frozenset[str] | None = None
        if isinstance(statement, Insert):
            if not columns:
                raise ValueError("an insert is prepared for the columns each execution gives: name them")
            self._columns = frozenset(columns)
        elif columns is not None:
            raise ValueError("columns are named for an insert only: this statement's parameters are its own")
        compiled = statement.compile(dialect=dialect, column_keys=sorted(self._columns) if self._columns else None)
        if not isinstance(compiled, SQLCompiler):
            raise ValueError(f"not a SQL statement: {statement}")
        if compiled.positiontup is None or compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError(f"not a statement with plain positional parameters: {compiled.string}")
        if compiled.insert_prefetch or compiled.effective_returning:
            raise ValueError(
                f"an insert that leaves columns to defaults made in Python, or returns rows: {compiled.string}"
            )
        # SQLAlchemy's own conversions of each parameter and each column, kept (private attributes: the compiled
        # form is SQLAlchemy's, and tests/market/test_prepared.py checks every statement against its execution).
        processors = compiled._bind_processors
        self.sql = compiled.string
        self._parameters: list[tuple[str, _Processor, Any]] = []
        for name in compiled.positiontup:
            process = processors.get(name)
            if process is not None and not callable(process):
                raise ValueError(f"parameter {name} is a tuple, converted in parts: {compiled.string}")
            bound = compiled.binds[name]
            self._parameters.append((name, cast("_Processor", process), _REQUIRED if bound.required else bound.value))
        results = compiled._result_columns or []
        self._converters: list[_Processor] = [
            type_._cached_result_processor(dialect, None) for _key, _name, _objects, type_ in results
        ]
        # Rows read by column name as SQLAlchemy's are; a name that is not an identifier is refused here.
        self._row = collections.namedtuple("Row", [key for key, _name, _objects, _type in results]) if results else None

    def _values(self, parameters: Mapping[str, Any]) -> list[Any]:
        if self._columns is not None and parameters.keys() != self._columns:
            raise InvalidRequestError(
                f"an insert prepared for {sorted(self._columns)} was given {sorted(parameters)}: "
                "prepare it for the columns given"
            )
        values = []
        for name, process, default in self._parameters:
            value = parameters.get(name, default)
            if value is _REQUIRED:
                raise InvalidRequestError(f"A value is required for bind parameter {name!r}")
            values.append(value if process is None or value is None else process(value))
        return values

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> PreparedRows:
        driver: Any = connection.connection.driver_connection
        return PreparedRows(driver.execute(self.sql, self._values(parameters)), self._row, self._converters)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once for each of ``rows`` (an insert of several rows), as ``Connection.execute`` with a
        list does."""
        driver: Any = connection.connection.driver_connection
        driver.executemany(self.sql, [self._values(row) for row in rows]).close()


class PreparedRows:
    """A prepared statement's result, read as SQLAlchemy's is: rows by column name, ``one()``, ``all()``…"""

    def __init__(self, cursor: Any, row: Callable[..., Any] | None, converters: list[_Processor]) -> None:
        self._cursor = cursor
        self._make = row
        self._converters = converters

    def _row(self, raw: Sequence[Any]) -> Any:
        if self._make is None:
            raise TypeError("this statement returns no rows")
        return self._make(
            *[
                value if convert is None or value is None else convert(value)
                for convert, value in zip(self._converters, raw, strict=True)
            ]
        )

    def __iter__(self) -> Iterator[Any]:
        for raw in self._cursor:
            yield self._row(raw)

    def __enter__(self) -> PreparedRows:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self._cursor.close()

    def all(self) -> list[Any]:
        try:
            return [self._row(raw) for raw in self._cursor.fetchall()]
        finally:
            self._cursor.close()

    def one_or_none(self) -> Any:
        try:
            found = self._cursor.fetchmany(2)
        finally:
            self._cursor.close()
        if len(found) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self._row(found[0]) if found else None

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("No row was found when one was required")
        return row

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]
