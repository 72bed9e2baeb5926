"""The desktop app at the edges of the agent's life and of the user's timing: pages opened before the agent
answers read it once it does (and save nothing before), a page saves only what the user changed, the link
notices a hung agent and one that came back by itself, the tray stops showing a dead agent's figures, an
answer for a closed dialog is dropped, an onboarding step left while saving sends again, the keyring is read
off the GUI thread, and small amounts of money are not rounded away."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink, LinkState
from tests.conftest import RunningAgent, start_agent

AGENT_SETTINGS = (
    'idle_threshold = "90s"\n'
    '[games]\npause_processes = ["blender"]\n'
    "[gpu]\nmax_temperature_c = 80\n"
    "[ledger]\nmargin = 0.1234\n"
    '[jobs]\nimage_cache = "100GB"\n'
)


def settings_of(paths: AppPaths) -> dict[str, Any]:
    with ControlClient.from_lock_file(paths.agent_lock_file) as client:
        return client.settings()


@pytest.fixture
def early_home(agent_home: Path) -> Path:
    """An agent's home with settings a page cannot show exactly (90 s idle, a 12.34 % margin, 100 GB), whose
    agent is not started yet."""
    config = agent_home / "config" / "config.toml"
    config.write_text(config.read_text().replace('mode = "schedule"\n', 'mode = "schedule"\n' + AGENT_SETTINGS, 1))
    return agent_home


@pytest.fixture
def early_link(early_home: Path) -> Iterator[AgentLink]:
    """The app's link while no agent answers yet (it starts none): pages opened now get no settings."""
    link = AgentLink(AppPaths.from_environment({"SPARECYCLES_HOME": str(early_home)}))
    yield link
    link.close()


@contextlib.contextmanager
def agent_started(home: Path, link: AgentLink, qtbot: QtBot) -> Iterator[RunningAgent]:
    agent = start_agent(home, "--simulated-gpus", "1")
    try:
        link.start()
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED and link.status is not None, timeout=20_000)
        yield agent
    finally:
        agent.stop()


# -- 1. pages opened before the agent answers ------------------------------------------------------------


def test_the_schedule_page_opened_before_the_agent_reads_it_later_and_saves_only_a_change(
    early_home: Path, early_link: AgentLink, qtbot: QtBot
) -> None:
    from sparecycles.ui.pages.schedule import SchedulePage

    page = SchedulePage(early_link)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.message.text() != "", timeout=10_000)
    assert page.message.text().startswith("Could not read"), page.message.text()
    assert not page.save_button.isEnabled()  # nothing to save over: the agent's settings are not shown
    page.save()
    assert page.message.text().startswith("Could not read")

    with agent_started(early_home, early_link, qtbot) as agent:
        qtbot.waitUntil(page.save_button.isEnabled, timeout=10_000)
        assert page.message.text() == ""
        assert page.games.toPlainText() == "blender"
        assert page.max_temperature.value() == 80
        assert page.when.grid.cells()  # the fixture's "daily" window
        assert page.changes() == {}
        page.max_temperature.setValue(78)
        assert page.changes() == {"gpu": {"max_temperature_c": 78}}
        page.save_button.click()
        qtbot.waitUntil(lambda: page.message.text().startswith("Saved"), timeout=10_000)
        settings = settings_of(agent.paths)
    assert settings["gpu"]["max_temperature_c"] == 78
    assert settings["work"]["idle_threshold"] == "90s"  # shown as 2 min, not sent back as such
    assert settings["schedule"]["windows"] == ["daily"]
    assert settings["games"]["pause_processes"] == ["blender"]


