"""Read balances from an EVM chain over JSON-RPC, after checking it is the chain the user configured.

web3 is imported on the first call that talks to the chain, never when this module is imported: it
costs seconds and tens of MB, and the agent must start without it. Two kinds of trouble are kept
apart. A problem no retry fixes (the RPC is on another chain, the token address holds no ERC-20
contract) raises a :class:`ChainError` whose message says which setting to check. An RPC that cannot
be asked right now (refused, timed out, failing) makes the balance calls return
:class:`~sparecycles.agent.chain.balance.BalanceUnknown` with the reason, so a GUI shows "balance
unknown (RPC unreachable: ...)" instead of an error dialog or a zero.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sparecycles.agent.chain.balance import Balance, BalanceResult, BalanceUnknown

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3 import Web3

log = logging.getLogger(__name__)

T = TypeVar("T")

NATIVE_DECIMALS = 18

# The parts of ERC-20 read here; symbol() is optional in the standard, and some old tokens return bytes32.
ERC20_READ_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "type": "function",
        "name": "symbol",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
]
ERC20_BYTES32_SYMBOL_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "symbol",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
]
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class ChainError(Exception):
    """A chain problem; ``str()`` is a message the user can act on."""


class ChainMismatchError(ChainError):
    """The RPC serves another chain than the configured one (a wrong URL, or the wrong network)."""

    def __init__(self, url: str, reported: int, expected: int) -> None:
        super().__init__(
            f"the RPC at {url} reports chain id {reported}, but the expected chain id is {expected}: "
            "check chain.rpc_url / chain.chain_id"
        )
        self.reported = reported
        self.expected = expected


class RpcUnavailableError(ChainError):
    """The RPC could not be asked now (refused, timed out, failing); ``reason`` says so in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenContractError(ChainError):
    """The token address holds no contract that answers as an ERC-20 token on this chain."""


@dataclass(frozen=True)
class _Token:
    decimals: int
    symbol: str


def display_url(url: str) -> str:
    """The RPC URL as messages and logs show it: no credentials, and no path or query.

    Hosted RPCs put the API key in the path or the query (``https://host/v3/KEY``), so only the
    scheme, host and port are shown, with "/…" where something was left out.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        shown += f":{port}"
    if parts.path.strip("/") or parts.query or parts.fragment:
        shown += "/…"
    return shown


def _root_cause(exc: BaseException) -> str | None:
    """The operating system's words for why a connection failed ("Connection refused"), if any."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError keeps the cause here
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending.extend(link for link in (current.__cause__, current.__context__) if link is not None)
    return None


def _checksum(address: str, what: str) -> ChecksumAddress:
    if not _ADDRESS.fullmatch(address):
        raise ChainError(f"{what} {address!r} is not an address: 0x followed by 40 hexadecimal digits")
    from eth_utils.address import to_checksum_address

    return to_checksum_address(address)


