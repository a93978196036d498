"""The pinned environment: one lock file, the same pins for conda users, torch pinned."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.support import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)$")


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements.lock line is not an exact pin: {line!r}"
        pins[match[1].lower()] = match[2]
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def test_environment_yml_names_the_same_pins_as_the_lock_file():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    yml_pins = {}
    for entry in pip_section:
        if entry.startswith("-e"):
            continue
        match = PIN.match(entry)
        assert match, f"environment.yml pip entry is not an exact pin: {entry!r}"
        yml_pins[match[1].lower()] = match[2]
    assert yml_pins == _lock_pins()
    assert "python=3.11" in env["dependencies"]


def test_lock_pins_torch_and_every_declared_dependency():
    pins = {_normalise(name): version for name, version in _lock_pins().items()}
    assert pins["torch"] == "2.13.0"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    for requirement in declared:
        name = _normalise(re.split(r"[<>=!~ ]", requirement)[0])
        assert name in pins, f"{requirement} is declared in pyproject.toml but not pinned"
    assert "pynvml" not in pins, "use nvidia-ml-py, not the deprecated pynvml package"


def test_variables_whose_names_say_secret_are_never_recorded(monkeypatch):
    """gpu_repro_*.json records tracked variables (CUDA_, DASK_, ...), never one whose name
    says it holds a secret, whatever its prefix (issue #13)."""
    from cryptosweep.execution.environment import system_info

    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__AUTH_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("CUDA_API_KEY", "s3cr3t-value")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    recorded = system_info()["environment"]
    assert recorded.get("OMP_NUM_THREADS") == "1"
    assert "s3cr3t-value" not in recorded.values()


def test_secrets_named_otherwise_are_never_recorded(monkeypatch):
    """A TLS key's passphrase, an S3 key, a password called PWD, an API key without its
    underscore, a password inside a connection string: each was recorded as it was (found by
    planting a secret in each DASK_ variable such a cluster may use)."""
    from cryptosweep.execution.environment import system_info

    for name in ("DASK_DISTRIBUTED__COMM__TLS__PASSPHRASE", "DASK_S3__KEY", "DASK_DB__PWD",
                 "DASK_GATEWAY__APIKEY", "DASK_DASHBOARD__COOKIE"):
        monkeypatch.setenv(name, "hook-s3cr3t-42")
    monkeypatch.setenv("DASK_STORE__CONNECTION", "host=db user=sweep password=hook-s3cr3t-42")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "30s")
    recorded = system_info()["environment"]
    assert "s3cr3t" not in repr(recorded), recorded
    assert recorded["OMP_NUM_THREADS"] == "1"
    assert recorded["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] == "30s"


def test_credentials_inside_a_recorded_variables_url_are_never_recorded(monkeypatch):
    """A tracked variable whose name says nothing of a secret may hold a URL with one (an
    attack put a password and a token in DASK_ variables): recorded without them."""
    from cryptosweep.execution.environment import system_info

    monkeypatch.setenv("DASK_DISTRIBUTED__DASHBOARD__LINK",
                       "https://alice:s3cr3tpw@dash.example:8787/status?token=abc123")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tls://bob:hunter2@10.0.0.1:8786")
    # Without a scheme, or with a blank in the password (a review: both were kept).
    monkeypatch.setenv("DASK_SCHEDULER__ADDRESS", "carol:pl41n@sched:8786")
    monkeypatch.setenv("DASK_CLIENT__ADDRESS", "tcp://dave:pa ss@sched:8786")
    recorded = system_info()["environment"]
    text = repr(recorded)
    for secret in ("s3cr3tpw", "alice", "abc123", "hunter2", "bob", "carol", "pl41n", "dave",
                   "pa ss"):
        assert secret not in text, recorded
    assert "dash.example:8787" in recorded["DASK_DISTRIBUTED__DASHBOARD__LINK"]
    assert "10.0.0.1:8786" in recorded["DASK_SCHEDULER_ADDRESS"]
    assert recorded["DASK_SCHEDULER__ADDRESS"].endswith("@sched:8786")