def test_the_settings_and_wallet_pages_opened_before_the_agent_show_it_once_it_answers(
    early_home: Path, early_link: AgentLink, qtbot: QtBot
) -> None:
    from sparecycles.ui.pages.earnings import EarningsPage
    from sparecycles.ui.pages.settings import SettingsPage
    from sparecycles.ui.pages.wallet import WalletPage

    page = SettingsPage(early_link)
    wallet = WalletPage(early_link)
    earnings = EarningsPage(early_link)
    for widget in (page, wallet, earnings):
        qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: page.message.text() != "" and wallet.message.text() != "", timeout=10_000)
    assert page.message.text().startswith("Could not read the settings"), page.message.text()
    assert "Not saved" not in page.message.text()
    assert not page.save_button.isEnabled()
    assert wallet.message.text().startswith("Could not read the wallets")
    assert "No payout wallet" not in wallet.active_name.text()  # not known yet, which is not "none"
    qtbot.waitUntil(lambda: earnings.notes.text().startswith("Could not read the ledger"), timeout=10_000)

    with agent_started(early_home, early_link, qtbot) as agent:
        qtbot.waitUntil(page.save_button.isEnabled, timeout=10_000)
        assert page.floor.text() == "0"
        assert page.message.text() == ""
        assert page.margin.value() == pytest.approx(12.3)
        qtbot.waitUntil(lambda: wallet.wallets is not None, timeout=10_000)
        assert wallet.message.text() == ""
        assert "No payout wallet yet" in wallet.active_name.text()
        qtbot.waitUntil(lambda: earnings.summary is not None, timeout=10_000)
        assert not earnings.notes.text().startswith("Could not read")

        page.egress.setCurrentIndex(page.egress.findData("per_job"))
        assert page.changes() == {"jobs": {"egress": "per_job"}}
        page.save_button.click()
        qtbot.waitUntil(lambda: page.message.text() == "Saved.", timeout=10_000)
        settings = settings_of(agent.paths)
    assert settings["jobs"]["egress"] == "per_job"
    assert settings["ledger"]["margin"] == 0.1234  # shown as 12.3 %, not saved as 0.123
    assert settings["jobs"]["image_cache"] == "100GB"  # shown as 93 GiB, not saved as such
    assert settings["marketplace"]["price_floor_per_gpu_hour"] == 0


def test_save_with_nothing_changed_sends_nothing(link: AgentLink, qtbot: QtBot) -> None:
    from sparecycles.ui.pages.settings import SettingsPage

    page = SettingsPage(link)
    qtbot.addWidget(page)
    qtbot.waitUntil(page.save_button.isEnabled, timeout=10_000)
    sent: list[object] = []
    link.call = lambda *args, **kwargs: sent.append(args)  # type: ignore[method-assign]
    page.save_button.click()
    assert sent == []
    assert page.message.text().startswith("Nothing to save")


# -- 1. the onboarding's "When to work" step ----------------------------------------------------------------


