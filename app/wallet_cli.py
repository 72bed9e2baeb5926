"""``sparecycles wallet``: the payout wallet on the command line.

Secrets are typed at a prompt (never taken as an argument, where other users' `ps` would see them) and
sent to the agent in a request body; the agent keeps them in the OS keyring. A created wallet's recovery
phrase is shown once, then confirmed by three of its words.
"""

from __future__ import annotations

import json
import secrets
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sparecycles.command_wiring import Connect, Fail
from sparecycles.control.wallet import (
    BalanceView,
    ClaimableView,
    ClaimResult,
    CreatedWallet,
    ExportedSecret,
    WalletList,
    WalletView,
)
from sparecycles.terminal import out, styled

if TYPE_CHECKING:  # the agent's client loads when a command talks to the agent
    from sparecycles.control.client import ControlClient


EXIT_USAGE = 2
CONFIRM_WORDS = 3
PHRASE_WORDS = 12
CLAIM_TIMEOUT_S = 60.0  # the agent waits up to 30 s for the claim to be mined


def register_wallet_commands(app: typer.Typer, connect: Connect, fail: Fail) -> None:  # noqa: PLR0915 - the commands, read in one place
    wallet_app = typer.Typer(help="Your payout wallet: its key only in the OS keyring, or nowhere (watch-only).")
    app.add_typer(wallet_app, name="wallet")

    def show(entry: WalletView) -> None:
        kind = {"mnemonic": "recovery phrase", "key": "private key", "watch": "watch-only"}[entry.kind]
        active = (" ", ("(payouts)", "bold")) if entry.active else ()
        unconfirmed = "" if entry.confirmed else " (not confirmed)"
        out.print(styled(f"{entry.name}: {entry.address}  {kind}", *active, unconfirmed), soft_wrap=True)

    def confirm_words(client: ControlClient, name: str, positions: list[int]) -> None:
        words = {position: typer.prompt(f"Word {position} of the recovery phrase").strip() for position in positions}
        entry = WalletView.model_validate(client.wallet_call("POST", f"/{name}/confirm", {"words": words}))
        out.print(f"Confirmed. Wallet {entry.name} can now receive payouts: `sparecycles wallet use {entry.name}`.")

    @wallet_app.command("list")
    def list_wallets(as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False) -> None:
        """The wallets here and which one receives payouts."""
        with connect() as client:
            listed = WalletList.model_validate(client.wallet_call("GET", ""))
        if as_json:
            sys.stdout.write(listed.model_dump_json(indent=2) + "\n")
            return
        if not listed.wallets:
            out.print("No wallet yet: `sparecycles wallet create NAME`, `import NAME` or `watch NAME ADDRESS`.")
        for entry in listed.wallets:
            show(entry)

    @wallet_app.command()
    def create(name: Annotated[str, typer.Argument(help="A name for it, e.g. main.")]) -> None:
        """A new wallet: its recovery phrase is shown once; write it down, then repeat three of its words."""
        with connect() as client:
            created = CreatedWallet.model_validate(client.wallet_call("POST", "", {"name": name}))
            secret = ExportedSecret.model_validate(
                client.wallet_call("POST", f"/{name}/export", {"confirmation": f"export {name}"})
            )
            words = (secret.mnemonic or "").split()
            out.print(f"Wallet {name}: {created.wallet.address}")
            out.print("Its recovery phrase — write it down on paper and keep it safe; it is shown only this once:")
            for row in range(0, len(words), 4):
                out.print(
                    "   " + "  ".join(f"{i + 1:>2}. {words[i]:<10}" for i in range(row, min(row + 4, len(words))))
                )
            out.print("Anyone with these words can take the wallet's funds; SpareCycles never asks for them again.")
            typer.confirm("Written down?", abort=True)
            out.print("\n" * 40)  # scroll the phrase off the screen
            confirm_words(client, name, created.confirm_positions)

    @wallet_app.command()
    def confirm(name: Annotated[str, typer.Argument(help="The wallet.")]) -> None:
        """Confirm a created wallet's recovery phrase by three of its words."""
        positions = sorted(secrets.SystemRandom().sample(range(1, PHRASE_WORDS + 1), CONFIRM_WORDS))
        with connect() as client:
            confirm_words(client, name, positions)

    @wallet_app.command("import")
    def import_wallet(
        name: Annotated[str, typer.Argument(help="A name for it.")],
        key: Annotated[bool, typer.Option("--key", help="Import a private key instead of a recovery phrase.")] = False,
    ) -> None:
        """Import a wallet from its recovery phrase (or --key: a private key), typed at a hidden prompt."""
        if key:
            secret = typer.prompt("Private key (64 hexadecimal digits)", hide_input=True)
            body: dict[str, Any] = {"name": name, "private_key": secret}
        else:
            secret = typer.prompt("Recovery phrase (12 to 24 words)", hide_input=True)
            body = {"name": name, "mnemonic": secret}
        with connect() as client:
            show(WalletView.model_validate(client.wallet_call("POST", "/import", body)))

    @wallet_app.command()
    def watch(
        name: Annotated[str, typer.Argument(help="A name for it.")],
        address: Annotated[str, typer.Argument(help="The payout address (0x…); its key stays elsewhere.")],
    ) -> None:
        """Add a watch-only payout address: a hardware wallet's, another computer's, the studio's."""
        with connect() as client:
            show(WalletView.model_validate(client.wallet_call("POST", "/watch", {"name": name, "address": address})))

    @wallet_app.command()
    def export(name: Annotated[str, typer.Argument(help="The wallet.")]) -> None:
        """Show a wallet's recovery phrase or private key, after you confirm by typing `export NAME`."""
        confirmation = typer.prompt(f"Anyone who sees it can take the funds. Type `export {name}` to show it")
        with connect() as client:
            secret = ExportedSecret.model_validate(
                client.wallet_call("POST", f"/{name}/export", {"confirmation": confirmation.strip()})
            )
        if secret.mnemonic:
            out.print(f"Recovery phrase ({secret.derivation_path}): {secret.mnemonic}", soft_wrap=True)
        if secret.private_key:
            out.print(f"Private key: {secret.private_key}", soft_wrap=True)

    @wallet_app.command()
    def remove(
        name: Annotated[str, typer.Argument(help="The wallet.")],
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    ) -> None:
        """Forget a wallet: its key is deleted from the OS keyring (have its recovery phrase written down)."""
        if not yes:
            typer.confirm(f"Delete wallet {name} and its key from the OS keyring?", abort=True)
        with connect() as client:
            client.wallet_call("DELETE", f"/{name}")
        out.print(f"Wallet {name} removed.")

    @wallet_app.command()
    def use(name: Annotated[str, typer.Argument(help="The wallet.")]) -> None:
        """Pay out to this wallet (the marketplace is told, signed by the current payout address)."""
        with connect() as client:
            show(WalletView.model_validate(client.wallet_call("POST", f"/{name}/use")))

    def pick(client: ControlClient, name: str | None) -> WalletView:  # noqa: RET503 - fail() never returns
        listed = WalletList.model_validate(client.wallet_call("GET", ""))
        chosen = name or listed.active
        found = next((entry for entry in listed.wallets if entry.name == chosen), None)
        if found is not None:
            return found
        fail(
            f"no wallet named {chosen!r}"
            if chosen
            else "no wallet receives payouts yet: `sparecycles wallet use NAME`",
            EXIT_USAGE,
        )

    @wallet_app.command()
    def address(
        name: Annotated[str | None, typer.Argument(help="The wallet (default: the payout one).")] = None,
    ) -> None:
        """A wallet's address."""
        with connect() as client:
            out.print(pick(client, name).address)

    @wallet_app.command()
    def balance(
        name: Annotated[str | None, typer.Argument(help="The wallet (default: the payout one).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
    ) -> None:
        """The native coin's and the payout token's balance, from the configured chain."""
        with connect() as client:
            entry = pick(client, name)
            shown = BalanceView.model_validate(client.wallet_call("GET", f"/{entry.name}/balance"))
        if as_json:
            sys.stdout.write(json.dumps(shown.model_dump(), indent=2) + "\n")
            return
        out.print(f"{entry.name} ({shown.address}): {shown.native or '-'}, {shown.token or '-'}", soft_wrap=True)
        if shown.problem:
            out.print(shown.problem, soft_wrap=True)

    def amount(base_units: int, decimals: int) -> str:
        return format((Decimal(base_units) / Decimal(10) ** decimals).normalize(), "f")

    @wallet_app.command()
    def claimable(as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False) -> None:
        """What a claim from the payout vault would pay now: the latest voucher minus what was claimed."""
        with connect() as client:
            shown = ClaimableView.model_validate(client.wallet_call("GET", "/claimable"))
        if as_json:
            sys.stdout.write(shown.model_dump_json(indent=2) + "\n")
            return
        d = shown.decimals
        out.print(
            f"Claimable: {amount(shown.claimable, d)} (voucher {amount(shown.voucher_amount, d)} - claimed "
            f"{amount(shown.claimed, d)}) for {shown.payout_address or '-'}",
            soft_wrap=True,
        )
        if shown.pending_tx:
            out.print(f"A claim is on its way: transaction {shown.pending_tx}", soft_wrap=True)
        if shown.problem:
            out.print(shown.problem, soft_wrap=True)

    @wallet_app.command()
    def claim(
        relay: Annotated[
            bool,
            typer.Option(
                "--relay",
                help="Ask the marketplace's operator to send the claim and pay its gas (the default for a "
                "watch-only wallet).",
            ),
        ] = False,
    ) -> None:
        """Claim what the payout vault owes you, sent from the active wallet (it pays the gas)."""
        path = "/claim?relay=true" if relay else "/claim"
        with connect() as client:
            result = ClaimResult.model_validate(client.wallet_call("POST", path, timeout=CLAIM_TIMEOUT_S))
        if result.state == "mined":
            shown = f"Claimed {result.amount} base units to {result.payout_address}: {result.tx_hash}"
        elif result.state == "relay_requested":
            shown = (
                f"Asked the marketplace to relay a claim of {result.amount} base units to {result.payout_address}; "
                "its operator pays the gas. It is recorded once seen on chain (`sparecycles payouts`)."
            )
        else:
            shown = (
                f"Claim sent, not mined yet: {result.tx_hash}; it is recorded once mined "
                "(`sparecycles wallet claimable` checks)"
            )
        out.print(shown, soft_wrap=True)
