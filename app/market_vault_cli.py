"""``sparecycles market …`` commands for the payout vault on chain: deploy one, name a requester's deposit
address, re-sign vouchers after a key rotation, and relay providers' claims (the operator pays the gas).

See docs/marketplace-operations.md ("Payouts on chain").
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sparecycles import launcher
from sparecycles.market_options import DataDir, DbUrl, KeyFile, refusing
from sparecycles.market_options import data_dir as _data_dir
from sparecycles.market_options import operator as _operator
from sparecycles.terminal import out

ChainRpc = Annotated[str, typer.Option("--chain-rpc", help="The chain's JSON-RPC URL.")]
Vault = Annotated[str, typer.Option("--vault", help="The payout vault's address.")]
ChainId = Annotated[int | None, typer.Option("--chain-id", help="Refuse unless the RPC serves this chain id.", min=1)]


def register_vault_commands(app: typer.Typer) -> None:
    @app.command("deploy-vault")
    def deploy_vault(
        *,
        rpc: Annotated[str, typer.Option("--rpc", help="The chain's JSON-RPC URL.")],
        token: Annotated[str, typer.Option("--token", help="The ERC-20 token the vault pays out.")],
        key_file: Annotated[
            Path,
            typer.Option(
                "--key-file", help="The key that deploys and owns the vault and pays the gas (a 0600 key file)."
            ),
        ],
        signer: Annotated[
            str | None,
            typer.Option("--signer", help="The operator address whose vouchers it pays (default: the key's)."),
        ] = None,
    ) -> None:
        """Deploy a payout vault (PayoutVault) for one ERC-20 token and print its address."""
        with refusing():
            deployed = launcher.market_deploy_vault(rpc, token, key_file, signer)
        out.print(deployed.address)
        out.print(
            f"Deployed on chain {deployed.chain_id} in block {deployed.block_number} (tx {deployed.tx_hash}); "
            f"it pays vouchers signed by {deployed.signer}. Serve with --chain-rpc URL --vault {deployed.address} "
            f"--deposits-from-block {deployed.block_number}",
            soft_wrap=True,
        )

    @app.command("deposit-address")
    def deposit_address(
        name: Annotated[str, typer.Argument(help="The requester.")],
        address: Annotated[str | None, typer.Argument(help="The address it deposits from (omit with --clear).")] = None,
        *,
        clear: Annotated[bool, typer.Option("--clear", help="Its deposits credit it no more.")] = False,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Name the chain address whose deposits to the payout vault credit a requester.

        Deposits that address made earlier, which credited nobody, are credited at once.
        """
        if (address is None) != clear:
            raise typer.BadParameter("give an ADDRESS, or --clear")
        with refusing():
            account = _operator(data_dir, db, key_file).set_deposit_address(name, address)
        shown = account.deposit_address or "no address"
        out.print(f"{account.name}: deposits from {shown}; {account.credit_base_units} available", soft_wrap=True)

    @app.command("resign-vouchers")
    def resign_vouchers(data_dir: DataDir = None, db: DbUrl = None, key_file: KeyFile = None) -> None:
        """Re-sign, with the current operator key, every latest voucher an older key signed (same amounts).

        `market serve` does this at start too; run it after rotating the operator key (the vault's
        rotateSigner) when the server keeps running elsewhere on the same database.
        """
        with refusing():
            count = _operator(data_dir, db, key_file).resign_vouchers()
        out.print(f"Re-signed {count} voucher(s).")

    @app.command("relay-claims")
    def relay_claims(
        *,
        chain_rpc: ChainRpc,
        vault: Vault,
        gas_key_file: Annotated[
            Path, typer.Option("--gas-key-file", help="The key (0600 file) that sends the claims and pays the gas.")
        ],
        min_amount: Annotated[
            int, typer.Option("--min-amount", help="Skip payout addresses owed fewer base units.", min=1)
        ] = 1,
        chain_id: ChainId = None,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Claim from the vault, on each provider's behalf, what its voucher earned beyond what it was paid.

        The tokens go to the providers' payout addresses; the operator's gas key pays the gas, so a watch-only
        payout address with no coin is paid too. Run it on a timer (cron, a systemd timer).
        """
        with refusing():
            claims = launcher.market_relay_claims(
                _data_dir(data_dir),
                db,
                key_file,
                rpc_url=chain_rpc,
                vault=vault,
                gas_key_file=gas_key_file,
                min_amount=min_amount,
                chain_id=chain_id,
                say=lambda line: out.print(line, soft_wrap=True),
            )
        out.print(f"Relayed {len(claims)} claim(s), {sum(claim.amount for claim in claims)} base units in all.")
