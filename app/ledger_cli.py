"""``sparecycles earnings``, ``export``, ``tariff`` and ``rate``: the agent's ledger on the command line.

The ledger lives in the agent; these commands read their arguments, ask the agent through its control API
and format the answer. They are registered on the main app by :func:`register_ledger_commands`, which is
handed how to reach the agent and how to fail, so this module never imports ``sparecycles.cli``. Nor does it
import the agent's code (the layering contract in pyproject.toml): a tariff file is read and its TOML checked
here, and what its settings mean is checked by the agent, whose refusal is shown with the file's name.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import tomllib
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sparecycles.command_wiring import Connect, Fail
from sparecycles.control.errors import AgentRequestError
from sparecycles.control.ledger import EarningsSummary, ExportRow, LedgerExport, LedgerSettingsView, Money

if TYPE_CHECKING:  # the agent's client loads when a command talks to the agent
    pass


EXIT_USAGE = 2  # as everywhere in the CLI: invalid arguments
BUCKETS = ("hour", "day", "week", "month", "job", "gpu")
FORMATS = ("csv", "json")
EXPORT_COLUMNS = tuple(ExportRow.model_fields)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NONE = "-"
HTTP_UNPROCESSABLE = 422
TARIFF_REFUSED = "The tariff was not changed:"  # how the agent starts its refusal of a tariff

Since = Annotated[
    str | None, typer.Option("--since", metavar="DATE", help="First day, YYYY-MM-DD (default: 30 days ago).")
]
Until = Annotated[
    str | None, typer.Option("--until", metavar="DATE", help="Last day, included, YYYY-MM-DD (default: today).")
]


# -- reading arguments ------------------------------------------------------------------------------


def parse_day(text: str | None, option: str) -> date | None:
    """A YYYY-MM-DD day, or None when not given; ValueError says what is wrong."""
    if text is None:
        return None
    try:
        if not _DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a day: use YYYY-MM-DD, like 2026-11-25") from None


def parse_period(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    if first is not None and last is not None and last < first:
        raise ValueError(f"--until {last} is before --since {first}")
    return first, last


def parse_rate(amount: str, currency: str, decimals: int) -> tuple[Decimal, str, int]:
    """What one whole token is worth: a positive amount, a three-letter currency code, 0 to 36 decimals."""
    try:
        per_token = Decimal(amount.strip())
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount: give what one whole token is worth, like 0.85") from None
    if not per_token.is_finite() or per_token <= 0:
        raise ValueError(f"the amount must be a number above 0, not {amount!r}")
    code = currency.strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"{currency!r} is not a currency code: use three letters, like EUR or USD")
    if not 0 <= decimals <= 36:
        raise ValueError(f"--decimals must be from 0 to 36 (the token's own; 18 for most), not {decimals}")
    return per_token, code, decimals


def read_tariff_file(path: Path) -> tuple[str, dict[str, Any]]:
    """The tariff file's text and its TOML table; ValueError names the file and what is wrong (with the line,
    for TOML syntax). What the settings mean is checked by the agent, which keeps the tariff."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read the tariff file {path}: {exc.strerror or exc}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None


def _agent_reason(exc: AgentRequestError) -> str:
    """The agent's refusal of a tariff, without its own preamble (the CLI says what stays unchanged)."""
    reason = str(exc).removeprefix(TARIFF_REFUSED).strip()
    problems = "; ".join(exc.problems)
    text = f"{reason} {problems}".strip()
    return text if text.endswith(".") else f"{text}."


# -- formatting ---------------------------------------------------------------------------------------


def token_text(base_units: int, decimals: int | None) -> str:
    """Base units as whole tokens, exactly (``15000`` with 4 decimals is ``1.5``); base units when unknown."""
    if decimals is None:
        return str(base_units)
    with localcontext() as context:
        context.prec = 100
        return _plain(Decimal(base_units).scaleb(-decimals).normalize())


def money_text(amount: Decimal | None) -> str:
    """An amount of money for reading: at least cents, at most six decimals."""
    if amount is None:
        return _NONE
    with localcontext() as context:
        context.prec = 100
        text = _plain(amount.quantize(Decimal("0.000001")).normalize())
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _plain(value: Decimal) -> str:
    """Decimal text without an exponent (``1E-7`` is ``0.0000001``)."""
    return format(value, "f")


