"""The onboarding wizard against a real agent with a simulated GPU: a user goes through every step,
filling it in, is told in words that the agent will not benchmark a simulated GPU, skips that step, and
finds each choice in the agent afterwards; each step opens again by itself."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.control.wallet import WalletList
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.gui_prefs import onboarding_completed
from sparecycles.ui.onboarding import OnboardingWizard, Step, open_on_first_start
from tests.conftest import RunningAgent

WATCH_ADDRESS = "0x" + "ab" * 20


def secret_service_available() -> bool:
    """Where the agent can keep a created wallet's key (the GUI's tests never import the agent itself)."""
    import keyring
    from keyring.backends.chainer import ChainerBackend

    backend = keyring.get_keyring()
    first = ChainerBackend.backends[0] if isinstance(backend, ChainerBackend) and ChainerBackend.backends else backend
    return "SecretService" in type(first).__module__


def go_next(wizard: OnboardingWizard, qtbot: QtBot, to: Step) -> None:
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == to, timeout=15_000)


def test_onboarding_completes_with_the_benchmark_skipped(
    link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot
) -> None:
    assert not onboarding_completed(link.paths)
    wizard = open_on_first_start(link)  # the first start: the wizard opens
    assert wizard is not None
    qtbot.addWidget(wizard)
    qtbot.waitExposed(wizard)
    assert wizard.currentId() == Step.WELCOME

    go_next(wizard, qtbot, Step.MACHINE)
    machine = wizard.steps[Step.MACHINE]
    qtbot.waitUntil(lambda: "GPUs found" in machine.gpus.text(), timeout=10_000)  # type: ignore[attr-defined]
    assert "(simulated)" in machine.gpus.text()  # type: ignore[attr-defined]
    assert machine.runtime.text()  # type: ignore[attr-defined]

    go_next(wizard, qtbot, Step.MARKETPLACE)
    assert wizard.steps[Step.MARKETPLACE].private.isChecked()  # type: ignore[attr-defined]

    go_next(wizard, qtbot, Step.PAYOUT)
    payout = wizard.steps[Step.PAYOUT]
    payout.watch.setChecked(True)  # type: ignore[attr-defined]
    payout.name.setText("ledger")  # type: ignore[attr-defined]
    payout.address.setText("0x1234")  # type: ignore[attr-defined]
    wizard.next()  # a wrong address: refused, in words, on the same page
    qtbot.waitUntil(lambda: "refused" in payout.problem.text(), timeout=10_000)
    assert wizard.currentId() == Step.PAYOUT
    payout.name.setText("hardware")  # type: ignore[attr-defined]
    payout.address.setText(WATCH_ADDRESS)  # type: ignore[attr-defined]
    go_next(wizard, qtbot, Step.TARIFF)

    tariff = wizard.steps[Step.TARIFF]
    tariff.price.setText("0.27")  # type: ignore[attr-defined]
    tariff.currency.setText("EUR")  # type: ignore[attr-defined]
    tariff.zone.setText("Europe/Berlin")  # type: ignore[attr-defined]
    tariff.token_value.setText("1.5")  # type: ignore[attr-defined]
    tariff.token_decimals.setValue(6)  # type: ignore[attr-defined]
    go_next(wizard, qtbot, Step.WORK)

    work = wizard.steps[Step.WORK].editor  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: len(work.grid.cells()) == 7 * 48, timeout=10_000)  # the agent's "daily", loaded
    work.mode.setCurrentIndex(work.mode.findData("idle_or_schedule"))
    work.idle_minutes.setValue(15)
    work.grid.set_cells({(day, slot) for day in range(5) for slot in range(36, 48)})  # weekdays 18:00-24:00
    go_next(wizard, qtbot, Step.BENCHMARK)

    bench = wizard.steps[Step.BENCHMARK]
    bench.run_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: "could not benchmark" in bench.result.text(), timeout=30_000)  # type: ignore[attr-defined]
    assert "simulated" in bench.result.text().lower()  # type: ignore[attr-defined]
    bench.skip_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: not wizard.isVisible(), timeout=5_000)
    assert wizard.result() == OnboardingWizard.DialogCode.Accepted
    assert onboarding_completed(link.paths)
    assert open_on_first_start(link) is None  # and not on the next start

    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        settings = client.settings()
        ledger = client.ledger()
        wallets = WalletList.model_validate(client.wallet_call("GET", ""))
    assert settings["work"]["mode"] == "idle_or_schedule"
    assert settings["work"]["idle_threshold"] == "15m"
    assert settings["schedule"]["windows"] == ["Mon-Fri 18:00-24:00"]
    assert settings["marketplace"]["url"] is None
    assert wallets.active == "hardware"
    assert [w.address.lower() for w in wallets.wallets] == [WATCH_ADDRESS]
    assert ledger.tariff is not None
    assert 'price_per_kwh = "0.27"' in ledger.tariff
    assert 'time_zone = "Europe/Berlin"' in ledger.tariff
    assert ledger.token_rate is not None
    assert (ledger.token_rate.per_token, ledger.token_rate.currency, ledger.token_rate.decimals) == (
        Decimal("1.5"),
        "EUR",
        6,
    )


def test_a_step_opens_again_on_its_own(link: AgentLink, qtbot: QtBot) -> None:
    wizard = OnboardingWizard(link, start_at=Step.TARIFF)
    qtbot.addWidget(wizard)
    wizard.show()
    assert wizard.currentId() == Step.TARIFF
    tariff = wizard.steps[Step.TARIFF]
    tariff.price.setText("a lot")  # type: ignore[attr-defined]
    wizard.next()
    assert wizard.currentId() == Step.TARIFF
    assert "must be a number" in tariff.problem.text()


def test_a_new_wallet_shows_its_phrase_once_and_asks_words_back(
    link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot
) -> None:
    if not secret_service_available():
        pytest.skip("needs the Secret Service session that `make test` starts (gnome-keyring in D-Bus)")
    wizard = OnboardingWizard(link, start_at=Step.PAYOUT)
    qtbot.addWidget(wizard)
    wizard.show()
    payout = wizard.steps[Step.PAYOUT]
    payout.create_choice.setChecked(True)  # type: ignore[attr-defined]
    payout.name.setText("fresh")  # type: ignore[attr-defined]
    payout.create_button.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(payout.word_edits), timeout=15_000)  # type: ignore[attr-defined]
    words = dict(re.findall(r"(\d+)\. (\w+)", payout.phrase.text()))  # type: ignore[attr-defined]
    assert len(words) in (12, 24)
    for position, edit in payout.word_edits.items():  # type: ignore[attr-defined]
        edit.setText("wrong" if position == min(payout.word_edits) else words[str(position)])  # type: ignore[attr-defined]
    wizard.next()
    qtbot.waitUntil(lambda: "refused" in payout.problem.text(), timeout=10_000)
    first = min(payout.word_edits)  # type: ignore[attr-defined]
    payout.word_edits[first].setText(words[str(first)])  # type: ignore[attr-defined]
    go_next(wizard, qtbot, Step.TARIFF)
    assert not payout.phrase.text()  # type: ignore[attr-defined]
    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        wallets = WalletList.model_validate(client.wallet_call("GET", ""))
    assert wallets.active == "fresh"
    assert wallets.wallets[0].confirmed