def _import_web3() -> None:
    """Import web3 on first use (seconds and tens of MB, hence never at module level).

    web3 7 imports websockets.legacy for its synchronous WebSocket provider, and websockets warns
    about that deprecation on import: a dependency's matter, not the user's, so it is not shown.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
        import web3  # noqa: F401


class ChainClient:
    """Balances from one JSON-RPC endpoint, which must serve ``expected_chain_id``.

    ``timeout_s`` bounds each request, so an unreachable RPC answers "unknown" quickly. The chain id
    is checked before the first read and again after the RPC was unreachable; once it matched, it is
    not asked again.
    """

    def __init__(
        self, rpc_url: str, expected_chain_id: int, timeout_s: float = 10.0, *, native_symbol: str = "ETH"
    ) -> None:
        scheme = urlsplit(rpc_url).scheme
        if scheme not in ("http", "https", "ws", "wss"):
            raise ChainError(f"chain.rpc_url {display_url(rpc_url)} is not an http(s):// or ws(s):// URL")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be more than 0, not {timeout_s}")
        self.rpc_url = rpc_url
        self.expected_chain_id = expected_chain_id
        self.timeout_s = timeout_s
        self.native_symbol = native_symbol
        self._lock = threading.Lock()
        self._web3: Web3 | None = None
        self._chain_checked = False
        self._tokens: dict[str, _Token] = {}

    @property
    def url(self) -> str:
        """The endpoint as messages show it (see :func:`display_url`)."""
        return display_url(self.rpc_url)

    def check(self) -> int:
        """Ask the RPC for its chain id and return it.

        Raises :class:`ChainMismatchError` when it is not the expected one and
        :class:`RpcUnavailableError` when the RPC cannot be asked.
        """
        reported = self._rpc(lambda web3: int(web3.eth.chain_id))
        if reported != self.expected_chain_id:
            raise ChainMismatchError(self.url, reported, self.expected_chain_id)
        self._chain_checked = True
        return reported

    def native_balance(self, address: str) -> BalanceResult:
        """The native coin held by ``address`` (18 decimals), or why it is unknown right now."""
        holder = _checksum(address, "the holder address")
        try:
            self._ensure_chain()
            amount = self._rpc(lambda web3: int(web3.eth.get_balance(holder)))
        except RpcUnavailableError as exc:
            return BalanceUnknown(exc.reason)
        return Balance(amount, NATIVE_DECIMALS, self.native_symbol)

    def token_balance(self, token_address: str, holder: str) -> BalanceResult:
        """The ERC-20 balance of ``holder`` at ``token_address``, in the token's own decimals.

        Raises :class:`TokenContractError` when the address holds no ERC-20 contract on this chain.
        """
        token = _checksum(token_address, "the token address")
        owner = _checksum(holder, "the holder address")
        try:
            self._ensure_chain()
            info = self._token(token)
            amount = self._contract_call(token, "balanceOf", lambda web3: self._erc20(web3, token).balanceOf(owner))
        except RpcUnavailableError as exc:
            return BalanceUnknown(exc.reason)
        return Balance(int(amount), info.decimals, info.symbol)

    def read(self, request: Callable[[Web3], T]) -> T:
        """Run ``request`` (a contract read) on the checked chain.

        Raises :class:`ChainMismatchError` and :class:`RpcUnavailableError` as :meth:`check` does; a
        reverted or undecodable call (web3's ``ContractLogicError``, ``BadFunctionCallOutput``) is
        passed on for the caller, which knows what the contract should have answered.
        """
        self._ensure_chain()
        return self._rpc(request)

    def _ensure_chain(self) -> None:
        if not self._chain_checked:
            self.check()

    def _token(self, token: ChecksumAddress) -> _Token:
        cached = self._tokens.get(token)
        if cached is None:
            decimals = int(self._contract_call(token, "decimals", lambda web3: self._erc20(web3, token).decimals()))
            cached = _Token(decimals, self._symbol(token))
            self._tokens[token] = cached
        return cached

    def _symbol(self, token: ChecksumAddress) -> str:
        """The token's symbol; "" if it has none (symbol() is optional), bytes32 symbols decoded."""
        _import_web3()
        from web3.exceptions import BadFunctionCallOutput, ContractLogicError

        def as_string(web3: Web3) -> Any:
            return self._erc20(web3, token).symbol().call()

        def as_bytes32(web3: Web3) -> Any:
            return web3.eth.contract(address=token, abi=ERC20_BYTES32_SYMBOL_ABI).functions.symbol().call()

        for read in (as_string, as_bytes32):
            try:
                value = self._rpc(read)
            except (BadFunctionCallOutput, ContractLogicError, OverflowError, UnicodeDecodeError):
                continue
            if isinstance(value, bytes):
                value = value.rstrip(b"\0").decode("utf-8", errors="replace")
            return str(value).strip()
        return ""

    @staticmethod
    def _erc20(web3: Web3, token: ChecksumAddress) -> Any:
        return web3.eth.contract(address=token, abi=ERC20_READ_ABI).functions

    def _contract_call(self, token: ChecksumAddress, name: str, function: Callable[[Web3], Any]) -> Any:
        """Call an ERC-20 view function; an answer that is not ERC-20's is a :class:`TokenContractError`."""
        _import_web3()
        from web3.exceptions import BadFunctionCallOutput, ContractLogicError

        try:
            return self._rpc(lambda web3: function(web3).call())
        except (BadFunctionCallOutput, ContractLogicError) as exc:
            log.debug("%s() on %s failed: %s", name, token, exc)
            raise TokenContractError(
                f"the token address {token} holds no ERC-20 contract on chain {self.expected_chain_id} "
                f"({name}() did not answer): check chain.payout_token"
            ) from None

    def _connection(self) -> Web3:
        with self._lock:
            if self._web3 is None:
                _import_web3()
                from web3 import HTTPProvider, Web3
                from web3.providers import LegacyWebSocketProvider

                provider: HTTPProvider | LegacyWebSocketProvider
                if urlsplit(self.rpc_url).scheme in ("ws", "wss"):
                    provider = LegacyWebSocketProvider(
                        self.rpc_url,
                        websocket_timeout=max(1, round(self.timeout_s)),
                        websocket_kwargs={"open_timeout": self.timeout_s, "close_timeout": min(1.0, self.timeout_s)},
                    )
                else:
                    # No retries: an unreachable RPC must be reported within the timeout, not after five tries.
                    provider = HTTPProvider(
                        self.rpc_url, request_kwargs={"timeout": self.timeout_s}, exception_retry_configuration=None
                    )
                self._web3 = Web3(provider)
            return self._web3

    def _rpc(self, request: Callable[[Web3], T]) -> T:
        """Run ``request``; trouble reaching or talking to the RPC becomes :class:`RpcUnavailableError`."""
        _import_web3()
        import requests
        from web3.exceptions import (
            BadResponseFormat,
            ContractLogicError,
            ProviderConnectionError,
            TooManyRequests,
            Web3RPCError,
        )

        web3 = self._connection()
        try:
            return request(web3)
        except ContractLogicError:
            raise  # a reverted call: the contract answered, and the caller knows what that means
        except (requests.Timeout, TimeoutError) as exc:
            log.debug("RPC %s timed out (%s)", self.url, type(exc).__name__)
            raise RpcUnavailableError(
                f"RPC unreachable: no answer from {self.url} within {self.timeout_s:g} s"
            ) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise RpcUnavailableError(f"RPC error: {self.url} answered HTTP {status}") from None
        except (requests.ConnectionError, ProviderConnectionError, OSError) as exc:
            cause = _root_cause(exc)  # not the exception's text: it repeats the URL's path, an API key
            log.debug("RPC %s unreachable (%s: %s)", self.url, type(exc).__name__, cause)
            detail = f" ({cause[0].lower()}{cause[1:]})" if cause else ""
            raise RpcUnavailableError(f"RPC unreachable: cannot connect to {self.url}{detail}") from None
        except TooManyRequests:
            raise RpcUnavailableError(f"RPC error: {self.url} is rate-limiting requests") from None
        except Web3RPCError as exc:
            message = exc.rpc_response.get("error", {}).get("message") if exc.rpc_response else None
            raise RpcUnavailableError(f"RPC error: {self.url} answered: {message or exc}") from None
        except (BadResponseFormat, json.JSONDecodeError) as exc:
            log.debug("RPC %s gave an unusable answer (%s)", self.url, type(exc).__name__)
            raise RpcUnavailableError(f"RPC error: {self.url} did not answer as a JSON-RPC endpoint") from None
