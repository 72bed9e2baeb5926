"""The wallet page: where the payouts go (the active wallet's address, to copy or scan, and its balances),
the wallets the agent keeps, and create / import / watch / export / use / remove.

Keys stay in the agent's OS keyring: this page shows names, addresses and balances only. A secret appears
solely in the export dialog the owner asked for (or once, in the create dialog), which wipes it on close.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sparecycles.control.wallet import BalanceView, WalletList, WalletView
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.pages.wallet_dialogs import (
    ConfirmWalletDialog,
    CreateWalletDialog,
    ExportWalletDialog,
    ImportWalletDialog,
    WalletDialog,
    WatchWalletDialog,
)
from sparecycles.ui.widgets.qr import QrLabel

NAME_ROLE = Qt.ItemDataRole.UserRole


class WalletPage(QWidget):
    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Wallet")
        self.wallets: WalletList | None = None
        self.balance: BalanceView | None = None
        self.dialog: WalletDialog | QMessageBox | None = None  # the one open now, for tests and focus
        self._asked = 0  # the latest read of the wallet list; an older answer is dropped
        self._list_problem = ""  # why the last read failed, as shown

        self.active_name = QLabel(self.tr("Asking the agent for the wallets…"))
        self.address = QLabel()
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton(self.tr("Copy"))
        self.copy_button.setEnabled(False)
        self.qr = QrLabel()
        self.balances = QLabel()
        self.balances.setWordWrap(True)
        payout = QGroupBox(self.tr("Payouts go to"))
        payout_layout = QVBoxLayout(payout)
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.copy_button)
        payout_layout.addWidget(self.active_name)
        payout_layout.addLayout(address_row)
        payout_layout.addWidget(self.qr)
        payout_layout.addWidget(self.balances)

        self.list = QListWidget()
        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for key, text, slot in (
            ("create", self.tr("Create…"), self.create_wallet),
            ("import", self.tr("Import…"), self.import_wallet),
            ("watch", self.tr("Watch…"), self.watch),
            ("confirm", self.tr("Confirm…"), self.confirm),
            ("export", self.tr("Export…"), self.export),
            ("use", self.tr("Use for payouts"), self.use),
            ("remove", self.tr("Remove…"), self.remove),
            ("refresh", self.tr("Refresh"), self.refresh),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            actions.addWidget(button)
            self.buttons[key] = button
        actions.addStretch(1)
        self.message = QLabel()
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(payout)
        layout.addWidget(QLabel(self.tr("Wallets on this computer")))
        layout.addWidget(self.list, 1)
        layout.addLayout(actions)
        layout.addWidget(self.message)

        self.copy_button.clicked.connect(self.copy_address)
        self.list.currentItemChanged.connect(self._selection_changed)
        self._selection_changed()
        link.state_changed.connect(self._link_state)
        self.refresh()

    # -- reading ------------------------------------------------------------------------------------

    def _link_state(self, state: str, _message: str) -> None:
        """The agent answers (at last, or again): read its wallets."""
        if state == LinkState.CONNECTED:
            self.refresh()

    def refresh(self) -> None:
        self._asked += 1
        asked = self._asked
        self.link.call(
            lambda client: WalletList.model_validate(client.wallet_call("GET", "")),
            lambda listed: self._listed(listed) if asked == self._asked else None,
            lambda message: self._list_failed(message) if asked == self._asked else None,
            owner=self,
        )

    def _list_failed(self, message: str) -> None:
        if self.wallets is None:
            self.active_name.setText(self.tr("The wallets are not known yet."))
        self._list_problem = self.tr("Could not read the wallets from the agent: {}").format(message)
        self.message.setText(self._list_problem)

    def _listed(self, listed: WalletList) -> None:
        if self._list_problem and self.message.text() == self._list_problem:
            self.message.clear()
        self._list_problem = ""
        self.wallets = listed
        selected = self.selected_name()
        self.list.clear()
        kinds = {"mnemonic": self.tr("recovery phrase"), "key": self.tr("private key"), "watch": self.tr("watch-only")}
        for entry in listed.wallets:
            flags = [kinds[entry.kind]]
            if entry.active:
                flags.append(self.tr("payouts"))
            if not entry.confirmed:
                flags.append(self.tr("not confirmed"))
            item = QListWidgetItem(f"{entry.name}   {entry.address}   ({', '.join(flags)})")
            item.setData(NAME_ROLE, entry.name)
            self.list.addItem(item)
            if entry.name == selected:
                self.list.setCurrentItem(item)
        self._selection_changed()
        active = next((entry for entry in listed.wallets if entry.active), None)
        self._show_active(active)

    def _show_active(self, active: WalletView | None) -> None:
        self.balance = None
        if active is None:
            self.active_name.setText(self.tr("No payout wallet yet: create, import or watch one, then use it."))
            self.address.clear()
            self.qr.set_text("")
            self.balances.clear()
            self.copy_button.setEnabled(False)
            return
        self.active_name.setText(self.tr("Wallet {name}").format(name=active.name))
        self.address.setText(active.address)
        self.qr.set_text(active.address)
        self.copy_button.setEnabled(True)
        self.balances.setText(self.tr("Asking the chain for the balances…"))
        name = active.name
        self.link.call(
            lambda client: BalanceView.model_validate(client.wallet_call("GET", f"/{name}/balance")),
            self._balance_read,
            self.balances.setText,
        )

    def _balance_read(self, view: BalanceView) -> None:
        if view.address != self.address.text():
            return  # an answer for a wallet no longer active
        self.balance = view
        lines = []
        if view.native or view.token:
            lines.append(
                self.tr("Balance: {native}, {token}").format(native=view.native or "-", token=view.token or "-")
            )
        if view.problem:
            lines.append(view.problem)
        self.balances.setText("\n".join(lines))

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(NAME_ROLE))

    def selected_entry(self) -> WalletView | None:
        name = self.selected_name()
        listed = self.wallets.wallets if self.wallets is not None else []
        return next((entry for entry in listed if entry.name == name), None)

    def _selection_changed(self, *_args: object) -> None:
        chosen = self.selected_entry()
        for key in ("export", "use", "remove"):
            self.buttons[key].setEnabled(chosen is not None)
        self.buttons["confirm"].setEnabled(chosen is not None and not chosen.confirmed)
        self.buttons["use"].setEnabled(chosen is not None and chosen.confirmed and not chosen.active)

    def copy_address(self) -> None:
        QGuiApplication.clipboard().setText(self.address.text())
        self.message.setText(self.tr("Address copied."))

    def _say(self, message: str) -> None:
        self.message.setText(message)

    # -- changing -----------------------------------------------------------------------------------

    def _open(self, dialog: WalletDialog) -> None:
        dialog.changed.connect(self.refresh)
        dialog.answered_when_closed = self.refresh  # e.g. Cancel while a wallet was being created
        dialog.finished.connect(lambda _result: self._closed(dialog))
        self.dialog = dialog
        dialog.open()

    def _closed(self, dialog: WalletDialog | QMessageBox) -> None:
        if self.dialog is dialog:
            self.dialog = None
        if isinstance(dialog, WalletDialog):
            self.refresh()  # whatever the dialog did (or left half done), the list shows it

    def create_wallet(self) -> None:
        self._open(CreateWalletDialog(self.link, self))

    def import_wallet(self) -> None:
        self._open(ImportWalletDialog(self.link, self))

    def watch(self) -> None:
        self._open(WatchWalletDialog(self.link, self))

    def confirm(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._open(ConfirmWalletDialog(self.link, name, self))

    def export(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._open(ExportWalletDialog(self.link, name, self))

    def use(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        self._ask(
            self.tr("Send the payouts to wallet {name} from now on? The marketplace is told.").format(name=name),
            lambda: self.link.call(
                lambda client: client.wallet_call("POST", f"/{name}/use"),
                lambda _answer: self._changed(self.tr("Payouts now go to wallet {name}.").format(name=name)),
                self._say,
                owner=self,
            ),
        )

    def remove(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        self._ask(
            self.tr(
                "Delete wallet {name} and its key from the OS keyring? Without its recovery phrase written down, "
                "its funds are lost."
            ).format(name=name),
            lambda: self.link.call(
                lambda client: client.wallet_call("DELETE", f"/{name}"),
                lambda _answer: self._changed(self.tr("Wallet {name} removed.").format(name=name)),
                self._say,
                owner=self,
            ),
        )

    def _changed(self, message: str) -> None:
        self.message.setText(message)
        self.refresh()

    def _ask(self, question: str, then: Callable[[], None]) -> None:
        """A yes/no question that does not block the GUI; ``then`` runs on yes."""
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Wallet"), question, parent=self)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(
            lambda button: then() if box.standardButton(button) == QMessageBox.StandardButton.Yes else None
        )
        box.finished.connect(lambda _result: self._closed(box))
        self.dialog = box
        box.open()
