"""The job's scratch area: two size-capped tmpfs volumes, never a host folder.

Why this design: ``--storage-opt size`` needs xfs project quotas, which a gamer's PC does not have,
and a polled host folder lets a job fill the user's disk between two polls (and leaves files owned
by a stranger's uid that the agent cannot delete). A Docker ``local`` volume of type tmpfs has its
size enforced by the kernel: a write past the cap fails with ENOSPC inside the container, and its
inode count caps the number of files. No host path is mounted at all. The inputs get a volume of
their own, mounted read-only in the job; the outputs get one sized to the output cap, owned by the
job's user, so "full" means exactly "output cap reached".

A tmpfs volume is unmounted, and its contents lost, when no running container uses it, so a tiny
*holder* container (``sleep``, no network, the job's non-root user) keeps both mounted from before
the inputs are put in until the outputs are copied out. The holder also answers the size poll
(``stat -f`` on the output volume) that lets the runtime stop a job with "output cap reached".

Costs, for the record: the volumes live in RAM, and the output pages are charged to the memory
cgroup of the job that writes them, so the job's memory limit is its memory plus its output cap
(:func:`~sparecycles.agent.jobs.sandbox.memory_limit_bytes`); otherwise a job writing its outputs
would be killed for memory before it reached the cap. A job's RAM is thus bounded by memory +
output cap (+ its /tmp and /dev/shm, as with any Docker tmpfs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import secrets
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sparecycles.agent.jobs.errors import JobRuntimeError, OutputCapExceededError, ScratchInputError
from sparecycles.agent.jobs.sandbox import (
    HOLDER_INPUT_DIR,
    HOLDER_OUTPUT_DIR,
    KIB,
    PAGE_BYTES,
    ROLE_INPUT,
    ROLE_OUTPUT,
    ContainerPlan,
    ScratchVolumes,
    holder_options,
    job_labels,
    output_volume_bytes,
    round_to_pages,
)

logger = logging.getLogger(__name__)

_COPY_CHUNK = 256 * KIB
_USAGE_COMMAND = ["stat", "-f", "-c", "%S %b %a %c %d", HOLDER_OUTPUT_DIR]


@dataclass(frozen=True)
class OutputFile:
    """One file the job left in its output folder, as copied out: path relative to that folder."""

    path: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ScratchUsage:
    """How full the output volume is, from statfs inside the holder."""

    size_bytes: int
    available_bytes: int
    inodes: int
    free_inodes: int

    @property
    def used_bytes(self) -> int:
        return self.size_bytes - self.available_bytes

    @property
    def full(self) -> bool:
        """No page or no inode left: the job's next write or new file fails with ENOSPC."""
        return self.available_bytes <= 0 or self.free_inodes <= 0


@dataclass(frozen=True)
class InputSummary:
    """What an input archive holds: entries (files and folders) and the bytes they take on a tmpfs."""

    entries: int
    tmpfs_bytes: int


def volume_driver_options(size_bytes: int, inodes: int, *, uid: int = 0, gid: int = 0) -> dict[str, str]:
    """``local`` driver options for a tmpfs of ``size_bytes`` and ``inodes`` entries whose root ``uid:gid`` owns."""
    if size_bytes <= 0 or inodes <= 0:
        raise ValueError("a tmpfs volume needs a positive size and inode count (0 would mean unlimited)")
    return {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": f"size={size_bytes},nr_inodes={inodes},mode=0755,uid={uid},gid={gid},nosuid,nodev",
    }


def input_volume_options(summary: InputSummary) -> dict[str, str]:
    """Room for exactly the inputs (and the volume's root folder), root-owned; the job mounts it read-only."""
    return volume_driver_options(round_to_pages(summary.tmpfs_bytes), summary.entries + 1)


def output_volume_options(plan: ContainerPlan) -> dict[str, str]:
    """The output cap as a tmpfs owned by the job's user: ``max_output_bytes`` and ``max_output_files`` entries."""
    return volume_driver_options(output_volume_bytes(plan), plan.max_output_files + 1, uid=plan.uid, gid=plan.gid)


def parse_statfs(text: str) -> ScratchUsage:
    """Parse ``stat -f -c '%S %b %a %c %d'``: block size, blocks, available blocks, inodes, free inodes."""
    try:
        block, blocks, available, inodes, free_inodes = (int(part) for part in text.split())
    except ValueError:
        raise JobRuntimeError(f"could not read the output volume's usage from {text.strip()!r}") from None
    return ScratchUsage(block * blocks, block * available, inodes, free_inodes)


