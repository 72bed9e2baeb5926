"""``sparecycles market …``: run the reference marketplace and operate it (requesters, credit, disputes).

The operator's commands work on the marketplace's database directly, on the machine that runs it;
they need no running server. Amounts are in the payout token's base units.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sparecycles import launcher
from sparecycles.durations import parse_duration
from sparecycles.market_admin_cli import register_operator_commands
from sparecycles.market_fleet_cli import register_fleet_operator_commands, register_studio_account_commands
from sparecycles.market_options import AsJson, DataDir, DbUrl, KeyFile
from sparecycles.market_options import data_dir as _data_dir
from sparecycles.market_options import operator as _operator
from sparecycles.market_options import refused as _refused
from sparecycles.market_vault_cli import register_vault_commands
from sparecycles.paths import AppPaths
from sparecycles.secret_input import SecretInput, read_secret
from sparecycles.terminal import out, print_error, styled

if TYPE_CHECKING:  # the requester's client (httpx) and the protocol's models load when a command needs them
    from sparecycles.protocol.market import JobView
    from sparecycles.requester import RequesterClient

market_app = typer.Typer(help="Run and operate the reference marketplace (a studio's own).", no_args_is_help=True)


def every_s(text: str) -> float:
    """--relay-every's seconds: at least a minute (each round may send a transaction per provider)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--relay-every") from None
    if seconds < 60:
        raise typer.BadParameter("relay at most once a minute, e.g. 6h", param_hint="--relay-every")
    return float(seconds)


