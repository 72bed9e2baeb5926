"""The wallet page's dialogs: create (the recovery phrase shown once, then confirmed by words the agent
picks), confirm (later, for a created wallet left unconfirmed), import (a phrase or a key, typed hidden),
watch (an address whose key is elsewhere) and export (the secret shown only after typing ``export NAME``).

A secret lives only in the widgets of the dialog that shows or takes it, and those are wiped when the
dialog closes, however it closes; the dialogs delete themselves then. Each dialog opens non-modally
(``open()``) so the GUI keeps running, and emits ``changed`` when the agent's wallet list changed. An answer
that arrives after its dialog closed is dropped (the page reads the list again instead).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import Shiboken

from sparecycles.control.client import ControlClient
from sparecycles.control.wallet import CreatedWallet, ExportedSecret, WalletView
from sparecycles.ui.agent_link import AgentLink

T = TypeVar("T")
WORDS_PER_ROW = 4
PHRASE_WORDS = 12  # of a wallet created here
CONFIRM_WORDS = 3


def _mono() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def _alive(callback: Callable[[], None]) -> bool:
    """False for a method of a Qt object that was deleted (the page, when the window closed)."""
    receiver = getattr(callback, "__self__", None)
    return not isinstance(receiver, QObject) or Shiboken.isValid(receiver)


class WalletDialog(QDialog):
    """What the four dialogs share: the link, a line for the agent's answer, and wiping secrets on close."""

    changed = Signal()

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self._secret_widgets: list[QLineEdit | QLabel | QPlainTextEdit] = []
        self.finished.connect(self.wipe)
        self.answered_when_closed: Callable[[], None] | None = None  # the wallet page's refresh, set by the page

    def call(
        self,
        work: Callable[[ControlClient], T],
        done: Callable[[T], None],
        failed: Callable[[str], None] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        """``link.call`` for this dialog. The answer goes to the dialog while it is open; once it was closed (and
        so deleted) it is dropped, but the agent may have changed the wallets all the same: then
        ``answered_when_closed`` runs instead, so the page shows them."""
        when_closed = self.answered_when_closed

        def deliver(answer: Callable[[], None]) -> None:
            if Shiboken.isValid(self):
                answer()
            elif when_closed is not None and _alive(when_closed):
                when_closed()

        on_failure = failed or self.failed
        self.link.call(
            work,
            lambda value: deliver(lambda: done(value)),
            lambda message: deliver(lambda: on_failure(message)),
            timeout=timeout,
        )

    def holds_secret(self, widget: QLineEdit | QLabel | QPlainTextEdit) -> None:
        self._secret_widgets.append(widget)

    def wipe(self) -> None:
        """Clear every widget that held a secret (called when the dialog closes)."""
        for widget in self._secret_widgets:
            widget.clear()

    def failed(self, message: str) -> None:
        self.message.setText(message)


class WordsForm(QWidget):
    """One hidden-from-nobody field per asked word (the owner reads them off paper); wiped with its dialog."""

    def __init__(self, dialog: WalletDialog) -> None:
        super().__init__(dialog)
        self._dialog = dialog
        self.edits: dict[int, QLineEdit] = {}
        self.form = QFormLayout(self)
        self.confirm_button = QPushButton(self.tr("Confirm"))

    def set_positions(self, positions: list[int]) -> None:
        for position in positions:
            edit = QLineEdit()
            self._dialog.holds_secret(edit)
            self.edits[position] = edit
            self.form.addRow(self.tr("Word {n}").format(n=position), edit)
        self.form.addRow(self.confirm_button)

    def words(self) -> dict[int, str]:
        return {position: edit.text().strip() for position, edit in self.edits.items()}


def send_words(dialog: WalletDialog, name: str, words: dict[int, str]) -> None:
    """Ask the agent to confirm ``name`` by these words; the dialog closes when it agrees."""

    def confirmed(_entry: WalletView) -> None:
        dialog.changed.emit()
        dialog.accept()

    dialog.call(
        lambda client: WalletView.model_validate(client.wallet_call("POST", f"/{name}/confirm", {"words": words})),
        confirmed,
    )


class CreateWalletDialog(WalletDialog):
    """Name → the recovery phrase, once → the words at the positions the agent asks for."""

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(link, parent)
        self.setWindowTitle(self.tr("Create a wallet"))
        self.name: str = ""
        self.positions: list[int] = []
        self.steps = QStackedWidget()

        self.name_edit = QLineEdit(placeholderText=self.tr("e.g. main"))
        self.create_button = QPushButton(self.tr("Create"))
        naming = QWidget()
        naming_layout = QFormLayout(naming)
        naming_layout.addRow(self.tr("Name"), self.name_edit)
        naming_layout.addRow(self.create_button)

        self.phrase = QLabel()
        self.phrase.setFont(_mono())
        self.phrase.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)  # paper, not the clipboard
        self.holds_secret(self.phrase)
        self.written_button = QPushButton(self.tr("I have written it down"))
        showing = QWidget()
        showing_layout = QVBoxLayout(showing)
        showing_layout.addWidget(
            QLabel(
                self.tr(
                    "Your recovery phrase. Write it down on paper and keep it safe: it is shown only this once, "
                    "and anyone with these words can take the wallet's funds."
                ),
                wordWrap=True,
            )
        )
        showing_layout.addWidget(self.phrase)
        showing_layout.addWidget(self.written_button)

        self.words = WordsForm(self)
        for step in (naming, showing, self.words):
            self.steps.addWidget(step)
        layout = QVBoxLayout(self)
        layout.addWidget(self.steps)
        layout.addWidget(self.message)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

        self.name_edit.returnPressed.connect(self.create_wallet)
        self.create_button.clicked.connect(self.create_wallet)
        self.written_button.clicked.connect(self.ask_words)
        self.words.confirm_button.clicked.connect(lambda: send_words(self, self.name, self.words.words()))

    def create_wallet(self) -> None:
        name = self.name_edit.text().strip()
        if not name:
            return
        self.create_button.setEnabled(False)
        self.message.setText(self.tr("Creating…"))

        def work(client: ControlClient) -> tuple[CreatedWallet, ExportedSecret]:
            created = CreatedWallet.model_validate(client.wallet_call("POST", "", {"name": name}))
            secret = client.wallet_call("POST", f"/{name}/export", {"confirmation": f"export {name}"})
            return created, ExportedSecret.model_validate(secret)

        self.call(work, self._created, self._create_failed)

    def _created(self, answer: tuple[CreatedWallet, ExportedSecret]) -> None:
        created, secret = answer
        self.name, self.positions = created.wallet.name, created.confirm_positions
        words = (secret.mnemonic or "").split()
        rows = [
            "   ".join(f"{i + 1:>2}. {words[i]:<10}" for i in range(start, min(start + WORDS_PER_ROW, len(words))))
            for start in range(0, len(words), WORDS_PER_ROW)
        ]
        self.phrase.setText("\n".join(rows))
        self.message.setText(self.tr("Wallet {name}: {address}").format(name=self.name, address=created.wallet.address))
        self.steps.setCurrentIndex(1)
        self.changed.emit()

    def _create_failed(self, message: str) -> None:
        self.create_button.setEnabled(True)
        self.failed(message)

    def ask_words(self) -> None:
        """The phrase leaves the screen; the owner types the words the agent asked for."""
        self.phrase.clear()
        self.words.set_positions(self.positions)
        self.message.setText(self.tr("To check you wrote it down, type these words of the phrase."))
        self.steps.setCurrentIndex(2)


