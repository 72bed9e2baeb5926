"""Where the earnings go: a new wallet (its recovery phrase shown once, then three of its words asked
back), an imported one, or a watch-only address whose key stays elsewhere (a hardware wallet).

The key itself is made and kept by the agent (in the OS keyring); the phrase passes through this page
once, on request, and is cleared from it as soon as the words are confirmed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from sparecycles.control.client import ControlClient
from sparecycles.control.wallet import CreatedWallet, ExportedSecret, WalletList
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.onboarding.step import AgentStep, StepProblem


class PayoutStep(AgentStep):
    def __init__(self, link: AgentLink) -> None:
        super().__init__(link)
        self.setTitle(self.tr("Payouts"))
        self.setSubTitle(self.tr("Where your earnings are paid. The agent takes no work without a payout address."))
        self.name = QLineEdit("main")
        choices = QButtonGroup(self)
        self.create_choice = QRadioButton(self.tr("Create a new wallet"))
        self.import_ = QRadioButton(self.tr("Import a wallet (recovery phrase or private key)"))
        self.watch = QRadioButton(self.tr("Only an address (a hardware wallet, another computer)"))
        self.later = QRadioButton(self.tr("Later"))
        self.pages = QStackedWidget()
        for index, button in enumerate((self.create_choice, self.import_, self.watch, self.later)):
            choices.addButton(button, index)
        choices.idToggled.connect(lambda index, on: self.pages.setCurrentIndex(index) if on else None)

        create_page = QWidget()
        self.create_button = QPushButton(self.tr("Create it and show the recovery phrase"))
        self.create_button.clicked.connect(self._create)
        self.phrase = QLabel()
        self.phrase.setWordWrap(True)
        self.confirm_form = QFormLayout()
        self.word_edits: dict[int, QLineEdit] = {}
        create_layout = QVBoxLayout(create_page)
        create_layout.addWidget(self.create_button)
        create_layout.addWidget(self.phrase)
        create_layout.addLayout(self.confirm_form)
        self._created: str | None = None

        import_page = QWidget()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        QFormLayout(import_page).addRow(self.tr("Recovery phrase or private key:"), self.secret)
        watch_page = QWidget()
        self.address = QLineEdit()
        self.address.setPlaceholderText("0x…")
        QFormLayout(watch_page).addRow(self.tr("Payout address:"), self.address)
        later_page = QLabel(self.tr("You can add a payout wallet later on the Wallet page."))
        for page in (create_page, import_page, watch_page, later_page):
            self.pages.addWidget(page)

        form = QFormLayout()
        form.addRow(self.tr("Wallet name:"), self.name)
        layout = QVBoxLayout(self)
        for button in (self.create_choice, self.import_, self.watch, self.later):
            layout.addWidget(button)
        layout.addLayout(form)
        layout.addWidget(self.pages)
        layout.addWidget(self.problem)
        self.watch.setChecked(True)

    def _create(self) -> None:
        name = self.name.text().strip()
        self.create_button.setEnabled(False)

        def work(client: ControlClient) -> tuple[CreatedWallet, ExportedSecret]:
            created = CreatedWallet.model_validate(client.wallet_call("POST", "", {"name": name}))
            secret = client.wallet_call("POST", f"/{name}/export", {"confirmation": f"export {name}"})
            return created, ExportedSecret.model_validate(secret)

        self.link.call(work, self._show_phrase, self._create_failed, timeout=30.0)

    def _show_phrase(self, answer: tuple[CreatedWallet, ExportedSecret]) -> None:
        created, secret = answer
        self._created = created.wallet.name
        words = (secret.mnemonic or "").split()
        numbered = "   ".join(f"{i}. {word}" for i, word in enumerate(words, start=1))
        self.phrase.setText(
            self.tr(
                "Write these words on paper and keep them safe; they are shown only now. Anyone with them can "
                "take the wallet's funds.\n\n{}"
            ).format(numbered)
        )
        for position in created.confirm_positions:
            edit = QLineEdit()
            self.word_edits[position] = edit
            self.confirm_form.addRow(self.tr("Word {}:").format(position), edit)

    def _create_failed(self, message: str) -> None:
        self.create_button.setEnabled(True)
        self.problem.setText(self.tr("The wallet was not created: {}").format(message))

    def work(self) -> Callable[[ControlClient], Any] | None:
        name = self.name.text().strip()
        if self.later.isChecked():
            return None
        if self.create_choice.isChecked():
            if self._created is None:
                raise StepProblem(self.tr("Create the wallet first, or choose another way."))
            created = self._created
            words = {position: edit.text().strip() for position, edit in self.word_edits.items()}
            return lambda client: (
                client.wallet_call("POST", f"/{created}/confirm", {"words": words}),
                client.wallet_call("POST", f"/{created}/use"),
            )
        if self.import_.isChecked():
            secret = self.secret.text().strip()
            is_key = re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", secret) is not None
            body = {"name": name, "private_key" if is_key else "mnemonic": secret}
            return _add_and_use(name, "/import", body)
        return _add_and_use(name, "/watch", {"name": name, "address": self.address.text().strip()})

    def applied(self, result: Any) -> None:
        self.phrase.clear()  # the phrase leaves the screen once the words are confirmed
        self.secret.clear()


def _add_and_use(name: str, path: str, body: dict[str, str]) -> Callable[[ControlClient], Any]:
    """Add the wallet (unless an earlier Next already did, and only making it the payout one failed) and
    pay out to it."""

    def work(client: ControlClient) -> Any:
        listed = WalletList.model_validate(client.wallet_call("GET", ""))
        if all(entry.name != name for entry in listed.wallets):
            client.wallet_call("POST", path, body)
        return client.wallet_call("POST", f"/{name}/use")

    return work
