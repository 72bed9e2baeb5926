"""A job's way out, when its owner allows egress: the job's internal network and the proxy on its gateway.

The job joins its own internal Docker network (no route out where the engine manages iptables) and
finds its proxy in ``HTTP_PROXY``/``HTTPS_PROXY``; the proxy (egress_proxy.py), listening on the
network's gateway address on the host, admits only the destinations the job declared, and only from
the job's own subnet. It runs in its own thread, so a job's traffic never slows the agent's loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sparecycles.agent.jobs.containers import EgressNetwork
from sparecycles.agent.jobs.egress_proxy import EgressProxy, EgressProxyError, EgressProxyThread
from sparecycles.agent.jobs.errors import JobRuntimeError
from sparecycles.protocol.jobs import parse_egress

log = logging.getLogger(__name__)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
"""Set in an egress job's environment (both spellings: curl reads only the lower-case http_proxy)."""


class JobEgress:
    """One job's running proxy; :meth:`close` stops it and logs what went through."""

    def __init__(self, job_id: str, network: EgressNetwork, thread: EgressProxyThread) -> None:
        self.job_id = job_id
        self.network = network
        self._thread = thread
        self.host, self.port = thread.proxy.address

    @property
    def proxy(self) -> EgressProxy:
        return self._thread.proxy

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that point the job's tools at its proxy (they override the job's own)."""
        return dict.fromkeys(PROXY_VARIABLES, self.url)

    def close(self) -> None:
        proxy = self.proxy
        self._thread.stop()
        log.info(
            "Egress of job %s: %d bytes out, %d bytes in, %d requests refused",
            self.job_id,
            proxy.bytes_up,
            proxy.bytes_down,
            proxy.refused_total,
        )


EgressOpener = Callable[[str, Sequence[str], EgressNetwork, int], JobEgress]
"""Start a job's proxy: job id, declared ``host:port`` entries, its network, the port (0: any free one)."""


def egress_opener(*, internal_allowed: Callable[[], bool] = lambda: False) -> EgressOpener:
    """Opens real proxies; ``internal_allowed`` (the owner's "private networks" setting, asked for each
    job) lets declared destinations on this machine's own networks through, which are refused otherwise."""

    def open_egress(job_id: str, declared: Sequence[str], network: EgressNetwork, port: int) -> JobEgress:
        proxy = EgressProxy(
            [parse_egress(entry) for entry in declared],
            bind_host=network.gateway,
            port=port,
            clients=[network.subnet],
            internal_allowed=internal_allowed(),
            job=f"job {job_id}",
        )
        thread = EgressProxyThread(proxy, name=f"job-{job_id}-egress")
        try:
            thread.start()
        except EgressProxyError as exc:
            raise JobRuntimeError(f"the egress proxy of job {job_id} could not start: {exc}") from exc
        return JobEgress(job_id, network, thread)

    return open_egress
