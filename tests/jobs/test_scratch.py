"""The scratch area: input archives, capped and hashed output extraction, and the tmpfs volumes for real."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.jobs.containers import ContainerRunner
from sparecycles.agent.jobs.errors import JobRuntimeError, OutputCapExceededError, ScratchInputError
from sparecycles.agent.jobs.sandbox import HOLDER_INPUT_DIR, KIB, PAGE_BYTES, ContainerPlan, round_to_pages
from sparecycles.agent.jobs.scratch import (
    InputSummary,
    Scratch,
    extract_outputs,
    input_volume_options,
    output_volume_options,
    parse_statfs,
    volume_driver_options,
    write_input_archive,
)

IMAGE = "127.0.0.1:5000/studio/render@sha256:" + "ab" * 32


def test_input_archive_holds_files_and_folders_root_owned(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "data.bin").write_bytes(b"x" * 5000)
    (tmp_path / "sub" / "run.sh").write_text("echo hi\n")
    (tmp_path / "sub" / "run.sh").chmod(0o755)
    buffer = io.BytesIO()
    summary = write_input_archive(buffer, tmp_path)
    assert summary == InputSummary(entries=3, tmpfs_bytes=2 * PAGE_BYTES + PAGE_BYTES)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert sorted(members) == ["data.bin", "sub", "sub/run.sh"]
        assert all(member.uid == 0 and member.gid == 0 for member in members.values())
        assert members["sub/run.sh"].mode == 0o755
        assert members["data.bin"].mode == 0o644
        extracted = tar.extractfile("data.bin")
        assert extracted is not None
        assert extracted.read() == b"x" * 5000


def test_input_links_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").symlink_to("/etc/shadow")
    with pytest.raises(ScratchInputError, match="symbolic link"):
        write_input_archive(io.BytesIO(), tmp_path)


def test_inputs_by_mapping_get_their_folders(tmp_path: Path) -> None:
    cached = tmp_path / ("ab" * 32)  # a file of the input cache, named by its SHA-256
    cached.write_bytes(b"weights")
    buffer = io.BytesIO()
    summary = write_input_archive(buffer, {"model/v1/weights.bin": cached, "config.json": cached})
    assert summary.entries == 4
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        assert [(m.name, m.isdir()) for m in tar.getmembers()] == [
            ("config.json", False), ("model", True), ("model/v1", True), ("model/v1/weights.bin", False)
        ]  # fmt: skip


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/./b", ""])
def test_mapped_input_paths_stay_inside_the_input_folder(tmp_path: Path, name: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ScratchInputError, match="stay inside"):
        write_input_archive(io.BytesIO(), {name: tmp_path / "f"})


def test_mapped_input_cannot_be_both_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ScratchInputError, match="both a file and a folder"):
        write_input_archive(io.BytesIO(), {"a": tmp_path / "f", "a/b": tmp_path / "f"})


def test_mapped_input_links_are_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(ScratchInputError, match="symbolic link"):
        write_input_archive(io.BytesIO(), {"x": tmp_path / "link"})


def test_no_inputs_is_an_empty_archive() -> None:
    assert write_input_archive(io.BytesIO(), None) == InputSummary(0, 0)


def test_volume_sizes_are_never_zero_because_zero_means_unlimited() -> None:
    assert round_to_pages(0) == PAGE_BYTES
    assert round_to_pages(PAGE_BYTES + 1) == 2 * PAGE_BYTES
    assert input_volume_options(InputSummary(0, 0))["o"].startswith(f"size={PAGE_BYTES},nr_inodes=1,")
    with pytest.raises(ValueError, match="unlimited"):
        volume_driver_options(0, 10)


def test_output_volume_is_the_cap_owned_by_the_jobs_user() -> None:
    plan = ContainerPlan(job_id="j", image=IMAGE, max_output_bytes=10 * KIB, max_output_files=5, user="1000:1001")
    got = output_volume_options(plan)
    assert got["type"] == "tmpfs"
    assert got["o"] == f"size={3 * PAGE_BYTES},nr_inodes=6,mode=0755,uid=1000,gid=1001,nosuid,nodev"


def test_statfs_reading() -> None:
    usage = parse_statfs("4096 256 0 100 98\n")
    assert (usage.size_bytes, usage.available_bytes, usage.used_bytes) == (1048576, 0, 1048576)
    assert usage.full
    assert not parse_statfs("4096 256 1 100 98").full
    assert parse_statfs("4096 256 10 100 0").full  # out of inodes
    with pytest.raises(JobRuntimeError):
        parse_statfs("stat: can't read file system information")


def output_tar(entries: list[tuple[str, bytes | None, bytes]]) -> io.BytesIO:
    """A tar like the engine's archive of /scratch/output: (name, type, data)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, data in entries:
            member = tarfile.TarInfo(name)
            if kind is None:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                member.type = kind
                member.linkname = data.decode()
                tar.addfile(member)
    buffer.seek(0)
    return buffer


