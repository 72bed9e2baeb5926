"""The user's settings file: TOML, validated strictly, written back without losing comments.

An invalid file stops the agent with a message naming the key, the value and what is allowed;
SpareCycles never rewrites an invalid file and never fills the user's file with defaults. Settings
changed through the control API are merged into the file with tomlkit (comments, order and layout
kept) and written atomically.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
import tomlkit
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from sparecycles.durations import parse_duration
from sparecycles.fileio import atomic_write_text
from sparecycles.schedule import checked_rules
from sparecycles.sizes import parse_size

LogLevel = Literal["debug", "info", "warning", "error"]

# The protocol's cap on an amount of base units (protocol.market.MAX_BASE_UNITS, which a test keeps equal):
# a price floor above it loads here but fails every registration with the marketplace. Importing the protocol's
# models here would slow every start-up for one number.
MAX_BASE_UNITS = 2**256 - 1
# Whole payout tokens: far above any real price or threshold, yet finite, so that the gas guard's sums stay numbers.
MAX_TOKENS = 1e15


class _Hint:
    """Words for the "allowed:" hint of an invalid value, beyond its type and bounds (pydantic ignores it)."""

    def __init__(self, words: str) -> None:
        self.words = words


FRACTION = _Hint("as a fraction, 0.2 meaning 20 %")


class _Section(BaseModel):
    """A config table: unknown keys are refused by name and values are not coerced.

    TOML's ``inf`` and ``nan`` are refused too: no setting means "infinitely", and they break the sums made with it.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _between(parse: Callable[[str], int], low: str, high: str) -> Callable[[str], str]:
    """A validator for a text value (a duration, a size) that ``parse`` reads, within [low, high]."""
    low_value, high_value = parse(low), parse(high)

    def check(value: str) -> str:
        if not low_value <= parse(value) <= high_value:  # parse's ValueError already shows the accepted form
            raise ValueError(f"must be from {low} to {high}")
        return value

    return check


def _duration_between(low: str, high: str) -> Callable[[str], str]:
    return _between(parse_duration, low, high)


def _size_between(low: str, high: str) -> Callable[[str], str]:
    return _between(parse_size, low, high)


def _time_zone(value: str) -> str:
    if value != "local":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a time zone; use a name like 'Europe/Berlin', or 'local'") from None
    return value


IdleThreshold = Annotated[str, AfterValidator(_duration_between("5s", "24h"))]
ShortDuration = Annotated[str, AfterValidator(_duration_between("5s", "1h"))]
WorkModeName = Literal["idle", "schedule", "idle_or_schedule", "idle_in_schedule"]


class GeneralSettings(_Section):
    log_level: LogLevel = Field("info", description="How much the agent writes to its log file.")
    timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
        "local", description="Time zone for schedules and times shown: an IANA name, or 'local'."
    )
    start_at_login: bool = Field(
        False, description="Start SpareCycles when you log in (an XDG autostart entry on Linux desktops)."
    )


class WorkSettings(_Section):
    mode: WorkModeName = Field(
        "idle",
        description="When the GPU may work: 'idle' (you are away), 'schedule' (inside scheduled hours), "
        "'idle_or_schedule' (either), 'idle_in_schedule' (both).",
    )
    idle_threshold: IdleThreshold = Field("10m", description="Time without keyboard or mouse input before work starts.")
    resume_after: ShortDuration = Field(
        "1m", description="After a brief interruption, quiet time before a paused job resumes."
    )
    stop_after: ShortDuration = Field(
        "2m", description="How long you may use the computer before a paused job is stopped to free the GPU."
    )
    pause_on_battery: bool = Field(True, description="Never work while the computer runs on battery.")


class ScheduleSettings(_Section):
    windows: Annotated[list[str], AfterValidator(checked_rules)] = Field(
        [], description='Weekly windows in your time zone, e.g. ["Mon-Fri 19:00-08:00", "Sat-Sun"].'
    )


