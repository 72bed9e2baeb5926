"""Where the work comes from and what the electricity costs: the marketplace, the tariff and what a payout
token is worth to the user (their own figure; nothing is looked up)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from PySide6.QtCore import QTimeZone
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.onboarding.step import AgentStep, StepProblem
from sparecycles.ui.widgets.settings_call import save_settings


class MarketplaceStep(AgentStep):
    def __init__(self, link: AgentLink) -> None:
        super().__init__(link)
        self.setTitle(self.tr("Marketplace"))
        self.private = QRadioButton(self.tr("The private marketplace on this computer (your own jobs)"))
        self.remote = QRadioButton(self.tr("A marketplace at this address:"))
        self.studio = QRadioButton(
            self.tr("Join a studio: its marketplace's address and the enrolment code it gave you")
        )
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://")
        self.code = QLineEdit()
        self.code.setPlaceholderText(self.tr("enrolment code (sce_…)"))
        self.private.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.private)
        group.addButton(self.remote)
        group.addButton(self.studio)
        self.url.textEdited.connect(self._url_edited)
        self.code.textEdited.connect(lambda _text: self.studio.setChecked(True))
        layout = QVBoxLayout(self)
        layout.addWidget(self.private)
        layout.addWidget(self.remote)
        layout.addWidget(self.studio)
        layout.addWidget(self.url)
        layout.addWidget(self.code)
        layout.addWidget(self.problem)
        layout.addStretch(1)

    def _url_edited(self, _text: str) -> None:
        if self.private.isChecked():
            self.remote.setChecked(True)

    def work(self) -> Callable[[ControlClient], Any]:
        url = self.url.text().strip()
        if self.studio.isChecked():
            code = self.code.text().strip()
            if not url.startswith(("http://", "https://")) or not code:
                raise StepProblem(self.tr("To join a studio, give its marketplace's address (https://…) and the code."))
            return lambda client: client.join_studio(url, code)
        return save_settings({"marketplace": {"url": url if self.remote.isChecked() else None}})


def system_zone() -> str:
    """The IANA name of this computer's time zone, which a tariff file needs."""
    return bytes(QTimeZone.systemTimeZoneId().data()).decode() or "UTC"


def flat_tariff(price_per_kwh: Decimal, currency: str, zone: str) -> str:
    """A tariff file's text with one price at all times (see examples/tariff.toml)."""
    return (
        f"currency = {json.dumps(currency)}\n"
        f"time_zone = {json.dumps(zone)}\n"
        f"price_per_kwh = {json.dumps(str(price_per_kwh))}\n"
    )


class TariffStep(AgentStep):
    """A flat price (most households), or a time-of-use tariff file's text; and the token's worth."""

    def __init__(self, link: AgentLink) -> None:
        super().__init__(link)
        self.setTitle(self.tr("Electricity and currency"))
        self.setSubTitle(self.tr("Earnings are shown net of electricity, and work is never bid below its cost."))
        self.flat = QRadioButton(self.tr("One price at all times"))
        self.time_of_use = QRadioButton(self.tr("Prices by time of day (a tariff file)"))
        self.flat.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.flat)
        group.addButton(self.time_of_use)
        self.price = QLineEdit()
        self.price.setPlaceholderText(self.tr("e.g. 0.32 (leave empty to set it later)"))
        self.currency = QLineEdit("EUR")
        self.currency.setMaxLength(3)
        self.zone = QLineEdit(system_zone())
        self.document = QPlainTextEdit()
        self.document.setPlaceholderText(self.tr("The text of a tariff file, see examples/tariff.toml"))
        self.document.setEnabled(False)
        self.time_of_use.toggled.connect(self._switch)
        self.token_value = QLineEdit()
        self.token_value.setPlaceholderText(self.tr("leave empty to set it later"))
        self.token_decimals = QSpinBox()
        self.token_decimals.setRange(0, 36)
        self.token_decimals.setValue(18)
        form = QFormLayout()
        form.addRow(self.tr("Price per kWh:"), self.price)
        form.addRow(self.tr("Currency:"), self.currency)
        form.addRow(self.tr("Time zone:"), self.zone)
        form.addRow(self.tr("One payout token is worth:"), self.token_value)
        form.addRow(self.tr("The token's decimals:"), self.token_decimals)
        layout = QVBoxLayout(self)
        layout.addWidget(self.flat)
        layout.addWidget(self.time_of_use)
        layout.addLayout(form)
        layout.addWidget(self.document)
        layout.addWidget(self.problem)

    def _switch(self, time_of_use: bool) -> None:
        self.document.setEnabled(time_of_use)
        self.price.setEnabled(not time_of_use)
        if time_of_use and not self.document.toPlainText().strip():
            price = _decimal(self.price.text().strip())  # "0,32" too; anything else: an example price
            self.document.setPlainText(
                flat_tariff(price if price is not None else Decimal("0.30"), self.currency.text(), self.zone.text())
                + '\n[[window]]\ndays = "weekdays"\nfrom = "17:00"\nto = "21:00"\nprice_per_kwh = "0.45"\n'
            )

    def work(self) -> Callable[[ControlClient], Any] | None:
        currency = self.currency.text().strip().upper()
        document: str | None = None
        if self.time_of_use.isChecked():
            document = self.document.toPlainText()
        elif self.price.text().strip():
            price = _decimal(self.price.text().strip())
            if price is None:
                raise StepProblem(self.tr("The price per kWh must be a number, like 0.32."))
            document = flat_tariff(price, currency, self.zone.text().strip())
        rate: Decimal | None = None
        if self.token_value.text().strip():
            rate = _decimal(self.token_value.text().strip())
            if rate is None:
                raise StepProblem(self.tr("A token's worth must be a number, like 1.00."))
        decimals = self.token_decimals.value()
        if document is None and rate is None:
            return None

        def apply(client: ControlClient) -> object:
            if document is not None:
                client.set_tariff(document)
            if rate is not None:
                client.set_token_rate(rate, currency, decimals)
            return None

        return apply


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