def earnings_lines(summary: EarningsSummary, decimals: int | None) -> list[str]:
    """The summary as a table with a total line, then what keeps net from being shown."""
    currency = summary.total.currency
    unit = "tokens" if decimals is not None else "base units"
    money_unit = f" ({currency})" if currency else ""
    header = ("bucket", f"gross ({unit})", "pending", "energy (Wh)", f"power cost{money_unit}", f"net{money_unit}")

    def cells(label: str, money: Money) -> tuple[str, ...]:
        return (
            label,
            token_text(money.gross_base_units, decimals),
            token_text(money.pending_base_units, decimals),
            _plain(money.energy_wh),
            money_text(money.power_cost) if money.currency else _NONE,
            money_text(money.net),
        )

    body = [cells(row.bucket, row) for row in summary.rows]
    total = cells("total", summary.total)
    rate = f"; 1 token = {_plain(summary.token_rate)} {currency or ''}".rstrip() if summary.token_rate else ""
    lines = [f"Earnings {summary.since} to {summary.until} by {summary.by} ({summary.time_zone}){rate}"]
    if body:
        lines += ["", *_table(header, body, total)]
    else:
        lines.append("No work and no earnings recorded in this period.")
    lines += [f"Note: {note}" for note in summary.missing]
    return lines


def _table(header: Sequence[str], body: Sequence[Sequence[str]], total: Sequence[str]) -> list[str]:
    widths = [max(len(row[column]) for row in (header, *body, total)) for column in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(header), rule, *(line(row) for row in body), rule, line(total)]


def export_csv(export: LedgerExport) -> str:
    """One header row and one row per lease; times in ISO 8601, amounts as plain decimal text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in export.rows:
        writer.writerow([_csv_cell(getattr(row, column)) for column in EXPORT_COLUMNS])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _plain(value)
    return str(value)


def rate_text(view: LedgerSettingsView) -> str:
    rate = view.token_rate
    if rate is None:
        return "No token rate set: `sparecycles rate set AMOUNT CURRENCY` (what one whole token is worth to you)."
    return f"1 token = {_plain(rate.per_token)} {rate.currency} (the token has {rate.decimals} decimals)"


def tariff_text(view: LedgerSettingsView) -> str:
    """The tariff's file as the agent keeps it, under a comment saying since when (so it can be saved again)."""
    if view.tariff is None or view.tariff_since is None:
        return "No tariff set: `sparecycles tariff set FILE` (see examples/tariff.toml)."
    since = view.tariff_since.astimezone().isoformat(timespec="seconds")
    return f"# The tariff in force since {since}\n{view.tariff.rstrip()}"


def _write_problem(view: LedgerSettingsView) -> None:
    if view.problem:
        sys.stderr.write(f"Warning: the ledger is not recording: {view.problem}\n")


# -- the commands -------------------------------------------------------------------------------------


def register_ledger_commands(app: typer.Typer, connect: Connect, fail: Fail) -> None:
    """Add ``earnings``, ``export``, ``tariff …`` and ``rate …`` to ``app``.

    ``connect`` opens a client of the running agent (ending the command with a message when there is
    none); ``fail`` prints a one-line error and exits with the code given.
    """
    _add_reports(app, connect, fail)
    app.add_typer(_tariff_app(connect, fail), name="tariff")
    app.add_typer(_rate_app(connect, fail), name="rate")


