"""The wallet page against a real agent and the real Secret Service of the test session (skipped without it,
like tests/wallet): a wallet created through the page's dialogs, its phrase shown once and confirmed by the
words the agent asks for, made the payout wallet; its address and QR code shown; its secret exported only
after the typed confirmation; no widget holding a secret once the dialogs close. Import (hidden field), watch
and remove (confirmed) too. Every keyring entry a test makes is removed again."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator

import keyring
import keyring.errors
import pytest
import segno
from eth_account import Account
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QMessageBox, QPlainTextEdit
from pytestqt.qtbot import QtBot

from sparecycles.agent.keystore import KEYRING_SERVICE
from sparecycles.agent.wallet.service import DERIVATION_PATH
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.pages.wallet import NAME_ROLE, WalletPage
from sparecycles.ui.pages.wallet_dialogs import (
    ConfirmWalletDialog,
    CreateWalletDialog,
    ExportWalletDialog,
    ImportWalletDialog,
    WatchWalletDialog,
)
from sparecycles.ui.widgets.qr import BORDER_MODULES
from tests.wallet.test_wallet_service import TEST_ADDRESS, TEST_KEY, secret_service

LEFT = Qt.MouseButton.LeftButton
WATCHED_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # Anvil's second public test account


@pytest.fixture
def names() -> Iterator[list[str]]:
    """The wallet names a test uses; their keyring entries are deleted afterwards, whatever happened."""
    secret_service()
    used: list[str] = []
    yield used
    for name in used:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(KEYRING_SERVICE, f"wallet:{name}")


@pytest.fixture
def page(link: AgentLink, qtbot: QtBot) -> WalletPage:
    shown = WalletPage(link)
    qtbot.addWidget(shown)
    shown.resize(900, 700)
    shown.show()
    qtbot.waitUntil(lambda: shown.wallets is not None, timeout=15_000)
    return shown


def select(page: WalletPage, qtbot: QtBot, name: str) -> None:
    def found() -> bool:
        for row in range(page.list.count()):
            if page.list.item(row).data(NAME_ROLE) == name:
                page.list.setCurrentRow(row)
                return True
        return False

    qtbot.waitUntil(found, timeout=10_000)


def answer(page: WalletPage, qtbot: QtBot, button: QMessageBox.StandardButton) -> None:
    qtbot.waitUntil(lambda: isinstance(page.dialog, QMessageBox), timeout=5_000)
    box = page.dialog
    assert isinstance(box, QMessageBox)
    qtbot.mouseClick(box.button(button), LEFT)


def all_widget_text() -> str:
    texts = []
    for widget in QApplication.allWidgets():
        if isinstance(widget, QLabel | QLineEdit):
            texts.append(widget.text())
        elif isinstance(widget, QPlainTextEdit):
            texts.append(widget.toPlainText())
    return "\n".join(texts)


def rendered_modules(page: WalletPage) -> list[list[bool]]:
    """The QR label's pixmap read back, one sample at the centre of each module."""
    image = page.qr.pixmap().toImage()
    scale = page.qr.scale
    size = image.width() // scale
    return [
        [image.pixelColor(x * scale + scale // 2, y * scale + scale // 2).lightness() < 128 for x in range(size)]
        for y in range(size)
    ]


def start_creating(prefix: str, names: list[str], page: WalletPage, qtbot: QtBot) -> tuple[str, CreateWalletDialog]:
    """Create a wallet through the page's dialog up to the step that shows its phrase once."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    names.append(name)
    qtbot.mouseClick(page.buttons["create"], LEFT)
    create = page.dialog
    assert isinstance(create, CreateWalletDialog)
    qtbot.keyClicks(create.name_edit, name)
    qtbot.mouseClick(create.create_button, LEFT)
    qtbot.waitUntil(lambda: create.steps.currentIndex() == 1, timeout=15_000)
    return name, create


def test_a_wallet_created_through_the_dialogs_is_confirmed_used_shown_and_exported_only_on_request(
    names: list[str], page: WalletPage, qtbot: QtBot
) -> None:
    name, create = start_creating("gui", names, page, qtbot)
    shown = create.phrase.text()
    words = re.findall(r"\d+\. (\S+)", shown)
    assert len(words) == 12
    mnemonic = " ".join(words)
    Account.enable_unaudited_hdwallet_features()
    address = Account.from_mnemonic(mnemonic, account_path=DERIVATION_PATH).address
    key = Account.from_mnemonic(mnemonic, account_path=DERIVATION_PATH).key.hex().removeprefix("0x")

    qtbot.mouseClick(create.written_button, LEFT)
    assert create.phrase.text() == ""  # the phrase left the screen before the words are asked for
    assert len(create.words.edits) == 3
    for position, edit in create.words.edits.items():
        qtbot.keyClicks(edit, words[position - 1])
    qtbot.mouseClick(create.words.confirm_button, LEFT)
    qtbot.waitUntil(lambda: page.dialog is None, timeout=15_000)
    qtbot.waitUntil(
        lambda: (
            page.wallets is not None and any(entry.name == name and entry.confirmed for entry in page.wallets.wallets)
        ),
        timeout=15_000,
    )
    created = next(entry for entry in page.wallets.wallets if entry.name == name)  # type: ignore[union-attr]
    assert created.address == address

    select(page, qtbot, name)
    qtbot.mouseClick(page.buttons["use"], LEFT)
    answer(page, qtbot, QMessageBox.StandardButton.Yes)
    qtbot.waitUntil(lambda: page.address.text() == address, timeout=15_000)
    assert page.wallets is not None
    assert page.wallets.active == name
    qtbot.mouseClick(page.copy_button, LEFT)
    assert QApplication.clipboard().text() == address
    # The QR code is segno's for the address, module for module.
    assert page.qr.encoded == address
    assert not page.qr.pixmap().isNull()
    expected = [[bool(m) for m in row] for row in segno.make(address, micro=False).matrix_iter(border=BORDER_MODULES)]
    assert rendered_modules(page) == expected
    qtbot.waitUntil(lambda: page.balance is not None or "unknown" in page.balances.text(), timeout=15_000)
    if page.balance is not None and page.balance.problem:
        assert page.balance.problem in page.balances.text()  # "balance unknown (…)" as the agent said it

    select(page, qtbot, name)
    qtbot.mouseClick(page.buttons["export"], LEFT)
    export = page.dialog
    assert isinstance(export, ExportWalletDialog)
    assert not export.show_button.isEnabled()
    qtbot.keyClicks(export.confirmation, f"export {name}x")
    assert not export.show_button.isEnabled()
    assert export.secret.toPlainText() == ""
    assert mnemonic not in all_widget_text()
    export.confirmation.clear()
    qtbot.keyClicks(export.confirmation, f"export {name}")
    assert export.show_button.isEnabled()
    qtbot.mouseClick(export.show_button, LEFT)
    qtbot.waitUntil(lambda: mnemonic in export.secret.toPlainText(), timeout=15_000)
    export.reject()
    assert export.secret.toPlainText() == ""  # wiped on close, before the dialog is deleted
    assert export.confirmation.text() == ""
    qtbot.waitUntil(lambda: page.dialog is None, timeout=5_000)

    text = all_widget_text()
    assert mnemonic not in text
    assert key not in text.lower()
    assert address in text


def test_import_watch_and_remove_ask_first_and_keep_the_key_hidden(
    names: list[str], page: WalletPage, qtbot: QtBot
) -> None:
    imported, watched = f"imp-{secrets.token_hex(3)}", f"watch-{secrets.token_hex(3)}"
    names.extend([imported, watched])
    qtbot.mouseClick(page.buttons["import"], LEFT)
    dialog = page.dialog
    assert isinstance(dialog, ImportWalletDialog)
    assert dialog.secret.echoMode() is QLineEdit.EchoMode.Password
    qtbot.keyClicks(dialog.name_edit, imported)
    dialog.by_key.setChecked(True)
    qtbot.keyClicks(dialog.secret, TEST_KEY)
    left_in_field: list[str] = []
    dialog.finished.connect(lambda _result: left_in_field.append(dialog.secret.text()))  # after the wipe
    qtbot.mouseClick(dialog.import_button, LEFT)
    qtbot.waitUntil(lambda: page.dialog is None, timeout=15_000)
    assert left_in_field == [""]

    qtbot.mouseClick(page.buttons["watch"], LEFT)
    watch = page.dialog
    assert isinstance(watch, WatchWalletDialog)
    qtbot.keyClicks(watch.name_edit, watched)
    qtbot.keyClicks(watch.address_edit, TEST_ADDRESS)  # the imported key's own address: refused, in words
    qtbot.mouseClick(watch.add_button, LEFT)
    qtbot.waitUntil(lambda: bool(watch.message.text()), timeout=15_000)
    assert page.dialog is watch
    watch.address_edit.setText(WATCHED_ADDRESS)
    qtbot.mouseClick(watch.add_button, LEFT)
    qtbot.waitUntil(lambda: page.dialog is None, timeout=15_000)

    def listed() -> dict[str, str]:
        return {entry.name: entry.kind for entry in page.wallets.wallets} if page.wallets else {}

    qtbot.waitUntil(lambda: listed().get(imported) == "key" and listed().get(watched) == "watch", timeout=15_000)
    assert TEST_KEY.removeprefix("0x") not in all_widget_text().lower()

    select(page, qtbot, imported)
    qtbot.mouseClick(page.buttons["remove"], LEFT)
    answer(page, qtbot, QMessageBox.StandardButton.No)
    qtbot.waitUntil(lambda: page.dialog is None, timeout=5_000)
    page.refresh()
    qtbot.wait(300)
    qtbot.waitUntil(lambda: imported in listed(), timeout=10_000)  # "No" kept it

    for name in (imported, watched):
        select(page, qtbot, name)
        qtbot.mouseClick(page.buttons["remove"], LEFT)
        answer(page, qtbot, QMessageBox.StandardButton.Yes)
        qtbot.waitUntil(lambda name=name: name not in listed(), timeout=15_000)
    assert keyring.get_password(KEYRING_SERVICE, f"wallet:{imported}") is None


def test_a_created_wallet_left_unconfirmed_is_confirmed_later_and_wrong_words_are_refused(
    names: list[str], page: WalletPage, qtbot: QtBot
) -> None:
    name, create = start_creating("later", names, page, qtbot)
    words = re.findall(r"\d+\. (\S+)", create.phrase.text())
    create.reject()  # left before repeating the words
    qtbot.waitUntil(lambda: page.dialog is None, timeout=5_000)
    assert " ".join(words) not in all_widget_text()

    select(page, qtbot, name)
    qtbot.waitUntil(lambda: page.selected_entry() is not None, timeout=10_000)
    assert not page.buttons["use"].isEnabled()  # not confirmed: it cannot receive payouts
    assert page.buttons["confirm"].isEnabled()
    qtbot.mouseClick(page.buttons["confirm"], LEFT)
    confirm = page.dialog
    assert isinstance(confirm, ConfirmWalletDialog)
    assert len(confirm.words.edits) == 3
    for edit in confirm.words.edits.values():
        qtbot.keyClicks(edit, "zzz")
    qtbot.mouseClick(confirm.words.confirm_button, LEFT)
    qtbot.waitUntil(lambda: "does not match" in confirm.message.text(), timeout=15_000)
    for position, edit in confirm.words.edits.items():
        edit.setText(words[position - 1])
    qtbot.mouseClick(confirm.words.confirm_button, LEFT)
    qtbot.waitUntil(lambda: page.dialog is None, timeout=15_000)
    qtbot.waitUntil(lambda: (entry := page.selected_entry()) is not None and entry.confirmed, timeout=15_000)
    assert page.buttons["use"].isEnabled()
    assert not page.buttons["confirm"].isEnabled()