class ConfirmWalletDialog(WalletDialog):
    """Confirm a created wallet later (its creation was left before the words): three words, picked here at
    random as the CLI's ``wallet confirm`` does; the agent checks them against the phrase it keeps."""

    def __init__(self, link: AgentLink, name: str, parent: QWidget | None = None) -> None:
        super().__init__(link, parent)
        self.name = name
        self.setWindowTitle(self.tr("Confirm wallet {name}").format(name=name))
        self.words = WordsForm(self)
        self.words.set_positions(sorted(secrets.SystemRandom().sample(range(1, PHRASE_WORDS + 1), CONFIRM_WORDS)))
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("Type these words of the wallet's recovery phrase."), wordWrap=True))
        layout.addWidget(self.words)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self.words.confirm_button.clicked.connect(lambda: send_words(self, self.name, self.words.words()))


class ImportWalletDialog(WalletDialog):
    """A recovery phrase or a private key, typed into a hidden field and sent to the agent's keyring."""

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(link, parent)
        self.setWindowTitle(self.tr("Import a wallet"))
        self.name_edit = QLineEdit()
        self.by_phrase = QRadioButton(self.tr("Recovery phrase (12 to 24 words)"))
        self.by_phrase.setChecked(True)
        self.by_key = QRadioButton(self.tr("Private key (64 hexadecimal digits)"))
        self.secret = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.holds_secret(self.secret)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton(self.tr("Import"), QDialogButtonBox.ButtonRole.AcceptRole)
        form = QFormLayout(self)
        form.addRow(self.tr("Name"), self.name_edit)
        form.addRow(self.by_phrase)
        form.addRow(self.by_key)
        form.addRow(self.tr("Secret"), self.secret)
        form.addRow(self.message)
        form.addRow(self.buttons)
        self.buttons.rejected.connect(self.reject)
        self.import_button.clicked.connect(self.send)

    def send(self) -> None:
        body: dict[str, Any] = {"name": self.name_edit.text().strip()}
        body["private_key" if self.by_key.isChecked() else "mnemonic"] = self.secret.text().strip()
        self.call(lambda client: client.wallet_call("POST", "/import", body), self._imported)

    def _imported(self, _answer: object) -> None:
        self.changed.emit()
        self.accept()