def _add_reports(app: typer.Typer, connect: Connect, fail: Fail) -> None:
    def period(since: str | None, until: str | None) -> tuple[date | None, date | None]:
        try:
            return parse_period(since, until)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)

    @app.command()
    def earnings(
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON, amounts exact.")] = False,
        since: Since = None,
        until: Until = None,
        by: Annotated[
            str, typer.Option("--by", metavar="hour|day|week|month|job|gpu", help="One row per hour, day, week, …")
        ] = "day",
    ) -> None:
        """What the GPUs earned, the electricity it took and what is left, with a total."""
        first, last = period(since, until)
        if by not in BUCKETS:
            fail(f"--by {by!r}: use one of {', '.join(BUCKETS)}", EXIT_USAGE)
        with connect() as client:
            summary = client.earnings(first, last, by)
            rate = None if as_json else client.ledger().token_rate
        if as_json:
            sys.stdout.write(summary.model_dump_json(indent=2) + "\n")
            return
        decimals = rate.decimals if rate is not None else None
        sys.stdout.write("\n".join(earnings_lines(summary, decimals)) + "\n")

    @app.command()
    def export(
        format_: Annotated[str, typer.Option("--format", metavar="csv|json", help="CSV (default) or JSON.")] = "csv",
        since: Since = None,
        until: Until = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (default: print).")
        ] = None,
    ) -> None:
        """One row per lease, for a spreadsheet or an accountant: times, energy, power cost, gross, net, voucher."""
        first, last = period(since, until)
        if format_ not in FORMATS:
            fail(f"--format {format_!r}: use csv or json", EXIT_USAGE)
        with connect() as client:
            document = client.export(first, last)
        text = export_csv(document) if format_ == "csv" else document.model_dump_json(indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
            return
        from sparecycles.fileio import atomic_write_text

        try:
            atomic_write_text(output, text)
        except OSError as exc:
            fail(f"Cannot write {output}: {exc.strerror or exc}", EXIT_USAGE)
        leases = "lease" if len(document.rows) == 1 else "leases"
        sys.stdout.write(f"Wrote {len(document.rows)} {leases} ({document.since} to {document.until}) to {output}\n")

    @app.command()
    def payouts(as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False) -> None:
        """The payouts the vault made (mined claims, relayed ones too): when, how much, to whom, the transaction."""
        with connect() as client:
            found = client.payouts()
            rate = None if as_json else client.ledger().token_rate
        if as_json:
            sys.stdout.write(found.model_dump_json(indent=2) + "\n")
            return
        if not found.payouts:
            sys.stdout.write("No payouts yet: `sparecycles wallet claimable` shows what a claim would pay.\n")
            return
        decimals = rate.decimals if rate is not None else None
        for payout in found.payouts:
            sys.stdout.write(
                f"{payout.claimed:%Y-%m-%d %H:%M} UTC  {token_text(payout.amount_base_units, decimals)}  "
                f"to {payout.payout_address}  chain {payout.chain_id}  tx {payout.tx_hash}\n"
            )


def _tariff_app(connect: Connect, fail: Fail) -> typer.Typer:
    tariff_app = typer.Typer(help="Your electricity tariff: what a kWh costs, by time of day.", no_args_is_help=True)

    @tariff_app.command("set")
    def tariff_set(
        file: Annotated[Path, typer.Argument(metavar="FILE", help="A tariff file (see examples/tariff.toml).")],
    ) -> None:
        """Use this tariff from now on (energy already recorded keeps the cost it had)."""
        unchanged = "The tariff in force is unchanged."
        try:
            document, table = read_tariff_file(file)
        except ValueError as exc:
            fail(f"{exc}. {unchanged}", EXIT_USAGE)
        with connect() as client:
            try:
                view = client.set_tariff(document)
            except AgentRequestError as exc:
                if exc.status_code != HTTP_UNPROCESSABLE:
                    raise
                fail(f"{file}: {_agent_reason(exc)} {unchanged}", EXIT_USAGE)
        windows = len(table.get("window", []))
        times = f", {windows} time-of-use window{'s' if windows != 1 else ''}" if windows else ""
        sys.stdout.write(
            f"Tariff set from {file}: {table.get('currency')} {table.get('price_per_kwh')} per kWh by default{times}. "
            "It applies from now on; energy already recorded keeps its cost.\n"
        )
        _write_problem(view)

    @tariff_app.command("show")
    def tariff_show() -> None:
        """Print the tariff in force, as a tariff file."""
        with connect() as client:
            view = client.ledger()
        sys.stdout.write(tariff_text(view) + "\n")
        _write_problem(view)

    return tariff_app


def _rate_app(connect: Connect, fail: Fail) -> typer.Typer:
    rate_app = typer.Typer(help="What one token is worth to you, for net earnings.", no_args_is_help=True)

    @rate_app.command("set")
    def rate_set(
        amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="One whole token's worth, like 0.85.")],
        currency: Annotated[str, typer.Argument(metavar="CURRENCY", help="Its currency: EUR, USD, …")],
        decimals: Annotated[
            int, typer.Option("--decimals", metavar="N", help="The token's decimals (base units per token: 10^N).")
        ] = 18,
    ) -> None:
        """Set what one whole token is worth to you; nothing is looked up online.

        Net earnings are gross at this rate less the power cost, so give it in the tariff's currency.
        """
        try:
            per_token, code, places = parse_rate(amount, currency, decimals)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        with connect() as client:
            view = client.set_token_rate(per_token, code, places)
        sys.stdout.write(f"Token rate set: {rate_text(view)}. Nothing is looked up online: update it yourself.\n")
        _write_problem(view)

    @rate_app.command("show")
    def rate_show() -> None:
        """Print the token rate in use."""
        with connect() as client:
            view = client.ledger()
        sys.stdout.write(rate_text(view) + "\n")
        _write_problem(view)

    return rate_app
