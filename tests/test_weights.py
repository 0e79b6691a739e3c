"""Weights: strict state-dict checks, the cache, and downloads from a real local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import probes
from probes.inception import InceptionV1Net
from probes.weights import WeightsError, cache_path, check_state_dict, download, get_weights_entry, read_state_dict
from curvebench.cli import main as cli

ENTRY = get_weights_entry("inception5h")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("w") / "random5h.pth"
    torch.save(InceptionV1Net().state_dict(), path)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CURVEBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class _Server:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = server.body
                if self.path == "/missing":
                    self.send_error(404, "Not Found")
                    return
                if self.path == "/wrong":
                    body = server.wrong
                if self.path == "/garbage":
                    body = b"<html>this is not a weights file</html>" * 100
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path == "/truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                if self.path == "/stall":
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    server.release.wait(10)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    s = _Server(weights_file.read_bytes())
    other = tmp_path_factory.mktemp("o") / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 4)}, other)
    s.wrong = other.read_bytes()  # type: ignore[attr-defined]
    yield s
    s.close()


def _cache_files(home: Path) -> list[str]:
    return sorted(p.name for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_download_success_atomic(server: _Server, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli(["weights", "download", "--url", f"{server.url}/ok", "--timeout", "5", "--quiet"])
    assert rc == 0
    assert _cache_files(home) == ["inception5h.pth"]
    assert cache_path(ENTRY).read_bytes() == server.body
    assert "sha256" in capsys.readouterr().out
    model = probes.load_model("inceptionv1")  # from the cache
    assert model.meta["weights"] == str(cache_path(ENTRY)) and len(model.meta["weights_sha256"]) == 64
    assert cli(["weights", "verify"]) == 0


@pytest.mark.parametrize("path, match", [
    ("/missing", "HTTP 404"),
    ("/truncated", "truncated|broke off"),
    ("/wrong", "missing keys: conv2d0_pre_relu_conv.weight"),
    ("/garbage", "not a readable torch state dict"),
    ("/stall", "stalled|timed out"),
])
def test_download_failures_leave_no_file(server: _Server, home: Path, path: str, match: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli(["weights", "download", "--url", f"{server.url}{path}", "--timeout", "0.5", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("curvebench: error:") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err
    assert str(cache_path(ENTRY)) in err
    assert _cache_files(home) == []


def test_offline_error_says_where_the_file_goes(home: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WeightsError, match="offline") as info:
        download(ENTRY, url=f"http://127.0.0.1:{port}/x", timeout=0.5, progress=False)
    assert str(cache_path(ENTRY)) in str(info.value)
    assert _cache_files(home) == []


def test_missing_cache_error(home: Path) -> None:
    with pytest.raises(FileNotFoundError, match="would be at .*inception5h.pth.*--weights PATH"):
        probes.load_model("inceptionv1")


def test_load_explicit_file_and_meta(weights_file: Path, home: Path) -> None:
    model = probes.load_model("inceptionv1", weights=weights_file)
    sd = torch.load(weights_file, weights_only=True)
    torch.testing.assert_close(model.net.conv2d0_pre_relu_conv.weight, sd["conv2d0_pre_relu_conv.weight"])
    assert model.meta["weights"] == str(weights_file)
    assert model.meta["input_transform"]["description"].startswith("RGB * 255 - 117")
    assert cli(["weights", "verify", "--weights", str(weights_file)]) == 0


def test_strict_checks_name_the_file_and_keys(tmp_path: Path, weights_file: Path) -> None:
    sd = torch.load(weights_file, weights_only=True)
    bad = dict(sd)
    bad["mixed3b_5x5_pre_relu_conv.weight"] = torch.zeros(96, 32, 3, 3)
    del bad["softmax2_pre_activation_matmul.bias"]
    bad["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError) as info:
        probes.load_model("inceptionv1", weights=path)
    msg = str(info.value)
    for part in (str(path), "missing keys: softmax2_pre_activation_matmul.bias", "unexpected keys: extra.weight",
                 "mixed3b_5x5_pre_relu_conv.weight [96, 32, 3, 3] (expected [96, 32, 5, 5])", "116 tensors"):
        assert part in msg, (part, msg)
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="not a state dict"):
        read_state_dict(path, ENTRY)
    path.write_bytes(sd["conv2d0_pre_relu_conv.weight"].numpy().tobytes()[:999])
    with pytest.raises(WeightsError, match="not a readable torch state dict"):
        read_state_dict(path, ENTRY)
    with pytest.raises(WeightsError, match="not tensors"):
        check_state_dict({"a": 1}, ENTRY, "x.pth")


def test_weights_path_and_unknown_name(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["weights", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "weights" / "inception5h.pth")
    assert cli(["weights", "path", "--name", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CURVEBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_path(ENTRY) == tmp_path / "curvebench" / "weights" / "inception5h.pth"


def test_registry_entry_facts() -> None:
    d = ENTRY.as_dict()
    assert d["url"] == "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"
    assert d["filename"] == "inception5h.pth" and d["input_transform"]["shift"] == -117.0
    assert "mixed3b" in d["taps"] and len(ENTRY.expected()) == 116


def test_existing_bad_file_needs_force(server: _Server, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = cache_path(ENTRY)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"junk")
    assert cli(["weights", "download", "--url", f"{server.url}/ok", "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err and target.read_bytes() == b"junk"
    assert cli(["weights", "download", "--url", f"{server.url}/ok", "--quiet", "--force"]) == 0
    assert target.read_bytes() == server.body