InputFiles = Path | Mapping[str, Path]
"""A job's inputs: a folder copied as it is, or ``{path inside the input folder: file on this machine}``."""


def _walk_folder(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file and folder under ``folder``, sorted, as (relative posix path, path)."""
    for entry in sorted(folder.iterdir()):
        relative = entry.relative_to(folder).as_posix()
        yield relative, entry
        if entry.is_dir() and not entry.is_symlink():
            for sub, path in _walk_folder(entry):
                yield f"{relative}/{sub}", path


def _mapped_entries(files: Mapping[str, Path]) -> Iterator[tuple[str, Path | None]]:
    """The folders a mapping implies (``None``) and its files, sorted; paths must stay inside the input folder."""
    folders: set[str] = set()
    for relative in files:
        parts = relative.split("/")
        if any(part in ("", ".", "..") or "\0" in part for part in parts):
            raise ScratchInputError(f"input path {relative!r} must be relative and stay inside the input folder")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    clash = folders & set(files)
    if clash:
        raise ScratchInputError(f"input {sorted(clash)[0]!r} is both a file and a folder")
    entries: dict[str, Path | None] = dict.fromkeys(folders)
    entries.update(files)
    yield from sorted(entries.items())


def write_input_archive(into: IO[bytes], inputs: InputFiles | None) -> InputSummary:
    """Write the tar of the inputs, root-owned, names relative to the input folder; links are refused."""
    if inputs is None:
        entries: Iterable[tuple[str, Path | None]] = ()
    elif isinstance(inputs, Path):
        if not inputs.is_dir():
            raise ScratchInputError(f"inputs folder {inputs} does not exist or is not a folder")
        entries = _walk_folder(inputs)
    else:
        entries = _mapped_entries(inputs)
    count = 0
    tmpfs_bytes = 0
    with tarfile.open(fileobj=into, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative, path in entries:
            member = tarfile.TarInfo(relative)
            count += 1
            info = path.lstat() if path is not None else None
            if path is None or info is None or stat.S_ISDIR(info.st_mode):
                member.type = tarfile.DIRTYPE
                member.mode = 0o755
                member.mtime = int(info.st_mtime) if info is not None else 0
                tar.addfile(member)
                continue
            if stat.S_ISLNK(info.st_mode):
                raise ScratchInputError(f"input {path} is a symbolic link; inputs must be plain files and folders")
            if not stat.S_ISREG(info.st_mode):
                raise ScratchInputError(f"input {path} is not a plain file or folder")
            member.size = info.st_size
            member.mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
            member.mtime = int(info.st_mtime)
            tmpfs_bytes += -(-info.st_size // PAGE_BYTES) * PAGE_BYTES
            try:
                with path.open("rb") as source:
                    tar.addfile(member, source)
            except OSError as exc:
                raise ScratchInputError(f"input {path} cannot be read: {exc.strerror or exc}") from exc
    return InputSummary(count, tmpfs_bytes)


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's archive stream), for tarfile's stream mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _safe_relative(name: str, top: str) -> str | None:
    """The member's path below the archive's top folder; ``None`` for the top itself; refused if it climbs out."""
    parts = PurePosixPath(name).parts
    if not parts or parts[0] != top or any(part in ("..", "/") for part in parts):
        raise JobRuntimeError(f"the output archive holds an unexpected path {name!r}")
    if len(parts) == 1:
        return None
    return "/".join(parts[1:])


def extract_outputs(stream: IO[bytes], dest: Path, *, top: str, max_bytes: int, max_files: int) -> list[OutputFile]:
    """Copy the regular files of an output tar into the empty folder ``dest``, hashing them as they pass.

    Only folders and regular files are taken: links and devices are skipped (and logged), no path may
    leave ``dest``, files are created with ``O_EXCL | O_NOFOLLOW``, and the total is capped by
    ``max_bytes`` and ``max_files`` (exceeding either raises :class:`OutputCapExceededError`).
    """
    outputs: list[OutputFile] = []
    total = 0
    count = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            relative = _safe_relative(member.name, top)
            if relative is None:
                continue
            count += 1
            if count > max_files:
                raise OutputCapExceededError(f"the job left more than {max_files} files and folders in its outputs")
            target = dest / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isreg():
                logger.warning("Output %s is not a regular file (tar type %r); not collected", relative, member.type)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                continue
            digest = hashlib.sha256()
            size = 0
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as sink:
                while chunk := source.read(_COPY_CHUNK):
                    size += len(chunk)
                    total += len(chunk)
                    if total > max_bytes:
                        raise OutputCapExceededError(
                            f"the job's outputs are larger than their cap of {max_bytes} bytes"
                        )
                    digest.update(chunk)
                    sink.write(chunk)
            outputs.append(OutputFile(relative, size, digest.hexdigest()))
    return sorted(outputs, key=lambda output: output.path)


class Scratch:
    """One job's scratch volumes and the holder container that keeps them mounted.

    Built by :meth:`create` (which puts the inputs in); the caller removes the job's container before
    calling :meth:`remove`. Docker errors are left to the caller (the runner turns them into messages).
    """

    def __init__(self, client: Any, plan: ContainerPlan, volumes: ScratchVolumes) -> None:
        self._client = client
        self._plan = plan
        self.volumes = volumes
        self.holder: Any = None

    @classmethod
    def create(
        cls, client: Any, plan: ContainerPlan, *, agent_id: str, holder_image: str, inputs: InputFiles | None = None
    ) -> Scratch:
        """Create both volumes, start their holder and put the inputs in; on any failure nothing is left."""
        suffix = secrets.token_hex(3)
        volumes = ScratchVolumes(f"sparecycles-in-{plan.job_id}-{suffix}", f"sparecycles-out-{plan.job_id}-{suffix}")
        scratch = cls(client, plan, volumes)
        with tempfile.TemporaryFile() as archive:
            summary = write_input_archive(archive, inputs)
            try:
                client.volumes.create(
                    name=volumes.input_volume,
                    driver="local",
                    driver_opts=input_volume_options(summary),
                    labels=job_labels(plan.job_id, agent_id, ROLE_INPUT),
                )
                client.volumes.create(
                    name=volumes.output_volume,
                    driver="local",
                    driver_opts=output_volume_options(plan),
                    labels=job_labels(plan.job_id, agent_id, ROLE_OUTPUT),
                )
                options = holder_options(plan, volumes, agent_id=agent_id, holder_image=holder_image)
                scratch.holder = client.containers.create(name=f"sparecycles-holder-{plan.job_id}-{suffix}", **options)
                scratch.holder.start()
                if summary.entries:
                    archive.seek(0)
                    scratch.holder.put_archive(HOLDER_INPUT_DIR, archive)
            except BaseException:
                scratch.remove()
                raise
        logger.debug(
            "Scratch for job %s: %d input entries, output cap %d bytes",
            plan.job_id,
            summary.entries,
            plan.max_output_bytes,
        )
        return scratch

    def usage(self) -> ScratchUsage:
        """How full the output volume is (an exec of ``stat -f`` in the holder, a few tens of milliseconds)."""
        result = self.holder.exec_run(_USAGE_COMMAND, user=self._plan.user)
        text = result.output.decode(errors="replace") if isinstance(result.output, bytes) else str(result.output)
        if result.exit_code != 0:
            raise JobRuntimeError(f"could not measure the output volume: {text.strip()}")
        return parse_statfs(text)

    def collect_outputs(self, dest: Path, *, max_bytes: int, max_files: int) -> list[OutputFile]:
        """Copy the output volume out to ``dest`` (created; must not hold anything yet), capped and hashed."""
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise JobRuntimeError(f"the outputs folder {dest} is not empty")
        chunks, _stat = self.holder.get_archive(HOLDER_OUTPUT_DIR, chunk_size=_COPY_CHUNK)
        top = PurePosixPath(HOLDER_OUTPUT_DIR).name
        try:
            with io.BufferedReader(_ChunkReader(chunks), buffer_size=_COPY_CHUNK) as stream:
                return extract_outputs(stream, dest, top=top, max_bytes=max_bytes, max_files=max_files)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                chunks.close()

    def remove(self) -> None:
        """Remove the holder, then the volumes (whose contents the kernel frees as they are unmounted)."""
        from docker.errors import NotFound

        if self.holder is not None:
            with contextlib.suppress(NotFound):
                self.holder.remove(force=True)
        for name in (self.volumes.input_volume, self.volumes.output_volume):
            with contextlib.suppress(NotFound):
                self._client.api.remove_volume(name, force=True)