class GpuSettings(_Section):
    max_temperature_c: int = Field(
        83, ge=50, le=95, description="Pause work when a GPU gets hotter than this (degrees Celsius)."
    )
    resume_temperature_c: int | None = Field(
        None,
        ge=40,
        le=94,
        description="Resume a GPU paused for heat once it is below this (degrees Celsius; unset: 8 below the cap).",
    )
    power_limit_percent: int | None = Field(
        None, ge=30, le=100, description="Cap board power while working (percent of default); needs permission."
    )
    disabled: list[str] = Field([], description='GPUs never to share, by UUID or index, e.g. ["1"].')

    @property
    def effective_resume_temperature_c(self) -> int:
        if self.resume_temperature_c is None:
            return self.max_temperature_c - 8
        return self.resume_temperature_c

    @model_validator(mode="after")
    def _resume_below_cap(self) -> GpuSettings:
        if self.resume_temperature_c is not None and self.resume_temperature_c >= self.max_temperature_c:
            raise ValueError(
                f"resume_temperature_c ({self.resume_temperature_c}) must be below "
                f"max_temperature_c ({self.max_temperature_c})"
            )
        return self


class GamesSettings(_Section):
    pause_processes: list[str] | None = Field(
        None, description="Programs that always stop work while running (unset: the built-in list of games)."
    )
    ignore_gpu_processes: list[str] | None = Field(
        None, description="Programs allowed on the GPU without stopping work (unset: desktop compositors)."
    )


class JobsSettings(_Section):
    allowed_registries: list[str] = Field(
        ["docker.io", "ghcr.io", "nvcr.io", "quay.io"],
        description="Registries (or registry/organisation) job images may come from; others are refused.",
    )
    egress: Literal["never", "per_job"] = Field(
        "never", description="Network for jobs: 'never', or 'per_job' (only the host:port pairs a job declares)."
    )
    private_networks: bool = Field(
        False,
        description="Let jobs reach this computer's own networks and loopback through egress and input URLs "
        "(a studio's own servers); keep off on a home PC.",
    )
    max_cpus: float | None = Field(None, gt=0, le=1024, description="CPU cores one job may use (unset: all but one).")
    max_memory: Annotated[str, AfterValidator(_size_between("256MiB", "4TiB"))] | None = Field(
        None, description="Memory one job may use, e.g. '16GiB' (unset: half of this computer's memory)."
    )
    max_runtime: Annotated[str, AfterValidator(_duration_between("1m", "7d"))] = Field(
        "24h", description="Longest run time a job may ask for."
    )
    max_output: Annotated[str, AfterValidator(_size_between("1MiB", "1TiB"))] = Field(
        "10GiB", description="Largest output a job may leave."
    )
    image_cache: Annotated[str, AfterValidator(_size_between("1GiB", "10TiB"))] = Field(
        "50GiB", description="Disk space for job images; the least recently used are removed beyond it."
    )
    download_rate_limit: Annotated[str, AfterValidator(_size_between("64KiB", "100GiB"))] | None = Field(
        None, description="Cap on input downloads, per second, e.g. '10MiB' (unset: no cap)."
    )
    allow_metered_downloads: bool = Field(
        False, description="Download images and inputs on a metered connection (a phone hotspot) too."
    )