class FakeCalls:
    """Stands in for ``AgentLink.call``: each call waits until the test answers it (``answer``) or refuses it."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.pending: list[tuple[Callable[[Any], Any], Callable[[Any], None] | None, Callable[[str], None] | None]]
        self.pending = []

    def __call__(
        self,
        work: Callable[[Any], Any],
        done: Callable[[Any], None] | None = None,
        failed: Callable[[str], None] | None = None,
        **_options: object,
    ) -> None:
        self.pending.append((work, done, failed))

    def answer(self) -> None:
        work, done, _failed = self.pending.pop(0)
        result = work(self.client)
        if done is not None:
            done(result)

    def refuse(self, message: str) -> None:
        _work, _done, failed = self.pending.pop(0)
        if failed is not None:
            failed(message)


class SettingsClient:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def settings(self) -> dict[str, Any]:
        return {"work": {"mode": "schedule", "idle_threshold": "20m"}, "schedule": {"windows": ["Sat-Sun"]}}

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(changes)
        return self.settings()


@pytest.fixture
def fake_link(tmp_path: Path) -> Iterator[AgentLink]:
    """A link that is never started: tests replace its ``call``."""
    link = AgentLink(AppPaths.from_environment({"SPARECYCLES_HOME": str(tmp_path / "nobody")}))
    yield link
    link.close()


def test_the_work_step_sends_nothing_before_the_settings_are_read(fake_link: AgentLink, qtbot: QtBot) -> None:
    from sparecycles.ui.onboarding.wizard import OnboardingWizard, Step

    client = SettingsClient()
    calls = FakeCalls(client)
    fake_link.call = calls  # type: ignore[method-assign]
    wizard = OnboardingWizard(fake_link, start_at=Step.WORK)
    qtbot.addWidget(wizard)
    wizard.show()
    step = wizard.steps[Step.WORK]
    assert len(calls.pending) == 1  # the settings are asked for
    calls.refuse("The SpareCycles agent (pid 1) does not answer")
    assert step.problem.text().startswith("Could not read")
    wizard.next()  # Next before anything was read: the editor's defaults are not sent
    assert wizard.currentId() == Step.WORK
    assert client.sent == []
    assert len(calls.pending) == 1  # asked again instead
    calls.answer()
    assert step.editor.mode.currentData() == "schedule"
    wizard.next()  # nothing changed: nothing to send, on to the next step
    assert client.sent == []
    assert wizard.currentId() == Step.BENCHMARK


def test_a_step_left_while_saving_sends_its_choices_again(fake_link: AgentLink, qtbot: QtBot) -> None:
    from sparecycles.ui.onboarding.wizard import OnboardingWizard, Step

    sent: list[str] = []
    client = SimpleNamespace(update_settings=lambda changes: sent.append(changes["marketplace"]["url"]) or {})
    calls = FakeCalls(client)
    fake_link.call = calls  # type: ignore[method-assign]
    wizard = OnboardingWizard(fake_link, start_at=Step.MACHINE)
    qtbot.addWidget(wizard)
    wizard.show()
    step = wizard.steps[Step.MARKETPLACE]
    wizard.next()
    assert wizard.currentId() == Step.MARKETPLACE
    step.remote.setChecked(True)
    step.url.setText("https://first.example")
    wizard.next()  # "Saving…"
    wizard.back()
    calls.answer()  # the agent takes the first address while the user is on the page before
    assert wizard.currentId() == Step.MACHINE
    wizard.next()
    step.url.setText("https://second.example")
    wizard.next()
    assert wizard.currentId() == Step.MARKETPLACE
    assert len(calls.pending) == 1  # the second address is sent...
    calls.answer()
    assert sent == ["https://first.example", "https://second.example"]
    assert wizard.currentId() == Step.PAYOUT  # ...and the wizard moves on once the agent took it


def test_switching_to_time_of_use_takes_a_comma_price(fake_link: AgentLink, qtbot: QtBot) -> None:
    from sparecycles.ui.onboarding.market_steps import TariffStep

    step = TariffStep(fake_link)
    qtbot.addWidget(step)
    step.price.setText("0,32")
    step.time_of_use.setChecked(True)
    assert 'price_per_kwh = "0.32"' in step.document.toPlainText()


# -- 2. the GPUs to share ----------------------------------------------------------------------------------


def test_an_unticked_gpu_stays_unticked_while_statuses_arrive(link: AgentLink, qtbot: QtBot) -> None:
    from sparecycles.ui.pages.settings import SettingsPage

    page = SettingsPage(link)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: bool(page.gpu_checks) and page.save_button.isEnabled(), timeout=10_000)
    page.gpu_checks[0].setChecked(False)
    statuses: list[object] = []
    link.status_changed.connect(statuses.append)
    qtbot.waitUntil(lambda: len(statuses) >= 2, timeout=10_000)
    assert not page.gpu_checks[0].isChecked()
    assert page.changes() == {"gpu": {"disabled": ["0"]}}


# -- 3. the tray when the agent dies -----------------------------------------------------------------------


def test_the_tray_tooltip_drops_todays_figure_when_the_agent_dies(
    sim_agent: RunningAgent, qtbot: QtBot, tmp_path: Path
) -> None:
    from sparecycles.ui.notifications import NotificationPreferences
    from sparecycles.ui.tray import Tray, TrayLook

    link = AgentLink(sim_agent.paths, start_agent=lambda _paths: None)  # a link that would restart it
    tray = Tray(link, NotificationPreferences(tmp_path))
    link.start()
    try:
        qtbot.waitUntil(lambda: "Today:" in tray.icon.toolTip() and link.status is not None, timeout=20_000)
        sim_agent.process.send_signal(signal.SIGKILL)
        sim_agent.process.wait()
        qtbot.waitUntil(lambda: link.state is LinkState.DIED, timeout=20_000)
        assert tray.look is TrayLook.ERROR
        assert "Today:" not in tray.icon.toolTip()
        assert "stopped" in tray.icon.toolTip()
    finally:
        link.close()


# -- 4. and 5. a hung agent, and one that comes back by itself ----------------------------------------------


def test_a_hung_agent_is_noticed_and_followed_again_when_it_answers(
    sim_agent: RunningAgent, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sparecycles.control.client

    monkeypatch.setattr(sparecycles.control.client, "EVENTS_READ_TIMEOUT_S", 3.0, raising=False)
    link = AgentLink(sim_agent.paths)
    link.start()
    try:
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=20_000)
        sim_agent.process.send_signal(signal.SIGSTOP)  # the agent hangs: no event, no ping
        qtbot.waitUntil(lambda: link.state is not LinkState.CONNECTED, timeout=15_000)
        assert link.state is LinkState.LOST
        sim_agent.process.send_signal(signal.SIGCONT)
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=30_000)
    finally:
        sim_agent.process.send_signal(signal.SIGCONT)
        link.close()


def test_a_hung_agent_is_not_taken_for_a_dead_one_by_an_app_that_could_start_another(
    sim_agent: RunningAgent, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app (which starts an agent when none runs) sees a stopped agent as not answering, and waits: it does
    not show the "the agent stopped" panel, nor offer a restart that a live agent's lock would refuse."""
    import sparecycles.control.client

    monkeypatch.setattr(sparecycles.control.client, "EVENTS_READ_TIMEOUT_S", 3.0, raising=False)
    started: list[object] = []
    link = AgentLink(sim_agent.paths, start_agent=started.append)
    link.start()
    try:
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=20_000)
        sim_agent.process.send_signal(signal.SIGSTOP)
        qtbot.waitUntil(lambda: "did not answer in time" in link.message, timeout=30_000)
        assert link.state is LinkState.LOST
        assert f"kill {sim_agent.process.pid}" in link.message
        sim_agent.process.send_signal(signal.SIGCONT)
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=30_000)
        assert started == []  # no second agent was started
    finally:
        sim_agent.process.send_signal(signal.SIGCONT)
        link.close()