@market_app.command("serve")
def serve(
    *,
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between a provider's heartbeats.", min=0.1, max=3600)
    ] = 5.0,
    lease_timeout: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a lease is lost.", min=1, max=86400)
    ] = 30.0,
    name: Annotated[
        str, typer.Option(help="The marketplace's name, as machines show it ('schedule set by NAME').")
    ] = "SpareCycles private marketplace",
    provider_online: Annotated[
        float,
        typer.Option(help="Seconds without a word from a machine after which it shows offline.", min=5, max=86400),
    ] = 60.0,
    fleet_report_every: Annotated[
        float, typer.Option(help="Seconds between the state reports of a studio's machines.", min=1, max=3600)
    ] = 15.0,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's unencrypted PEM private key (chmod 600).")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The URL providers use, e.g. https://market.example.org behind a reverse proxy "
            "(sign-in messages name it); default: from --host, --port and TLS.",
        ),
    ] = None,
    provider_rate: Annotated[
        float, typer.Option(help="Requests a second each provider may make (0: no limit).", min=0)
    ] = 20.0,
    requester_rate: Annotated[
        float, typer.Option(help="Requests a second each requester API key may make (0: no limit).", min=0)
    ] = 50.0,
    sign_in_rate: Annotated[
        float, typer.Option(help="Sign-in requests a second from one client address (0: no limit).", min=0)
    ] = 20.0,
    max_queued_jobs: Annotated[int, typer.Option(help="Jobs one requester may have queued at once.", min=1)] = 10_000,
    storage_quota: Annotated[
        int, typer.Option(help="Bytes of job outputs kept per requester unless `market quota` sets another.", min=0)
    ] = 100 * 1024**3,
    output_retention_days: Annotated[
        float | None, typer.Option(help="Delete job outputs this many days after the job ended (hourly).", min=0)
    ] = None,
    chain_rpc: Annotated[
        str | None, typer.Option("--chain-rpc", help="The payout vault's chain (JSON-RPC URL); needs --vault.")
    ] = None,
    vault: Annotated[
        str | None,
        typer.Option(
            "--vault",
            help="The payout vault's address: vouchers name it and the chain's id, and requesters are credited "
            "with their deposits to it.",
        ),
    ] = None,
    chain_id: Annotated[
        int | None, typer.Option("--chain-id", help="Refuse to start unless --chain-rpc serves this chain id.", min=1)
    ] = None,
    confirmations: Annotated[
        int, typer.Option(help="Blocks on top of a vault deposit before it is credited.", min=0)
    ] = 2,
    deposits_from_block: Annotated[
        int, typer.Option(help="The block to start reading vault deposits at, the first time (its deployment).", min=0)
    ] = 0,
    relay_gas_key_file: Annotated[
        Path | None,
        typer.Option(
            "--relay-gas-key-file",
            help="Relay providers' claims (when they ask, and with --relay-every on a schedule) from this key "
            "(0600 file), which pays the gas: a payout address with no coin for gas is paid too.",
        ),
    ] = None,
    relay_every: Annotated[
        str | None,
        typer.Option("--relay-every", help="Claim for every owed payout address this often, e.g. 6h or 1d."),
    ] = None,
    relay_min_amount: Annotated[
        int, typer.Option(help="The least owed (base units) the operator relays a claim for.", min=1)
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics (GET /metrics) on this port; off when unset.", min=1, max=65535),
    ] = None,
    metrics_address: Annotated[
        str, typer.Option(help="Address of the metrics endpoint; beyond loopback it needs --metrics-token-file.")
    ] = "127.0.0.1",
    metrics_token_file: Annotated[
        Path | None,
        typer.Option(help="A file (mode 0600) holding the bearer token scrapers must send to read the metrics."),
    ] = None,
) -> None:
    """Serve the marketplace (protocol v1) until interrupted.

    Beyond this machine, serve HTTPS (--tls-cert, --tls-key) or listen on 127.0.0.1 behind a TLS reverse
    proxy: see docs/marketplace-operations.md.
    """
    if not 1 <= len(name.strip()) <= 100:
        raise _refused(ValueError("--name is 1 to 100 characters"))
    try:
        launcher.market_serve(
            _data_dir(data_dir),
            db,
            key_file,
            host=host,
            port=port,
            heartbeat_interval_s=heartbeat_interval,
            lease_timeout_s=lease_timeout,
            tls_cert=tls_cert,
            tls_key=tls_key,
            public_url=public_url,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
            metrics_token_file=metrics_token_file,
            vault=launcher.VaultSettings(
                chain_rpc=chain_rpc,
                vault=vault,
                chain_id=chain_id,
                confirmations=confirmations,
                deposits_from_block=deposits_from_block,
                relay_gas_key_file=relay_gas_key_file,
                relay_every_s=None if relay_every is None else every_s(relay_every),
                relay_min_amount=relay_min_amount,
            ),
            name=name,
            provider_online_s=provider_online,
            fleet_report_s=fleet_report_every,
            provider_rate=provider_rate,
            requester_rate=requester_rate,
            sign_in_rate=sign_in_rate,
            max_queued_jobs=max_queued_jobs,
            storage_quota_bytes=storage_quota,
            output_retention_days=output_retention_days,
        )
    except Exception as exc:
        raise _refused(exc) from None


@market_app.command("backup")
def backup(
    dest: Annotated[Path, typer.Argument(help="The backup file to write (or a folder for a dated one).")],
    data_dir: DataDir = None,
    db: DbUrl = None,
) -> None:
    """Copy the SQLite database consistently while the server runs, and check the copy.

    For PostgreSQL use pg_dump (see docs/marketplace-operations.md). Outputs of jobs are files in the data
    folder: back them up with your file backups.
    """
    try:
        report = launcher.market_backup(_data_dir(data_dir), db, dest)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(
        f"Backed up to {report.path} ({report.size_bytes} bytes, schema {report.check.schema_revision}): "
        f"integrity check ok, {report.check.jobs} jobs",
        soft_wrap=True,
    )


@market_app.command("restore")
def restore(
    source: Annotated[Path, typer.Argument(help="A file `market backup` wrote.")],
    data_dir: DataDir = None,
    db: DbUrl = None,
) -> None:
    """Replace the SQLite database with a backup (stop every server on this data folder first).

    The replaced database is kept beside it as market.db.before-restore-<time>.
    """
    try:
        report = launcher.market_restore(_data_dir(data_dir), db, source)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(
        f"Restored {report.database} from {source}: integrity check ok, {report.check.jobs} jobs, "
        f"schema {report.check.schema_revision}",
        soft_wrap=True,
    )
    if report.kept_aside is not None:
        out.print(f"The database it replaced is kept as {report.kept_aside}", soft_wrap=True)