class WatchWalletDialog(WalletDialog):
    """A payout address whose key stays elsewhere (a hardware wallet, another computer)."""

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(link, parent)
        self.setWindowTitle(self.tr("Watch an address"))
        self.name_edit = QLineEdit()
        self.address_edit = QLineEdit(placeholderText="0x…")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton(self.tr("Add"), QDialogButtonBox.ButtonRole.AcceptRole)
        form = QFormLayout(self)
        form.addRow(self.tr("Name"), self.name_edit)
        form.addRow(self.tr("Address"), self.address_edit)
        form.addRow(self.message)
        form.addRow(self.buttons)
        self.buttons.rejected.connect(self.reject)
        self.add_button.clicked.connect(self.send)

    def send(self) -> None:
        body = {"name": self.name_edit.text().strip(), "address": self.address_edit.text().strip()}
        self.call(lambda client: client.wallet_call("POST", "/watch", body), self._added)

    def _added(self, _answer: object) -> None:
        self.changed.emit()
        self.accept()


class ExportWalletDialog(WalletDialog):
    """Shows a wallet's secret, only after the owner typed ``export NAME`` (the agent checks it too)."""

    def __init__(self, link: AgentLink, name: str, parent: QWidget | None = None) -> None:
        super().__init__(link, parent)
        self.name = name
        self.expected = f"export {name}"
        self.setWindowTitle(self.tr("Export wallet {name}").format(name=name))
        self.confirmation = QLineEdit(placeholderText=self.expected)
        self.show_button = QPushButton(self.tr("Show the secret"))
        self.show_button.setEnabled(False)
        self.secret = QPlainTextEdit(readOnly=True)
        self.secret.setFont(_mono())
        self.secret.setVisible(False)
        self.holds_secret(self.secret)
        self.holds_secret(self.confirmation)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                self.tr("Anyone who sees the secret can take the funds. Type “{expected}” to show it.").format(
                    expected=self.expected
                ),
                wordWrap=True,
            )
        )
        layout.addWidget(self.confirmation)
        layout.addWidget(self.show_button)
        layout.addWidget(self.secret)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self.confirmation.textChanged.connect(lambda text: self.show_button.setEnabled(text.strip() == self.expected))
        self.show_button.clicked.connect(self.reveal)

    def reveal(self) -> None:
        confirmation = self.confirmation.text().strip()
        name = self.name
        self.call(
            lambda client: ExportedSecret.model_validate(
                client.wallet_call("POST", f"/{name}/export", {"confirmation": confirmation})
            ),
            self._revealed,
        )

    def _revealed(self, secret: ExportedSecret) -> None:
        lines = []
        if secret.mnemonic:
            lines.append(self.tr("Recovery phrase ({path}):").format(path=secret.derivation_path))
            lines.append(secret.mnemonic)
        if secret.private_key:
            lines.append(self.tr("Private key:"))
            lines.append(secret.private_key)
        self.secret.setPlainText("\n".join(lines))
        self.secret.setVisible(True)