def test_outputs_are_copied_and_hashed(tmp_path: Path) -> None:
    stream = output_tar(
        [("output", tarfile.DIRTYPE, b""), ("output/a.txt", None, b"alpha"), ("output/d", tarfile.DIRTYPE, b""),
         ("output/d/b.bin", None, b"\0" * 70000)]
    )  # fmt: skip
    outputs = extract_outputs(stream, tmp_path, top="output", max_bytes=100_000, max_files=10)
    assert [(o.path, o.size_bytes, o.sha256) for o in outputs] == [
        ("a.txt", 5, hashlib.sha256(b"alpha").hexdigest()),
        ("d/b.bin", 70000, hashlib.sha256(b"\0" * 70000).hexdigest()),
    ]
    assert (tmp_path / "d" / "b.bin").read_bytes() == b"\0" * 70000


def test_output_links_are_skipped_not_followed(tmp_path: Path) -> None:
    stream = output_tar(
        [("output", tarfile.DIRTYPE, b""), ("output/passwd", tarfile.SYMTYPE, b"/etc/passwd"),
         ("output/hard", tarfile.LNKTYPE, b"output/passwd"), ("output/ok", None, b"ok")]
    )  # fmt: skip
    outputs = extract_outputs(stream, tmp_path, top="output", max_bytes=100, max_files=10)
    assert [o.path for o in outputs] == ["ok"]
    assert sorted(os.listdir(tmp_path)) == ["ok"]


@pytest.mark.parametrize("name", ["output/../escape", "/etc/passwd", "elsewhere/x"])
def test_output_paths_that_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    stream = output_tar([("output", tarfile.DIRTYPE, b""), (name, None, b"x")])
    with pytest.raises(JobRuntimeError, match="unexpected path"):
        extract_outputs(stream, tmp_path / "dest", top="output", max_bytes=100, max_files=10)
    assert not (tmp_path / "escape").exists()


def test_outputs_over_the_byte_or_file_cap_are_refused(tmp_path: Path) -> None:
    big = output_tar([("output", tarfile.DIRTYPE, b""), ("output/a", None, b"1" * 600), ("output/b", None, b"2" * 600)])
    with pytest.raises(OutputCapExceededError, match="1000 bytes"):
        extract_outputs(big, tmp_path / "one", top="output", max_bytes=1000, max_files=10)
    many = output_tar([("output", tarfile.DIRTYPE, b"")] + [(f"output/{n}", None, b"") for n in range(4)])
    with pytest.raises(OutputCapExceededError, match="more than 3"):
        extract_outputs(many, tmp_path / "two", top="output", max_bytes=1000, max_files=3)


@pytest.mark.docker
def test_scratch_volumes_hold_the_inputs_and_measure_the_outputs(
    docker_client: Any, runner: ContainerRunner, pulled_image: str, tmp_path: Path
) -> None:
    (tmp_path / "cached").write_bytes(os.urandom(10_000))
    plan = ContainerPlan(job_id="scratch", image=pulled_image, max_output_bytes=64 * KIB, max_output_files=8)
    inputs = {"weights.bin": tmp_path / "cached"}
    scratch = Scratch.create(docker_client, plan, agent_id=runner.agent_id, holder_image=pulled_image, inputs=inputs)
    try:
        owner = scratch.holder.exec_run(["stat", "-c", "%u:%g %s", f"{HOLDER_INPUT_DIR}/weights.bin"]).output
        assert owner.decode().split() == ["0:0", "10000"]
        usage = scratch.usage()
        assert usage.size_bytes == 64 * KIB
        assert usage.used_bytes == 0
        assert usage.inodes == 9
        assert not usage.full
        volumes = {v["Name"]: v for v in docker_client.api.volumes()["Volumes"] or []}
        assert volumes[scratch.volumes.output_volume]["Options"]["type"] == "tmpfs"
    finally:
        scratch.remove()
    names = {v["Name"] for v in docker_client.api.volumes()["Volumes"] or []}
    assert scratch.volumes.input_volume not in names
    assert scratch.volumes.output_volume not in names
