"""The earnings page: gross, power cost and net by day, week or month as a chart; the jobs behind them in a
sortable, filterable table that exports to CSV; and what the payout vault owes, with a Claim button.

Everything comes from the agent's ledger through the AgentLink; the page keeps the last answers
(``summary``, ``export``, ``claimable``) so what it shows is what the agent said.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import QDate, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from sparecycles.control.client import ControlClient
from sparecycles.control.ledger import EarningsSummary, LedgerExport, LedgerSettingsView
from sparecycles.control.models import AgentEvent, EventType
from sparecycles.control.wallet import ClaimableView, ClaimResult
from sparecycles.fileio import atomic_write_text
from sparecycles.ledger_cli import export_csv
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.charts import EarningsChart
from sparecycles.ui.ledger_table import JobsTableModel, sorting_proxy
from sparecycles.ui.money import bucket_figures, money_text, token_text

DEFAULT_DAYS = 30
JOB_SETTLE_MS = 2000  # after a job's state changes, before the ledger is read again
CLAIM_TIMEOUT_S = 60.0  # the agent waits up to 30 s for the claim to be mined (as the CLI does)
Loaded = tuple[EarningsSummary, LedgerSettingsView, LedgerExport]


def _load(client: ControlClient, since: date, until: date, by: str) -> Loaded:
    return client.earnings(since, until, by), client.ledger(), client.export(since, until)


class EarningsPage(QWidget):
    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Earnings")
        self.summary: EarningsSummary | None = None
        self.export: LedgerExport | None = None
        self.claimable: ClaimableView | None = None
        self.decimals: int | None = None
        self._asked = 0  # the latest load asked for; older answers are dropped

        period = self._build_period()
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        self.chart = EarningsChart()
        self.chart.setMinimumHeight(220)

        tools = self._build_jobs()
        claim_box = self._build_claim()

        layout = QVBoxLayout(self)
        layout.addLayout(period)
        layout.addWidget(self.totals)
        layout.addWidget(self.notes)
        layout.addWidget(self.chart, 1)
        layout.addLayout(tools)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.export_message)
        layout.addWidget(claim_box)

        self.by.currentIndexChanged.connect(self.reload)
        self.since.dateChanged.connect(self.reload)
        self.until.dateChanged.connect(self.reload)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.export_button.clicked.connect(self.export_to_csv)
        self.claim_button.clicked.connect(self.claim)
        self._after_job = QTimer(self, singleShot=True, interval=JOB_SETTLE_MS)
        self._after_job.timeout.connect(self.refresh)
        link.event_received.connect(self._event)
        link.state_changed.connect(self._link_state)
        self.refresh()

    def _link_state(self, state: str, _message: str) -> None:
        """The agent answers (at last, or again): read the ledger."""
        if state == LinkState.CONNECTED:
            self.refresh()

    def _event(self, event: AgentEvent) -> None:
        """A job changed state: its energy and credit reach the ledger, so read it again (once, shortly)."""
        if event.type is EventType.JOB_STATE:
            self._after_job.start()

    def _build_period(self) -> QHBoxLayout:
        self.by = QComboBox()
        for by, text in (("day", self.tr("by day")), ("week", self.tr("by week")), ("month", self.tr("by month"))):
            self.by.addItem(text, by)
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-DEFAULT_DAYS))
        self.until = QDateEdit(today)
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")  # as the ledger's buckets are named
        refresh = QPushButton(self.tr("Refresh"))
        period = QHBoxLayout()
        for widget in (self.by, QLabel(self.tr("from")), self.since, QLabel(self.tr("to")), self.until, refresh):
            period.addWidget(widget)
        period.addStretch(1)
        refresh.clicked.connect(self.refresh)
        return period

    def _build_jobs(self) -> QHBoxLayout:
        self.jobs = JobsTableModel(self)
        self.proxy = sorting_proxy(self.jobs)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.filter = QLineEdit(placeholderText=self.tr("Filter jobs (any column: a date, a GPU, pending…)"))
        self.filter.setClearButtonEnabled(True)
        self.export_button = QPushButton(self.tr("Export CSV…"))
        self.export_button.setEnabled(False)
        self.export_message = QLabel()
        tools = QHBoxLayout()
        tools.addWidget(self.filter, 1)
        tools.addWidget(self.export_button)
        return tools

    def _build_claim(self) -> QGroupBox:
        self.claim_label = QLabel(self.tr("Asking the agent what is claimable…"))
        self.claim_label.setWordWrap(True)
        self.claim_button = QPushButton(self.tr("Claim"))
        self.claim_button.setEnabled(False)
        self.claim_message = QLabel()
        self.claim_message.setWordWrap(True)
        self.claim_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        claim_box = QGroupBox(self.tr("Payout vault"))
        claim_layout = QVBoxLayout(claim_box)
        claim_row = QHBoxLayout()
        claim_row.addWidget(self.claim_label, 1)
        claim_row.addWidget(self.claim_button)
        claim_layout.addLayout(claim_row)
        claim_layout.addWidget(self.claim_message)
        return claim_box

    # -- earnings and jobs --------------------------------------------------------------------------

    def refresh(self) -> None:
        self.reload()
        self.reload_claimable()

    def period(self) -> tuple[date, date]:
        since, until = self.since.date(), self.until.date()
        return date(since.year(), since.month(), since.day()), date(until.year(), until.month(), until.day())

    def reload(self) -> None:
        since, until = self.period()
        if until < since:
            self.notes.setText(self.tr("The period ends before it starts."))
            return
        by = str(self.by.currentData())
        self._asked += 1
        asked = self._asked
        self.link.call(
            lambda client: _load(client, since, until, by),
            lambda loaded: self._loaded(asked, by, loaded),
            lambda message: self._load_failed(asked, message),
            owner=self,
        )

    def _loaded(self, asked: int, by: str, loaded: Loaded) -> None:
        if asked != self._asked:
            return
        summary, ledger, export = loaded
        self.summary, self.export = summary, export
        self.decimals = ledger.token_rate.decimals if ledger.token_rate is not None else None
        currency = summary.total.currency or self.tr("no currency")
        gross_unit = currency if summary.token_rate is not None else self._token_unit()
        self.chart.show_figures(bucket_figures(summary, self.decimals), by, gross_unit, currency)
        self.jobs.set_rows(export.rows, self.decimals)
        self.export_button.setEnabled(bool(export.rows))
        total = summary.total
        self.totals.setText(
            self.tr(
                "{since} to {until}: gross {gross} {unit}, power cost {cost}, net {net} ({kwh} kWh of work)"
            ).format(
                since=summary.since,
                until=summary.until,
                gross=token_text(total.gross_base_units, self.decimals),
                unit=self._token_unit(),
                cost=self._money(total.power_cost, total.currency),
                net=self._money(total.net, total.currency),
                kwh=format(total.energy_wh / 1000, "f"),
            )
        )
        notes = [self.tr("Net is not shown: {why}.").format(why=why) for why in summary.missing]
        if ledger.problem:
            notes.append(self.tr("The ledger is not recording: {why}").format(why=ledger.problem))
        self.notes.setText("\n".join(notes))

    def _load_failed(self, asked: int, message: str) -> None:
        if asked == self._asked:
            self.notes.setText(self.tr("Could not read the ledger: {why}").format(why=message))

    def _token_unit(self) -> str:
        return self.tr("tokens") if self.decimals is not None else self.tr("base units")

    @staticmethod
    def _money(amount: Decimal | None, currency: str | None) -> str:
        return f"{money_text(amount)} {currency or ''}".strip() if amount is not None else "-"

    def export_to_csv(self) -> None:
        """Save the period's jobs as the CLI's `sparecycles export` would write them."""
        if self.export is None:
            return
        suggested = f"sparecycles-{self.export.since}-{self.export.until}.csv"
        chosen, _filter = QFileDialog.getSaveFileName(
            self, self.tr("Export the jobs as CSV"), str(Path.home() / suggested), self.tr("CSV files (*.csv)")
        )
        if not chosen:
            return
        try:
            atomic_write_text(Path(chosen), export_csv(self.export))
        except OSError as exc:
            self.export_message.setText(self.tr("Cannot write {file}: {why}").format(file=chosen, why=exc.strerror))
            return
        self.export_message.setText(self.tr("Wrote {n} jobs to {file}.").format(n=len(self.export.rows), file=chosen))

    # -- claiming ------------------------------------------------------------------------------------

    def reload_claimable(self) -> None:
        self.link.call(
            lambda client: ClaimableView.model_validate(client.wallet_call("GET", "/claimable")),
            self._claimable_loaded,
            self._claimable_failed,
        )

    def _claimable_loaded(self, view: ClaimableView) -> None:
        self.claimable = view
        amount = token_text(view.claimable, view.decimals)
        to = view.payout_address or self.tr("no payout address yet")
        self.claim_label.setText(self.tr("Claimable: {amount} tokens, to {to}").format(amount=amount, to=to))
        why = view.problem or (
            self.tr("A claim is on its way: transaction {tx}").format(tx=view.pending_tx) if view.pending_tx else ""
        )
        self.claim_message.setText(why)
        self.claim_button.setEnabled(view.claimable > 0 and view.problem is None and view.pending_tx is None)

    def _claimable_failed(self, message: str) -> None:
        self.claimable = None
        self.claim_label.setText(self.tr("Nothing can be claimed here."))
        self.claim_message.setText(message)
        self.claim_button.setEnabled(False)

    def claim(self) -> None:
        self.claim_button.setEnabled(False)
        self.claim_message.setText(self.tr("Claiming… (this waits for the transaction to be mined)"))
        self.link.call(
            lambda client: ClaimResult.model_validate(client.wallet_call("POST", "/claim", timeout=CLAIM_TIMEOUT_S)),
            self._claimed,
            self._claim_refused,
            timeout=CLAIM_TIMEOUT_S,
        )

    def _claimed(self, result: ClaimResult) -> None:
        decimals = self.claimable.decimals if self.claimable is not None else None
        amount = token_text(result.amount, decimals)
        if result.state == "mined":
            text = self.tr("Claimed {amount} tokens to {to}: transaction {tx}.")
        elif result.state == "relay_requested":
            text = self.tr("The marketplace was asked to send a claim of {amount} tokens to {to}; it pays the gas.")
        else:
            text = self.tr("Claim of {amount} tokens sent, not mined yet: transaction {tx}.")
        self.claim_message.setText(text.format(amount=amount, to=result.payout_address or "-", tx=result.tx_hash))
        self._reload_keeping_message()

    def _reload_keeping_message(self) -> None:
        self.link.call(
            lambda client: ClaimableView.model_validate(client.wallet_call("GET", "/claimable")),
            self._after_claim,
            lambda _message: self.claim_button.setEnabled(False),
            owner=self,
        )

    def _after_claim(self, view: ClaimableView) -> None:
        message = self.claim_message.text()
        self._claimable_loaded(view)
        self.claim_message.setText(message)  # the outcome stays in view

    def _claim_refused(self, message: str) -> None:
        self.claim_message.setText(self.tr("The claim was refused: {why}").format(why=message))
        self._reload_keeping_message()