def _payout_address(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("must be an address: 0x followed by 40 hexadecimal digits")
    return value


class MarketplaceSettings(_Section):
    url: str | None = Field(
        None,
        description="Marketplace to take jobs from; leave unset to run the private local marketplace.",
    )
    payout_address: Annotated[str | None, AfterValidator(_payout_address)] = Field(
        None,
        description="Where earnings go (a watch-only address is fine); the agent takes no work without one.",
    )
    price_floor_per_gpu_hour: int = Field(
        0, ge=0, le=MAX_BASE_UNITS, description="Lowest price to bid per GPU-hour, in the payout token's base units."
    )
    price_floor_per_core_hour: int = Field(
        0, ge=0, le=MAX_BASE_UNITS, description="Lowest price to bid per CPU-core-hour, in base units (CPU-only jobs)."
    )
    region: str = Field("", max_length=32, description='A region label marketplaces may show, e.g. "eu-west".')
    identity_key_file: str | None = Field(
        None,
        description="Headless machines: the machine identity key file (0600); unset keeps it in the OS keyring.",
    )
    operator_address: Annotated[str | None, AfterValidator(_payout_address)] = Field(
        None,
        description="The operator address vouchers must be signed by; unset: the one the marketplace "
        "announced the first time (then pinned).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class ChainSettings(_Section):
    rpc_url: str | None = Field(
        None,
        description="JSON-RPC endpoint balances are read from (http(s):// or ws(s)://); unset: no balances.",
    )
    chain_id: int | None = Field(
        None, ge=1, description="The chain id the RPC must report, e.g. 8453; a different one is refused."
    )
    payout_token: Annotated[str | None, AfterValidator(_payout_address)] = Field(
        None, description="Address of the payout token (an ERC-20 contract), whose balance is shown."
    )
    vault: Annotated[str | None, AfterValidator(_payout_address)] = Field(
        None,
        description="Address of the payout vault vouchers are claimed from; its signer() is the operator "
        "key vouchers must be signed by. Unset: no claims.",
    )
    max_gas_share: Annotated[float, FRACTION] = Field(
        0.10,
        gt=0,
        le=1,
        description="A claim is refused when its gas would cost more than this share of the amount claimed "
        "(0.10 = 10 %), valued at native_price.",
    )
    auto_claim_above: float | None = Field(
        None,
        gt=0,
        le=MAX_TOKENS,
        description="Claim by itself once this many whole payout tokens are claimable (looked at every 10 "
        "minutes; the gas guard still applies, and a watch-only wallet asks the marketplace to relay). Unset: "
        "only when you click Claim.",
    )
    native_price: float | None = Field(
        None,
        gt=0,
        le=MAX_TOKENS,
        description="What one native coin (e.g. 1 ETH) is worth in whole payout tokens (e.g. 3000 for USDC): "
        "the gas guard values gas with it. Unset: claims are refused until it is set.",
    )

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(https?|wss?)://[^\s/?#]+\S*", value):
            raise ValueError("must be an http://, https://, ws:// or wss:// URL, e.g. 'http://127.0.0.1:8545'")
        return value

    @model_validator(mode="after")
    def _chain_id_with_rpc_url(self) -> ChainSettings:
        if self.rpc_url is not None and self.chain_id is None:
            raise ValueError(
                "chain.chain_id must be set with chain.rpc_url: the chain id that RPC must report "
                "(31337 for a local anvil), so that a wrong network is refused"
            )
        if self.vault is not None and self.rpc_url is None:
            raise ValueError("chain.vault needs chain.rpc_url and chain.chain_id: the chain the vault is on")
        return self


class LedgerSettings(_Section):
    margin: Annotated[float, FRACTION] = Field(
        0.2, ge=0, le=100, description="What to ask above the electricity a job costs, as a fraction (0.2 = 20 %)."
    )
    expected_job_hours: float = Field(
        1.0, gt=0, le=168, description="How long a job is assumed to run when pricing it against your tariff."
    )
    load_power_w: float | None = Field(
        None,
        gt=0,
        le=5000,
        description="A GPU's draw under load, for the price floor; unset: its benchmarked power, else its power limit.",
    )
    idle_baseline_w: float | None = Field(
        None,
        ge=0,
        le=5000,
        description="A GPU's draw with nothing running; set it to count only the extra power of the work as its cost.",
    )
    cpu_watts_per_core: float = Field(
        10.0, gt=0, le=500, description="A busy CPU core's draw, used where the CPU's power cannot be measured."
    )


def _benchmark_image(value: str | None) -> str | None:
    if value is not None:
        from sparecycles.protocol.jobs import parse_image

        parse_image(value)  # ValueError says how to name it by digest
    return value


class BenchmarkSettings(_Section):
    automatic: bool = Field(
        True,
        description="Benchmark each GPU by itself when it has no result for its present driver (quick mode, "
        "only while the GPU may work and runs no job).",
    )
    image: Annotated[str | None, AfterValidator(_benchmark_image)] = Field(
        None,
        description="Run the benchmark as a job in this image (by digest: registry/name@sha256:...), in the job "
        "sandbox; unset: in the agent's own Python through PyTorch or CuPy (the benchmark extra).",
    )


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost); a host name: no, it may
    resolve to anything."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class MetricsSettings(_Section):
    enabled: bool = Field(
        False,
        description="Serve Prometheus metrics (each GPU's state, readings and energy; today's earnings) for a "
        "studio's monitoring. Applied at the agent's next start.",
    )
    address: str = Field(
        "127.0.0.1", description="Address to serve them on; any address but loopback needs token_file."
    )
    port: int = Field(9464, ge=1, le=65535, description="Port of the metrics endpoint (GET /metrics).")
    token_file: str | None = Field(
        None,
        description="A file (readable only by this user) holding the bearer token a scraper must send "
        "(Prometheus: authorization.credentials_file). Unset: no token, allowed on loopback only.",
    )

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> MetricsSettings:
        if self.enabled and self.token_file is None and not is_loopback(self.address):
            raise ValueError(
                f"metrics on {self.address} are reachable from other machines: set token_file to a file holding "
                'a token (for example `openssl rand -hex 32 > metrics.token`), or keep address = "127.0.0.1"'
            )
        return self


class Settings(_Section):
    """Everything a user may set in ``config.toml``; every field has a safe default."""

    general: GeneralSettings = GeneralSettings()
    work: WorkSettings = WorkSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    gpu: GpuSettings = GpuSettings()
    games: GamesSettings = GamesSettings()
    jobs: JobsSettings = JobsSettings()
    marketplace: MarketplaceSettings = MarketplaceSettings()
    chain: ChainSettings = ChainSettings()
    ledger: LedgerSettings = LedgerSettings()
    benchmark: BenchmarkSettings = BenchmarkSettings()
    metrics: MetricsSettings = MetricsSettings()


class ConfigError(Exception):
    """The settings file (or a requested change) is not valid; ``str()`` tells the user what to fix."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


def _figure(value: object) -> str:
    """A bound as a user would write it: 100 rather than 100.0, and the protocol's cap by its formula."""
    if value == MAX_BASE_UNITS:
        return "2**256 - 1"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number_range(field: FieldInfo) -> str:
    """The bounds of a number field in words that match its type: "a whole number from 50 to 95" for an int,
    "a number above 0, up to 1" for a float (which takes fractions, so is never called "a whole number")."""
    kinds = set(get_args(field.annotation) or (field.annotation,)) - {type(None)}
    if not kinds or not kinds <= {int, float}:
        return ""
    kind = "a whole number" if kinds == {int} else "a number"
    ge = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    gt = next((m.gt for m in field.metadata if isinstance(m, annotated_types.Gt)), None)
    le = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    lt = next((m.lt for m in field.metadata if isinstance(m, annotated_types.Lt)), None)
    if ge is not None and le is not None:
        return f"{kind} from {_figure(ge)} to {_figure(le)}"
    lower = f"{_figure(ge)} or more" if ge is not None else f"above {_figure(gt)}" if gt is not None else ""
    upper = f"up to {_figure(le)}" if le is not None else f"below {_figure(lt)}" if lt is not None else ""
    bounds = ", ".join(part for part in (lower, upper) if part)
    separator = ", " if ge is not None else " "  # "a whole number, 1 or more"; "a number above 0, up to 1"
    return f"{kind}{separator}{bounds}" if bounds else ""


def _field_constraints(loc: tuple[int | str, ...]) -> str:
    """Describe what values the field at ``loc`` allows, from its declared type and bounds."""
    model: type[BaseModel] = Settings
    field = None
    for part in loc:
        if not isinstance(part, str) or part not in model.model_fields:
            return ""
        field = model.model_fields[part]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    if field is None:
        return ""
    allowed = _number_range(field)
    if not allowed and get_origin(field.annotation) is Literal:
        allowed = "one of " + ", ".join(repr(v) for v in get_args(field.annotation))
    hints = [m.words for m in field.metadata if isinstance(m, _Hint)]
    return ", ".join([allowed, *hints]) if allowed else ""


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        if not isinstance(part, str) or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _shown(value: object, limit: int = 100) -> str:
    """``value`` as a message quotes it: a value hundreds of characters long (pasted by mistake) is cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        keys = _allowed_keys(loc)
        where = f"[{'.'.join(str(p) for p in loc[:-1])}]" if len(loc) > 1 else "the top level"
        hint = f"; allowed keys in {where}: {', '.join(keys)}" if keys else ""
        return f"unknown key '{key}'{hint}"
    allowed = _field_constraints(loc)
    reason = str(error["msg"]).removeprefix("Value error, ")
    text = f"{key} = {_shown(error.get('input'))}: {reason}"
    return f"{text} (allowed: {allowed})" if allowed else text


def validate_settings(data: Mapping[str, Any], *, source: str) -> Settings:
    """Turn parsed TOML into :class:`Settings` or raise :class:`ConfigError` naming each bad key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = tuple(_describe(error) for error in exc.errors())
        message = f"Invalid settings in {source}:\n" + "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(message, problems) from None


def _read_toml(path: Path) -> str:
    """The file's text; "utf-8-sig" reads a file that Windows Notepad saved with a byte-order mark, which TOML
    itself would refuse as an "invalid statement" at line 1."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"The settings file {path} is not UTF-8 text (byte {exc.start} cannot be read): save it as UTF-8 and "
            "start SpareCycles again."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the settings file {path}: {exc}") from None


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The settings file {path} is not valid TOML: {exc}.") from None


def load_settings(path: Path) -> Settings:
    """Read and validate the settings file; a missing file means all defaults (and stays missing)."""
    return validate_settings(_parse_toml(_read_toml(path), path), source=str(path))


def _toml_value(key: str, value: Any) -> Any:
    """``value`` when a TOML file can hold it, else :class:`ConfigError` naming ``key``: JSON can carry what TOML
    cannot (a null inside a list or table, a lone UTF-16 surrogate), which would otherwise fail the write."""
    try:
        tomlkit.item(value).as_string().encode("utf-8")
    except UnicodeEncodeError:
        reason = "holds a character that is not text (a lone UTF-16 surrogate); send plain text"
    except (TypeError, ValueError):  # tomlkit's ConvertError is both
        reason = (
            "a settings file cannot hold null (or any value TOML lacks) inside a list or table; leave it out, or "
            "send null alone to return the key to its default"
        )
    else:
        return value
    problem = f"{key} = {_shown(value)}: {reason}"
    raise ConfigError(f"Invalid settings in the requested change:\n  - {problem}", (problem,))


def configured_zone(path: Path) -> ZoneInfo | None:
    """The zone a time of day means to the agent (``general.timezone``), whose clock its status shows; None for
    the system's own ("local", or settings that cannot be read, which the agent refuses to start on). The CLI's
    ``snooze 18:30`` and the app's "until tomorrow" both read it."""
    try:
        name = load_settings(path).general.timezone
    except ConfigError:
        return None
    return None if name == "local" else ZoneInfo(name)


def update_settings_file(path: Path, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Merge ``changes`` ({section: {key: value}}) into the file, keeping the user's layout.

    A value of ``None`` removes the key, returning it to its default. The merged document is
    validated before anything is written: an invalid current file or an invalid change raises
    :class:`ConfigError` and leaves the file byte-for-byte as it was.
    """
    # Read without a byte-order mark (see _read_toml): a file that is rewritten loses it, which TOML readers
    # (ours included) are better off without, and nothing else in the file changes.
    text = _read_toml(path)
    validate_settings(_parse_toml(text, path), source=str(path))
    document = tomlkit.parse(text)
    for section, values in changes.items():
        table = document.get(section)
        if table is None:
            if all(value is None for value in values.values()):
                continue
            table = tomlkit.table()
            document.add(section, table)
        elif not isinstance(table, MutableMapping):
            raise ConfigError(f"{section} in {path} is not a table; fix the file by hand.")
        for key, value in values.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = _toml_value(f"{section}.{key}", value)
    settings = validate_settings(document.unwrap(), source="the requested change")
    new_text = tomlkit.dumps(document)
    if new_text != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, new_text.replace("\n", "\r\n") if _uses_crlf(path) else new_text)
    return settings


def _uses_crlf(path: Path) -> bool:
    """Whether the file's lines end in CR LF (saved on Windows): its text is read with plain newlines, and a
    rewrite writes them back as the file had them, not as a mix or all changed."""
    try:
        with path.open("rb") as handle:
            first_line = handle.readline()
    except OSError:
        return False
    return first_line.endswith(b"\r\n")
