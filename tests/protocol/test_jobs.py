"""The job spec model: image references by digest, inputs, egress, environment and bounds."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sparecycles.protocol.jobs import (
    DEFAULT_OUTPUT_DIR,
    MAX_INLINE_INPUT_BYTES,
    GiB,
    JobInput,
    JobSpec,
    MiB,
    image_digest,
    image_registry,
    is_private_host,
    parse_egress,
    parse_image,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"127.0.0.1:5000/sparecycles/busybox@{DIGEST}"


def _inline(data: bytes, path: str = "data.bin", **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "content_base64": base64.b64encode(data).decode(),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        JobSpec.model_validate(raw)
    return str(raised.value)


# --- image references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry", "repository"),
    [
        (f"busybox@{DIGEST}", "docker.io", "library/busybox"),
        (f"acme/trainer@{DIGEST}", "docker.io", "acme/trainer"),
        (f"docker.io/library/busybox@{DIGEST}", "docker.io", "library/busybox"),
        (f"index.docker.io/acme/trainer@{DIGEST}", "docker.io", "acme/trainer"),
        (f"localhost/app@{DIGEST}", "localhost", "app"),
        (f"localhost:5000/app@{DIGEST}", "localhost:5000", "app"),
        (f"127.0.0.1:5000/x/y@{DIGEST}", "127.0.0.1:5000", "x/y"),
        (f"ghcr.io/acme/team/model-server@{DIGEST}", "ghcr.io", "acme/team/model-server"),
        (f"[::1]:5000/app@{DIGEST}", "[::1]:5000", "app"),
        (f"Registry/app@{DIGEST}", "registry", "app"),  # upper case marks a host, as in Docker
        (f"nvcr.io/nvidia/pytorch@{DIGEST}", "nvcr.io", "nvidia/pytorch"),
    ],
)
def test_registry_follows_dockers_rules(image: str, registry: str, repository: str) -> None:
    reference = parse_image(image)
    assert image_registry(image) == registry
    assert image_digest(image) == DIGEST
    assert reference.repository == repository
    assert reference.canonical == f"{registry}/{repository}@{DIGEST}"


@pytest.mark.parametrize(
    ("image", "hint"),
    [
        ("busybox", "has no digest"),
        ("busybox:1.36", "names the image by tag (:1.36)"),
        ("127.0.0.1:5000/x/y:latest", "names the image by tag (:latest)"),
        (f"busybox:1.36@{DIGEST}", "has both a tag (:1.36) and a digest"),
        ("busybox@sha256:abc", "is not a digest"),
        (f"busybox@{DIGEST.upper()}", "is not a digest"),
        ("busybox@sha512:" + "a" * 128, "is not a digest"),
        (f"Busybox@{DIGEST}", "is not a valid image name"),
        (f"ghcr.io/Acme/app@{DIGEST}", "is not a valid image name"),
        (f"ghcr.io//app@{DIGEST}", "is not a valid image name"),
        (f"@{DIGEST}", "no valid image name"),
        (f"bad_host.io:99999/app@{DIGEST}", "not a registry host"),
        (f"a/{'b' * 260}@{DIGEST}", "no valid image name"),
    ],
)
def test_malformed_or_tag_only_image_is_refused_with_the_reason(image: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_image(image)
    assert hint in _error({"image": image})


def test_tag_only_message_shows_how_to_write_a_digest() -> None:
    message = _error({"image": "python:3.11"})
    assert "image" in message
    assert "@sha256:<64 hex digits>" in message


_COMPONENT = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8})?", fullmatch=True)
_DIGESTS = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@given(
    host=st.sampled_from(["ghcr.io", "localhost:5000", "127.0.0.1:5000", "registry.example.com:443", "localhost"]),
    path=st.lists(_COMPONENT, min_size=1, max_size=4),
    digest=_DIGESTS,
)
def test_any_named_registry_is_found_and_the_digest_kept(host: str, path: list[str], digest: str) -> None:
    image = f"{host}/{'/'.join(path)}@{digest}"
    assert image_registry(image) == host
    assert image_digest(image) == digest


@given(path=st.lists(_COMPONENT, min_size=1, max_size=3), tag=st.from_regex(r"\w[\w.-]{0,20}", fullmatch=True))
def test_any_tag_without_a_digest_is_refused(path: list[str], tag: str) -> None:
    with pytest.raises(ValueError, match="by tag"):
        parse_image(f"{'/'.join(path)}:{tag}")


# --- the spec as a whole ---------------------------------------------------------------------------


def test_a_minimal_cpu_only_job_gets_safe_defaults() -> None:
    spec = JobSpec.model_validate({"image": IMAGE})
    assert spec.gpus == 0
    assert spec.egress == []
    assert spec.env == {}
    assert spec.command is None
    assert spec.entrypoint is None
    assert spec.output_dir == DEFAULT_OUTPUT_DIR
    assert spec.memory_bytes == 2 * GiB
    assert spec.shm_bytes == 64 * MiB


def test_a_gpu_job_with_everything_set() -> None:
    spec = JobSpec.model_validate(
        {
            "image": IMAGE,
            "entrypoint": ["python"],
            "command": ["train.py", "--epochs", "3"],
            "env": {"CUDA_VISIBLE_DEVICES": "0", "LD_PRELOAD": "/opt/lib.so", "PYTHONUNBUFFERED": "1"},
            "gpus": 2,
            "min_vram_bytes": 12 * GiB,
            "cpus": 6,
            "memory_bytes": 32 * GiB,
            "shm_bytes": 8 * GiB,
            "max_runtime_s": 4 * 3600,
            "egress": ["Huggingface.co:443", "[2001:db8::1]:8443"],
            "inputs": [_inline(b"x" * 100, "config/train.yaml", size_bytes=100)],
            "output_dir": "/workspace/out",
            "max_output_bytes": 50 * GiB,
        }
    )
    assert spec.gpus == 2
    assert spec.cpus == 6.0
    assert spec.egress == ["huggingface.co:443", "[2001:db8::1]:8443"]
    assert spec.inputs[0].content() == b"x" * 100


def test_the_spec_cannot_be_changed_after_validation() -> None:
    spec = JobSpec.model_validate({"image": IMAGE})
    with pytest.raises(ValidationError, match="frozen"):
        spec.gpus = 8  # type: ignore[misc]


def test_unknown_fields_are_refused_by_name() -> None:
    assert "extra_fun\n  Extra inputs are not permitted" in _error({"image": IMAGE, "extra_fun": True})
    message = _error({"image": IMAGE, "inputs": [{**_inline(b"a"), "mode": "0755"}]})
    assert "inputs.0.mode" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpus", "1"),
        ("gpus", True),
        ("memory_bytes", 1.5e9),
        ("max_runtime_s", "1h"),
        ("command", "python train.py"),
        ("env", {"A": 1}),
    ],
)
def test_values_are_not_coerced(field: str, value: Any) -> None:
    assert field in _error({"image": IMAGE, field: value})


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("gpus", -1, "greater than or equal to 0"),
        ("gpus", 17, "less than or equal to 16"),
        ("cpus", 0, "greater than or equal to 0.01"),
        ("cpus", float("nan"), "finite number"),
        ("memory_bytes", 1024, "greater than or equal to"),
        ("memory_bytes", 2 * 1024 * GiB, "less than or equal to"),
        ("shm_bytes", 0, "greater than or equal to"),
        ("max_runtime_s", 0, "greater than or equal to 1"),
        ("max_runtime_s", 8 * 86400, "less than or equal to 604800"),
        ("max_output_bytes", -1, "greater than or equal to 0"),
        ("command", [], "at least 1 item"),
        ("command", ["a\x00b"], "NUL"),
        ("entrypoint", ["x" * (200 * 1024)], "longer than"),
        ("egress", [f"h{i}.example.com:443" for i in range(33)], "at most 32"),
    ],
)
def test_bounds_at_the_model_level(field: str, value: Any, hint: str) -> None:
    message = _error({"image": IMAGE, field: value})
    assert field in message
    assert hint in message


def test_min_vram_without_gpus_is_refused() -> None:
    assert "min_vram_bytes needs gpus of 1 or more" in _error({"image": IMAGE, "min_vram_bytes": GiB})


def test_shared_memory_above_memory_is_refused() -> None:
    assert "must not exceed memory_bytes" in _error({"image": IMAGE, "memory_bytes": GiB, "shm_bytes": 2 * GiB})


@pytest.mark.parametrize(
    ("output_dir", "hint"),
    [
        ("job/output", "absolute path"),
        ("/job/../etc", "plain absolute path"),
        ("/job/output/", "plain absolute path"),
        ("/", "must not be /"),
        ("/proc/self", "/proc"),
        ("/dev", "/dev"),
        ("/job/input", "overlap the input folder"),
        ("/job", "overlap the input folder"),
    ],
)
def test_output_dir_must_be_a_plain_absolute_path_of_its_own(output_dir: str, hint: str) -> None:
    assert hint in _error({"image": IMAGE, "output_dir": output_dir})


# --- environment -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_REQUIRE_CUDA", "NVIDIA_MIG_CONFIG_DEVICES",
     "NVIDIA_DISABLE_REQUIRE", "nvidia_visible_devices", "CUDA_VERSION"],
)  # fmt: skip
def test_runtime_steering_variables_are_refused_by_name(name: str) -> None:
    message = _error({"image": IMAGE, "env": {"OK": "1", name: "all"}})
    assert f"{name} steers the GPU runtime on the host" in message


@given(name=st.from_regex(r"[Nn][Vv][Ii][Dd][Ii][Aa]_[A-Za-z0-9_]{0,20}", fullmatch=True))
def test_any_nvidia_variable_in_any_case_is_refused(name: str) -> None:
    assert name in _error({"image": IMAGE, "env": {name: "all"}})


@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True), value=st.text(max_size=50))
def test_other_variables_are_the_jobs_own(name: str, value: str) -> None:
    if name.upper().startswith("NVIDIA_") or name.upper() == "CUDA_VERSION":
        return
    value = value.replace("\x00", "")
    assert JobSpec.model_validate({"image": IMAGE, "env": {name: value}}).env == {name: value}


@pytest.mark.parametrize(("name", "hint"), [("1ABC", "not a variable name"), ("A=B", "not a variable name"),
                                            ("A B", "not a variable name")])  # fmt: skip
def test_malformed_variable_names_are_refused(name: str, hint: str) -> None:
    assert hint in _error({"image": IMAGE, "env": {name: "x"}})


# --- egress ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("example.com:443", ("example.com", 443)),
        ("API.Example.com:8080", ("api.example.com", 8080)),
        ("203.0.113.7:1", ("203.0.113.7", 1)),
        ("[2001:db8::1]:65535", ("2001:db8::1", 65535)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_egress_entries_parse(entry: str, expected: tuple[str, int]) -> None:
    assert parse_egress(entry) == expected


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("example.com", "not host:port"),
        (":443", "not host:port"),
        ("example.com:0", "from 1 to 65535"),
        ("example.com:65536", "from 1 to 65535"),
        ("example.com:https", "from 1 to 65535"),
        ("*.example.com:443", "wildcards"),
        ("exa mple.com:443", "neither a host name"),
        ("-bad.com:443", "neither a host name"),
        ("2001:db8::1:443", "in brackets"),
        ("[nothex]:443", "not an IPv6 address"),
        ("127.1:80", "plain IPv4"),
        ("0x7f000001:80", "plain IPv4"),
        ("2130706433:80", "plain IPv4"),
    ],
)
def test_malformed_egress_is_refused(entry: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_egress(entry)
    assert hint in _error({"image": IMAGE, "egress": [entry]})


@given(port=st.integers().filter(lambda p: not 1 <= p <= 65535))
def test_ports_outside_the_range_are_refused(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_egress(f"example.com:{port}")


def test_duplicate_egress_is_refused() -> None:
    assert "listed twice" in _error({"image": IMAGE, "egress": ["a.example:443", "A.example:443"]})


@pytest.mark.parametrize(
    ("host", "private"),
    [("localhost", True), ("db.localhost", True), ("127.0.0.1", True), ("192.168.1.1", True), ("10.0.0.5", True),
     ("169.254.169.254", True), ("::1", True), ("[fe80::1]", True), ("::ffff:192.168.0.1", True),
     ("8.8.8.8", False), ("2606:4700::1111", False), ("example.com", False)],
)  # fmt: skip
def test_private_hosts(host: str, private: bool) -> None:
    assert is_private_host(host) is private


# --- inputs ----------------------------------------------------------------------------------------


def test_inline_input_is_checked_and_decoded() -> None:
    item = JobInput.model_validate(_inline(b"hello", "a/b/c.txt", size_bytes=5))
    assert item.content() == b"hello"


def test_url_input_needs_its_size() -> None:
    sha = "ab" * 32
    item = JobInput.model_validate({"path": "w.bin", "url": "https://example.com/w.bin", "sha256": sha.upper(),
                                    "size_bytes": 10})  # fmt: skip
    assert item.sha256 == sha
    assert item.content() is None


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("../etc/passwd", "'..' is not allowed"),
        ("a/../../b", "'..' is not allowed"),
        ("/etc/passwd", "not absolute"),
        ("a//b", "empty or '.' parts"),
        ("./a", "empty or '.' parts"),
        ("a/", "empty or '.' parts"),
        ("", "is empty"),
        ("a\\..\\b", "not '\\'"),
        ("a\nb", "control characters"),
        ("x" * 256, "too long"),
    ],
)
def test_input_paths_stay_inside_the_input_folder(path: str, hint: str) -> None:
    message = _error({"image": IMAGE, "inputs": [_inline(b"x", path)]})
    assert "inputs.0.path" in message
    assert hint in message


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        ({"path": "a", "content_base64": "eA=="}, "inputs.0.sha256\n  Field required"),
        ({"path": "a", "url": "https://example.com/a", "size_bytes": 1}, "inputs.0.sha256\n  Field required"),
        ({**_inline(b"x"), "sha256": "f" * 64}, "does not match its sha256"),
        ({**_inline(b"x"), "sha256": "f" * 63}, "64 hex digits"),
        ({**_inline(b"x"), "size_bytes": 2}, "size_bytes is 2"),
        ({**_inline(b"x"), "content_base64": "not base64!"}, "not valid base64"),
        ({**_inline(b"x"), "url": "https://example.com/x"}, "exactly one of them"),
        ({"path": "a", "sha256": "f" * 64}, "exactly one of them"),
        ({"path": "a", "sha256": "f" * 64, "url": "https://example.com/a"}, "size_bytes is required"),
        ({"path": "a", "sha256": "f" * 64, "url": "file:///etc/passwd", "size_bytes": 1}, "http:// or https://"),
        ({"path": "a", "sha256": "f" * 64, "url": "https://x:99999/", "size_bytes": 1}, "not a valid URL"),
        ({"path": "a", "sha256": "f" * 64, "url": "http://127.1/a", "size_bytes": 1}, "plain IPv4"),
        ({"path": "a", "sha256": "f" * 64, "url": "http://a_b.example/a", "size_bytes": 1}, "neither a host name"),
        ({"path": "a", "sha256": "f" * 64, "url": "https://x/", "size_bytes": 64 * GiB}, "less than or equal"),
    ],
)
def test_invalid_inputs_are_refused(item: dict[str, Any], hint: str) -> None:
    assert hint in _error({"image": IMAGE, "inputs": [item]})


def test_inline_input_over_the_cap_is_refused_before_decoding() -> None:
    too_big = _inline(b"\x00" * (MAX_INLINE_INPUT_BYTES + 1))
    assert "larger than 1 MiB" in _error({"image": IMAGE, "inputs": [too_big]})
    just_right = _inline(b"\x00" * MAX_INLINE_INPUT_BYTES)
    assert JobSpec.model_validate({"image": IMAGE, "inputs": [just_right]}).inputs[0].size_bytes is None


def test_inline_inputs_together_are_capped() -> None:
    chunk = b"\x00" * MAX_INLINE_INPUT_BYTES
    inputs = [_inline(chunk, f"part{i}") for i in range(9)]
    assert "larger than 8 MiB in all" in _error({"image": IMAGE, "inputs": inputs})


@pytest.mark.parametrize(("first", "second"), [("a.txt", "a.txt"), ("data", "data/train.csv")])
def test_colliding_input_paths_are_refused(first: str, second: str) -> None:
    message = _error({"image": IMAGE, "inputs": [_inline(b"1", second), _inline(b"2", first), _inline(b"3", "a-b")]})
    assert f"inputs '{first}' and '{second}' collide" in message


def test_readme_shows_the_example_job_and_the_schema_is_current() -> None:
    import json as json_module
    from pathlib import Path

    from sparecycles.protocol.jobs import JobSpec

    root = Path(__file__).resolve().parents[2]
    example = json_module.loads((root / "examples" / "job.json").read_text())
    readme = (root / "README.md").read_text()
    shown = json_module.loads(readme.split("```json\n", 1)[1].split("```", 1)[0])
    assert shown == example
    committed = json_module.loads((root / "docs" / "job-spec.schema.json").read_text())
    assert committed["properties"] == JobSpec.model_json_schema()["properties"], "run `make docs`"