@market_app.command("add-requester")
def add_requester(
    name: Annotated[str, typer.Argument(help="A name for the requester (a team, a project).")],
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Create a requester and print its API key (shown this once; only its hash is kept)."""
    try:
        key = _operator(data_dir, db, key_file).add_requester(name)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(key)


@market_app.command("credit")
def credit(
    name: Annotated[str, typer.Argument(help="The requester.")],
    amount: Annotated[int, typer.Argument(help="Base units to add to its credit.", min=1)],
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Add credit to a requester (it paid the operator off-chain)."""
    try:
        view = _operator(data_dir, db, key_file).credit(name, amount)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(f"{view.name}: {view.credit_base_units} available, {view.held_base_units} held by running jobs")


@market_app.command("resolve")
def resolve(
    job_id: Annotated[str, typer.Argument(help="The disputed job.")],
    *,
    accept: Annotated[str | None, typer.Option("--accept", help="The provider whose result is right.")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Reject every result: nobody is paid.")] = False,
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Settle a disputed job: pay the provider --accept names, or --reject them all."""
    if (accept is None) == (not reject):
        print_error("give exactly one of --accept PROVIDER or --reject")
        raise typer.Exit(2)
    try:
        view = _operator(data_dir, db, key_file).resolve(job_id, accept)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(f"{view.job_id}: {view.state} — {view.reason}; the requester paid {view.charged_base_units}")


@market_app.command("set-payout")
def set_payout(
    provider: Annotated[str, typer.Argument(help="The provider's identity address.")],
    payout_address: Annotated[str, typer.Argument(help="Its new payout address.")],
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Change a provider's payout address on the operator's word (its owner lost the old payout key).

    Providers normally change it themselves, signed by the current payout address; confirm the owner's
    identity another way before you use this.
    """
    try:
        view = _operator(data_dir, db, key_file).set_payout(provider, payout_address)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(f"{view.address} now pays out to {view.payout_address}")


register_operator_commands(market_app)
register_fleet_operator_commands(market_app)
register_studio_account_commands(market_app)
register_vault_commands(market_app)


# --- the requester's commands (top level: `sparecycles submit`, `jobs`, `job`, `cancel`, `result`) ----

API_KEY = SecretInput(
    name="the requester's API key",
    prompt="Requester API key",
    envvar="SPARECYCLES_API_KEY",
    file_option="--api-key-file",
    visible_form="--api-key",
)

Market = Annotated[
    str | None, typer.Option("--market", help="Marketplace URL (default: this machine's private marketplace).")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Requester API key for --market; other users can read it there: prefer SPARECYCLES_API_KEY, "
        "--api-key-file or the prompt.",
        show_default=False,
    ),
]
ApiKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--api-key-file",
        help="A file (0600) holding the requester API key for --market; default: SPARECYCLES_API_KEY, or asked "
        "for in a terminal.",
    ),
]


@contextlib.contextmanager
def _market_refusals() -> Iterator[None]:
    """A marketplace's refusal, or a job file's mistake (RequesterError), ends the command with its message."""
    from sparecycles.requester import RequesterError

    try:
        yield
    except RequesterError as exc:
        raise _refused(exc) from None


def _requester(market: str | None, api_key: str | None, api_key_file: Path | None) -> RequesterClient:
    from sparecycles.requester import MarketEndpoint, RequesterClient, private_endpoint

    if market is None:
        with _market_refusals():
            return RequesterClient(private_endpoint(AppPaths.from_environment()))
    key = read_secret(API_KEY, api_key, api_key_file)
    if key is None:
        print_error(f"--market needs the requester's API key (the operator issues one): {API_KEY.ways()}")
        raise typer.Exit(2)
    with _market_refusals():
        return RequesterClient(MarketEndpoint(market, key))