def test_the_client_stops_following_a_silent_event_stream(sim_agent: RunningAgent) -> None:
    client = ControlClient.from_lock_file(sim_agent.paths.agent_lock_file)
    events = client.events(read_timeout=2.0)
    next(events)  # the stream is open
    sim_agent.process.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    try:
        for _event in events:  # the events sent before the stop, then silence
            pass
        assert time.monotonic() - started < 10
    finally:
        sim_agent.process.send_signal(signal.SIGCONT)
        client.close()


def test_an_agent_that_comes_back_by_itself_is_followed_again(
    sim_agent: RunningAgent, agent_home: Path, qtbot: QtBot
) -> None:
    link = AgentLink(sim_agent.paths, start_agent=lambda _paths: None)
    link.start()
    again: RunningAgent | None = None
    try:
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED and link.status is not None, timeout=20_000)
        sim_agent.process.send_signal(signal.SIGKILL)
        sim_agent.process.wait()
        qtbot.waitUntil(lambda: link.state is LinkState.DIED, timeout=20_000)
        again = start_agent(agent_home, "--simulated-gpus", "1")  # e.g. systemd's Restart=on-failure
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=15_000)
    finally:
        link.close()
        if again is not None:
            again.stop()


# -- 6. the fleet page's keyring ---------------------------------------------------------------------------


