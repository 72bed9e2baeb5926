"""Real Docker for the job runtime's tests: the engine, a registry on loopback, and a test image built offline.

The image is a root filesystem made of Debian's static busybox (``busybox-static``), imported with
``docker import``, pushed to Debian's ``docker-registry`` started here on 127.0.0.1, and then named by
the digest the registry gave it, so jobs pull ``127.0.0.1:PORT/sparecycles-test/busybox@sha256:…``
for real. Docker treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.jobs.containers import ContainerRunner

BUSYBOX = Path("/bin/busybox")
REGISTRY = Path("/usr/bin/docker-registry")
TEST_REPOSITORY = "sparecycles-test/busybox"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


@dataclass
class LocalRegistry:
    """A distribution registry serving plain HTTP on loopback, with its access log."""

    host: str  # 127.0.0.1:PORT, as image references name it
    log_file: Path

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers ({exc}); `make test` starts one (dockerd --iptables=false)")
    yield client
    client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a loopback http:// URL we built
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    if not REGISTRY.exists():
        pytest.skip("Debian's docker-registry is not installed: apt-get install docker-registry")
    folder = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
    )
    log_file = folder / "registry.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen([str(REGISTRY), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _answers(f"http://127.0.0.1:{port}/v2/"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start on 127.0.0.1:{port}:\n{log_file.read_text()[-2000:]}")
            time.sleep(0.05)
        yield LocalRegistry(f"127.0.0.1:{port}", log_file)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def busybox_rootfs() -> bytes:
    """A tar of a tiny root filesystem: static busybox, its applets as links, and nobody/nogroup (65534)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            member = tarfile.TarInfo(name)
            member.type, member.mode, member.linkname, member.size = kind, mode, link, len(data)
            tar.addfile(member, io.BytesIO(data) if data else None)

        for folder, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            add(folder, tarfile.DIRTYPE, mode)
        add("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        for applet in applets:
            if applet != "busybox":
                add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD)
        add("etc/group", tarfile.REGTYPE, 0o644, GROUP)
    return buffer.getvalue()


def _is_static(binary: Path) -> bool:
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    text = (result.stdout + result.stderr).lower()
    return "not a dynamic executable" in text or "statically linked" in text


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any, local_registry: LocalRegistry) -> Iterator[str]:
    """``127.0.0.1:PORT/sparecycles-test/busybox@sha256:…``, pushed, with no local copy left (pulls are real)."""
    if not BUSYBOX.exists() or not _is_static(BUSYBOX):
        pytest.skip("a static /bin/busybox is needed to build the test image: apt-get install busybox-static")
    repository = f"{local_registry.host}/{TEST_REPOSITORY}"
    api = docker_client.api
    for stale in api.images(all=True):  # test images an interrupted earlier run left: they share our layers
        names = (stale.get("RepoTags") or []) + (stale.get("RepoDigests") or [])
        if any(f"/{TEST_REPOSITORY}" in name for name in names):
            with contextlib.suppress(Exception):
                api.remove_image(stale["Id"], force=True)
    api.import_image_from_data(busybox_rootfs(), repository=repository, tag="latest")
    digest = None
    for event in api.push(repository, tag="latest", stream=True, decode=True):
        if "error" in event:
            pytest.fail(f"pushing the test image to {local_registry.host} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    assert digest, "the registry did not report the pushed image's digest"
    reference = f"{repository}@{digest}"
    remove_local_image(docker_client, f"{repository}:latest")
    yield reference
    remove_local_image(docker_client, reference)


def remove_local_image(client: Any, reference: str) -> None:
    """Remove the engine's copy of an image (every tag of it), so that the next use pulls it."""
    from docker.errors import ImageNotFound, NotFound

    with contextlib.suppress(ImageNotFound, NotFound):
        image_id = client.api.inspect_image(reference)["Id"]
        client.api.remove_image(image_id, force=True)


@pytest.fixture(scope="session")
def docker_exec_works(docker_client: Any, busybox_image: str) -> None:
    """`docker exec` must run inside the container's own root: the runner measures a job's output volume
    that way. A Docker engine running inside a chroot (as in `../shared/tools/fresh-run`) starts exec'd
    processes in the wrong root; there the container tests are skipped with that reason, not failed."""
    docker_client.images.pull(busybox_image)
    container = docker_client.containers.run(busybox_image, ["sleep", "30"], detach=True, network_disabled=True)
    try:
        seen = container.exec_run(["cat", "/etc/passwd"]).output
    finally:
        container.remove(force=True)
        remove_local_image(docker_client, busybox_image)  # later pulls stay real
    if seen != PASSWD:
        pytest.skip(
            "`docker exec` does not run inside the container's root on this engine (a dockerd inside a chroot?); "
            "the job runner needs it to measure output volumes"
        )


@pytest.fixture
def runner(docker_client: Any, busybox_image: str, docker_exec_works: None) -> Iterator[ContainerRunner]:
    """A runner with an agent id of its own; whatever a test leaves labelled is removed, and fails the test."""
    runner = ContainerRunner(
        docker_client,
        agent_id=f"test-{secrets.token_hex(4)}",
        holder_image=busybox_image,
        poll_interval_s=0.05,
        usage_poll_interval_s=0.3,
    )
    yield runner
    leftovers = runner.find_labelled()
    runner.remove_leftovers()
    assert not leftovers, f"the test left containers or volumes behind: {leftovers}"


@pytest.fixture
def pulled_image(runner: ContainerRunner, busybox_image: str) -> str:
    runner.pull(busybox_image)
    return busybox_image