def _show(view: JobView) -> None:
    out.print(styled(f"{view.job_id}: ", (view.state.value, "bold"), f" — {view.reason}"), soft_wrap=True)
    for lease in view.leases:
        paid = f", paid {lease.amount_base_units}" if lease.amount_base_units is not None else ""
        out.print(f"    lease {lease.lease_id} on {lease.provider_address}: {lease.state.value}{paid}", soft_wrap=True)
    for output in view.outputs:
        out.print(f"    {output.path}  {output.size_bytes} bytes  sha256 {output.sha256}", soft_wrap=True)


def register_requester_commands(app: typer.Typer) -> None:
    @app.command()
    def submit(
        job_file: Annotated[Path, typer.Argument(help="A job file, TOML or JSON (see examples/market-job.toml).")],
        *,
        market: Market = None,
        api_key: ApiKey = None,
        api_key_file: ApiKeyFile = None,
        frames: Annotated[
            str | None,
            typer.Option(
                help="For a frame-range template (examples/jobs/blender-frames.toml): the frames, e.g. 1-240."
            ),
        ] = None,
        chunk: Annotated[int, typer.Option(help="With --frames: frames per job.", min=1)] = 10,
    ) -> None:
        """Submit a job to the marketplace (this machine's private one unless --market is given); a frame-range
        template with --frames submits one job per chunk of frames."""
        with _market_refusals():
            from sparecycles.requester import load_submissions

            submissions = load_submissions(job_file, frames, chunk)
            with _requester(market, api_key, api_key_file) as client:
                for submission in submissions:
                    view = client.submit(submission)
                    out.print(
                        f"Job {view.job_id} submitted; {view.held_base_units} base units held. "
                        f"`sparecycles job {view.job_id}`"
                    )

    @app.command()
    def jobs(
        market: Market = None, api_key: ApiKey = None, api_key_file: ApiKeyFile = None, as_json: AsJson = False
    ) -> None:
        """Your jobs on the marketplace, newest first."""
        with _market_refusals(), _requester(market, api_key, api_key_file) as client:
            views = client.jobs()
        if as_json:
            sys.stdout.write(json.dumps([view.model_dump(mode="json") for view in views], indent=2) + "\n")
            return
        if not views:
            out.print("No jobs yet.")
        for view in views:
            _show(view)

    @app.command()
    def job(
        job_id: Annotated[str, typer.Argument(help="The job.")],
        market: Market = None,
        api_key: ApiKey = None,
        api_key_file: ApiKeyFile = None,
        as_json: AsJson = False,
    ) -> None:
        """One job: its state and why, its leases, its outputs."""
        with _market_refusals(), _requester(market, api_key, api_key_file) as client:
            view = client.job(job_id)
        if as_json:
            sys.stdout.write(view.model_dump_json(indent=2) + "\n")
        else:
            _show(view)

    @app.command()
    def cancel(
        job_id: Annotated[str, typer.Argument(help="The job.")],
        market: Market = None,
        api_key: ApiKey = None,
        api_key_file: ApiKeyFile = None,
    ) -> None:
        """Cancel a job; running providers are paid for the time they ran."""
        with _market_refusals(), _requester(market, api_key, api_key_file) as client:
            _show(client.cancel(job_id))

    @app.command()
    def result(
        job_id: Annotated[str, typer.Argument(help="A completed job.")],
        dest: Annotated[Path, typer.Argument(help="Folder to write its outputs into.")],
        market: Market = None,
        api_key: ApiKey = None,
        api_key_file: ApiKeyFile = None,
    ) -> None:
        """Download a completed job's outputs, each checked against its SHA-256."""
        with _market_refusals(), _requester(market, api_key, api_key_file) as client:
            written = client.download(job_id, dest)
        for path in written:
            out.print(f"wrote {path}")