def test_the_fleet_page_reads_and_keeps_its_token_off_the_gui_thread(
    fake_link: AgentLink, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparecycles.ui.gui_prefs import gui_prefs
    from sparecycles.ui.pages import fleet

    threads: list[tuple[str, threading.Thread]] = []

    def load_token(url: str) -> str:
        threads.append(("load", threading.current_thread()))
        time.sleep(1.0)  # a slow D-Bus answer: the window keeps running meanwhile
        return "sco_kept"

    def keep_token(url: str, token: str) -> str:
        threads.append(("keep", threading.current_thread()))
        return "no keyring here"

    monkeypatch.setattr(fleet, "load_token", load_token)
    monkeypatch.setattr(fleet, "keep_token", keep_token)
    prefs = gui_prefs(fake_link.paths)
    prefs.setValue(fleet.FLEET_URL, "http://127.0.0.1:9")
    prefs.sync()
    started = time.monotonic()
    page = fleet.FleetPage(fake_link)
    qtbot.addWidget(page)
    assert time.monotonic() - started < 0.8
    qtbot.waitUntil(lambda: page._token == "sco_kept", timeout=5_000)
    page.token.setText("sco_typed")
    page.connect_button.click()
    qtbot.waitUntil(lambda: "not kept" in page.message.text(), timeout=5_000)
    assert [kind for kind, _thread in threads] == ["load", "keep"]
    assert all(thread is not threading.main_thread() for _kind, thread in threads)


# -- 7. an answer for a dialog closed meanwhile ------------------------------------------------------------


class WalletClient:
    """The agent's wallet calls, creating a wallet slowly (the answer comes after the dialog closed)."""

    def __init__(self) -> None:
        self.wallets: list[dict[str, Any]] = []

    def wallet_call(self, method: str, path: str, body: dict[str, Any] | None = None, **_options: object) -> Any:
        if (method, path) == ("GET", ""):
            return {"wallets": list(self.wallets), "active": None}
        if (method, path) == ("POST", "") and body is not None:
            time.sleep(0.5)
            view = {"name": body["name"], "address": "0x" + "ab" * 20, "kind": "mnemonic"}
            self.wallets.append({**view, "confirmed": False, "active": False})
            return {"wallet": {**view, "confirmed": False, "active": False}, "confirm_positions": [1, 2, 3]}
        if method == "POST" and path.endswith("/export"):
            return {"name": path.split("/")[1], "mnemonic": " ".join(["word"] * 12)}
        raise AssertionError(f"unexpected call {method} {path}")


def test_an_answer_for_a_closed_wallet_dialog_is_dropped_and_the_page_shows_the_wallet(
    fake_link: AgentLink, qtbot: QtBot
) -> None:
    from sparecycles.ui.pages.wallet import WalletPage
    from sparecycles.ui.pages.wallet_dialogs import CreateWalletDialog

    client = WalletClient()
    fake_link.client = lambda timeout=10.0: contextlib.nullcontext(client)  # type: ignore[assignment,method-assign,return-value]
    page = WalletPage(fake_link)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.wallets is not None, timeout=5_000)
    page.create_wallet()
    dialog = page.dialog
    assert isinstance(dialog, CreateWalletDialog)
    dialog.name_edit.setText("main")
    dialog.create_button.click()
    dialog.reject()  # Cancel before the agent answered
    qtbot.waitUntil(lambda: page.wallets is not None and len(page.wallets.wallets) == 1, timeout=5_000)
    assert page.wallets is not None
    assert page.wallets.wallets[0].name == "main"
    assert page.list.count() == 1


def test_the_link_drops_an_answer_for_a_deleted_receiver(fake_link: AgentLink, qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QLabel
    from shiboken6 import Shiboken

    fake_link.client = lambda timeout=10.0: contextlib.nullcontext(None)  # type: ignore[assignment,method-assign,return-value]
    label = QLabel()
    deleted = threading.Event()
    answered: list[object] = []

    def late(_client: object) -> str:
        deleted.wait(5)
        return "late"

    fake_link.call(late, label.setText)  # a slot of the label itself
    fake_link.call(late, answered.append, owner=label)  # a closure that would use the label
    label.deleteLater()
    qtbot.waitUntil(lambda: not Shiboken.isValid(label), timeout=5_000)
    deleted.set()
    qtbot.wait(500)  # the answers arrive: neither reaches the deleted label
    assert answered == []


# -- 9. money ----------------------------------------------------------------------------------------------


def test_small_amounts_of_money_are_not_rounded_away() -> None:
    from sparecycles.ui import formatting

    assert formatting.money(Decimal("0.004"), "EUR") == "0.004 EUR"
    assert formatting.money(Decimal("-0.004"), "EUR") == "-0.004 EUR"
    assert formatting.money(Decimal("12.5"), None) == "12.50"
    assert formatting.money(None, "EUR") == "—"
