"""Known checkpoints: the catalogue, the cache, downloads from a local HTTP server, and ``upscale weights``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from tests.conftest import photo, write_rgb
from upscale import hub
from upscale.cli import main
from upscale.errors import WeightsError
from upscale.models import REGISTRY, Registry, build_model, load_model
from upscale.models.rlfn import RLFN_SPEC

# ------------------------------------------------------------------------------------- local server


@dataclass
class Served:
    """What the local server holds and what it did."""

    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    cut_after: int | None = None
    """Close the connection after this many body bytes (the headers still promise the whole body)."""
    bytes_sent: int = 0
    ranges: list[str | None] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path


def _handler(state: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            asked = self.headers.get("Range")
            state.ranges.append(asked)
            start = 0
            if asked and state.honour_range:
                m = re.fullmatch(r"bytes=(\d+)-", asked)
                assert m, asked
                start = int(m.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if state.cut_after is not None:
                payload = payload[: state.cut_after]
            self.wfile.write(payload)
            self.wfile.flush()
            state.bytes_sent += len(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Served]:
    state = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache via UPSCALE_HOME; no proxy between us and 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "cache-home"
    monkeypatch.setenv("UPSCALE_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def rlfn_file() -> tuple[dict[str, torch.Tensor], bytes]:
    """An RLFN x2 network (random weights) as a state dict and as safetensors bytes (about 2 MB)."""
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in build_model(RLFN_SPEC, 2).module.state_dict().items()}
    return sd, save_safetensors(sd)


def _entry(
    server: Served,
    payload: bytes,
    *,
    name: str = "test-rlfn-x2",
    sha256: str | None = "auto",
    size_bytes: int | None = None,
) -> hub.Checkpoint:
    server.files[f"/{name}.safetensors"] = payload
    return hub.Checkpoint(
        name=name,
        model="rlfn",
        scale=2,
        filename="rlfn_x2.safetensors",
        url=server.url(f"/{name}.safetensors"),
        page=server.base,
        licence="Apache-2.0",
        sha256=hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256,
        size_bytes=size_bytes,
    )


def _left_in(directory: Path) -> list[str]:
    """Files in the cache other than the lock file."""
    return sorted(p.name for p in directory.iterdir() if p.name != ".lock") if directory.is_dir() else []


# ------------------------------------------------------------------------------------------- cache


def test_cache_dir_follows_upscale_home_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("UPSCALE_HOME", str(tmp_path / "mine"))
    assert hub.weights_dir() == tmp_path / "mine" / "weights"
    monkeypatch.delenv("UPSCALE_HOME")
    assert hub.weights_dir() == tmp_path / "xdg" / "upscale" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert hub.weights_dir() == tmp_path / "user" / ".cache" / "upscale" / "weights"


def test_catalogue_is_well_formed() -> None:
    names = [e.name for e in hub.CATALOGUE]
    assert len(names) == len(set(names))
    for e in hub.CATALOGUE:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", e.name), e.name  # no dot: --weights tells names from files so
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert e.url is None or e.url.startswith("https://"), e.name
        assert e.page.startswith("https://") and e.licence, e.name
        if e.model in REGISTRY:
            assert e.scale in REGISTRY.get(e.model).scales, e.name
        assert e.kind in ("sr", "features"), e.name
        if e.sha256_prefix is not None:
            assert re.fullmatch(r"[0-9a-f]{8,63}", e.sha256_prefix), e.name
            assert e.sha256 is None or e.sha256.startswith(e.sha256_prefix), e.name


def test_catalogue_vgg_entries_are_torchvision_files_and_not_sr_models() -> None:
    vgg = {e.name: e for e in hub.CATALOGUE if e.kind == "features"}
    assert sorted(vgg) == ["vgg16", "vgg19"]
    for name, filename in (("vgg19", "vgg19-dcbb9e9d.pth"), ("vgg16", "vgg16-397923af.pth")):
        e = vgg[name]
        assert e.url == "https://download.pytorch.org/models/" + filename
        assert e.model == name and name not in REGISTRY  # no registry model: nothing offers it for upscaling
        # torchvision's file names carry the first 8 hex digits of the file's sha256.
        assert e.sha256_prefix == filename[-12:-4] and e.checksum == e.sha256


def test_catalogue_hashes_match_the_official_files(shared_data: Path) -> None:
    """The RLFN and SRCNN entries describe exactly the authors' files."""
    official = shared_data / "official-weights"
    files = {p.name: p for p in official.rglob("*") if p.suffix in {".pth", ".mat"}}
    checked = 0
    for e in hub.CATALOGUE:
        if e.model in {"rlfn", "rlfn-s", "srcnn"}:
            path = files[e.filename]
            assert hub.sha256_file(path) == e.sha256, e.name
            assert path.stat().st_size == e.size_bytes, e.name
            checked += 1
    assert checked == 8


# ---------------------------------------------------------------------------------------- download


def test_download_verifies_caches_and_is_not_repeated(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    path = hub.resolve(entry.name, catalogue=[entry], progress=False)
    assert path == home / "weights" / "test-rlfn-x2.safetensors"
    assert path.read_bytes() == payload
    assert _left_in(home / "weights") == ["test-rlfn-x2.safetensors"]  # no .part left behind
    sent = server.bytes_sent
    assert hub.resolve("TEST-RLFN-X2", catalogue=[entry], progress=False) == path
    assert server.bytes_sent == sent  # the second call used the cache


def test_checksum_mismatch_leaves_nothing(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload, sha256=hashlib.sha256(b"another file").hexdigest())
    with pytest.raises(WeightsError, match="sha256 mismatch") as info:
        hub.resolve(entry.name, catalogue=[entry], progress=False)
    assert entry.url in str(info.value) and "\n" not in str(info.value)
    assert _left_in(home / "weights") == []


def test_size_mismatch_leaves_nothing(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload, sha256=None, size_bytes=len(payload) - 1)
    with pytest.raises(WeightsError, match="expected"):
        hub.download(entry, progress=False)
    assert _left_in(home / "weights") == []


def test_partial_download_is_resumed_with_a_range_request(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    have = 700_001
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "test-rlfn-x2.safetensors.part").write_bytes(payload[:have])
    path = hub.resolve(entry.name, catalogue=[entry], progress=False)
    assert server.ranges == [f"bytes={have}-"]
    assert server.bytes_sent == len(payload) - have  # only the rest crossed the wire
    assert path.read_bytes() == payload


def test_broken_connection_keeps_the_part_and_the_next_run_finishes(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    server.cut_after = 300_000
    with pytest.raises(WeightsError, match="again to resume"):
        hub.download(entry, progress=False)
    part = home / "weights" / "test-rlfn-x2.safetensors.part"
    assert part.stat().st_size == 300_000
    assert not (home / "weights" / "test-rlfn-x2.safetensors").exists()

    server.cut_after = None
    path = hub.download(entry, progress=False)
    assert server.ranges == [None, "bytes=300000-"]
    assert server.bytes_sent == len(payload)  # 300,000 bytes, then the rest: nothing fetched twice
    assert path.read_bytes() == payload and not part.exists()


def test_server_that_ignores_range_restarts_from_zero(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    server.honour_range = False
    (home / "weights").mkdir(parents=True)
    # Bytes that are not the file's start: appending the full body to them would give a corrupt file.
    (home / "weights" / "test-rlfn-x2.safetensors.part").write_bytes(b"\0" * 5000)
    path = hub.download(entry, progress=False)
    assert server.ranges == ["bytes=5000-"]
    assert server.bytes_sent == len(payload)
    assert path.read_bytes() == payload


def test_range_past_the_end_restarts(server: Served, home: Path, rlfn_file) -> None:
    """A stale ``.part`` as long as the file gets 416; the download starts again rather than failing."""
    _, payload = rlfn_file
    entry = _entry(server, payload)
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "test-rlfn-x2.safetensors.part").write_bytes(b"\1" * len(payload))
    path = hub.download(entry, progress=False)
    assert server.ranges == [f"bytes={len(payload)}-", None]
    assert path.read_bytes() == payload


def test_simultaneous_downloads_fetch_the_file_once(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    results: list[Path | BaseException] = []

    def fetch() -> None:
        try:
            results.append(hub.download(entry, progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported through the assertion below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [home / "weights" / "test-rlfn-x2.safetensors"] * 3
    assert server.bytes_sent == len(payload)  # the others waited for the first and used its file
    assert results[0].read_bytes() == payload


def test_unreachable_server_names_the_url_and_the_way_out(home: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/RRDB_ESRGAN_x4.pth"
    entry = hub.Checkpoint("offline", "esrgan", 4, "RRDB_ESRGAN_x4.pth", url, url, "Apache-2.0")
    with pytest.raises(WeightsError) as info:
        hub.resolve("offline", catalogue=[entry], progress=False)
    msg = str(info.value)
    assert url in msg and "by hand" in msg and "--weights" in msg and "\n" not in msg
    assert _left_in(home / "weights") == []


def test_missing_file_on_server(server: Served, home: Path) -> None:
    entry = hub.Checkpoint("gone", "rlfn", 2, "gone.pth", server.url("/gone.pth"), server.base, "MIT")
    with pytest.raises(WeightsError, match="HTTP 404"):
        hub.download(entry, progress=False)


def test_entry_without_direct_download_says_where_to_get_it(home: Path) -> None:
    entry = next(e for e in hub.CATALOGUE if e.url is None)
    with pytest.raises(WeightsError) as info:
        hub.resolve(entry.name, progress=False)
    assert entry.page in str(info.value) and "--weights" in str(info.value)


def test_prefix_checksum_is_accepted_when_right(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    digest = hashlib.sha256(payload).hexdigest()
    entry = replace(_entry(server, payload, sha256=None), sha256_prefix=digest[:8])
    path = hub.download(entry, progress=False)
    assert path.read_bytes() == payload
    assert hub.digest_matches(entry, digest) and not hub.digest_matches(entry, "0" * 64)


def test_prefix_checksum_mismatch_leaves_nothing(server: Served, home: Path, rlfn_file) -> None:
    _, payload = rlfn_file
    digest = hashlib.sha256(payload).hexdigest()
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    entry = replace(_entry(server, payload, sha256=None), sha256_prefix=wrong)
    with pytest.raises(WeightsError, match=f"sha256 mismatch \\(expected one starting {wrong}, got {digest}\\)"):
        hub.download(entry, progress=False)
    assert _left_in(home / "weights") == []


# ------------------------------------------------------------------------------ --weights NAME


def test_load_model_resolves_a_catalogue_name(
    server: Served, home: Path, rlfn_file, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd, payload = rlfn_file
    entry = _entry(server, payload)
    monkeypatch.setattr(hub, "CATALOGUE", (entry,))
    loaded = load_model("rlfn", weights="test-rlfn-x2")
    assert loaded.weights == str(home / "weights" / "test-rlfn-x2.safetensors")
    assert loaded.scale == 2
    got = loaded.module.state_dict()
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_load_model_with_an_unknown_name(home: Path) -> None:
    with pytest.raises(WeightsError, match="upscale weights list"):
        load_model("rlfn", weights="no-such-checkpoint")


# ------------------------------------------------------------------------------------------- CLI


def test_cli_list_shows_checksums_licences_and_cache_state(
    server: Served, home: Path, rlfn_file, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, payload = rlfn_file
    verified = _entry(server, payload)
    unverified = replace(_entry(server, payload, name="test-other", sha256=None), licence="MIT")
    monkeypatch.setattr(hub, "CATALOGUE", (verified, unverified))
    hub.download(verified, progress=False)

    result = CliRunner().invoke(main, ["weights", "list"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line.startswith("test-")}
    short = verified.sha256[:16]
    assert rows["test-rlfn-x2"] == ["test-rlfn-x2", "rlfn", "x2", verified.url, short, "Apache-2.0", "yes"]
    assert rows["test-other"] == ["test-other", "rlfn", "x2", unverified.url, "unverified", "MIT", "no"]
    assert str(home / "weights") in result.output


def test_cli_list_of_the_real_catalogue(home: Path) -> None:
    result = CliRunner().invoke(main, ["weights", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines()]
    assert [d["name"] for d in listed] == [e.name for e in hub.CATALOGUE]
    assert all(d["cached"] is None for d in listed)  # an empty cache, and nothing was fetched


def test_cli_download(server: Served, home: Path, rlfn_file, monkeypatch: pytest.MonkeyPatch) -> None:
    _, payload = rlfn_file
    entry = _entry(server, payload)
    monkeypatch.setattr(hub, "CATALOGUE", (entry,))
    result = CliRunner().invoke(main, ["weights", "download", "-q", "test-rlfn-x2", "nope"])
    assert result.exit_code == 1
    path = home / "weights" / "test-rlfn-x2.safetensors"
    assert result.stdout.strip() == str(path)  # the good name is fetched although the other one fails
    assert path.read_bytes() == payload
    assert result.stderr.splitlines() == [
        "Error: nope: no such weights file or known checkpoint name (see 'upscale weights list')"
    ]  # -q: no progress bar

    path.unlink()
    result = CliRunner().invoke(main, ["weights", "download", "test-rlfn-x2"])
    assert result.exit_code == 0, result.output
    assert "test-rlfn-x2" in result.stderr and "100%" in result.stderr  # the progress bar, on stderr
    assert result.stdout.strip() == str(path)


@pytest.fixture
def vgg_file() -> bytes:
    """A torchvision-style VGG state dict, cut to its first conv (the real one is 550 MB)."""
    conv = torch.nn.Conv2d(3, 64, 3, padding=1)
    buf = io.BytesIO()
    torch.save({"features.0.weight": conv.weight.detach(), "features.0.bias": conv.bias.detach()}, buf)
    return buf.getvalue()


def _vgg_entry(server: Served, payload: bytes, *, prefix: str | None = None) -> hub.Checkpoint:
    """The catalogue's vgg19 entry, served locally; only a sha256 prefix known, as torchvision publishes."""
    server.files["/vgg19-test.pth"] = payload
    return replace(
        hub.find("vgg19"),
        url=server.url("/vgg19-test.pth"),
        sha256=None,
        sha256_prefix=prefix or hashlib.sha256(payload).hexdigest()[:8],
        size_bytes=len(payload),
    )


def test_cli_download_of_vgg19(server: Served, home: Path, vgg_file: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _vgg_entry(server, vgg_file)
    monkeypatch.setattr(hub, "CATALOGUE", (entry,))
    with pytest.raises(WeightsError) as info:
        hub.vgg_weights_path("vgg19")
    assert "upscale weights download vgg19" in str(info.value) and server.bytes_sent == 0  # never fetched silently

    result = CliRunner().invoke(main, ["weights", "download", "-q", "vgg19"])
    assert result.exit_code == 0, result.output
    path = home / "weights" / "vgg19.pth"
    assert result.stdout.strip() == str(path) and path.read_bytes() == vgg_file
    assert hub.vgg_weights_path("VGG19") == path
    sd = torch.load(path, weights_only=True)
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)

    sent = server.bytes_sent
    result = CliRunner().invoke(main, ["weights", "download", "-q", "vgg19"])
    assert result.exit_code == 0 and result.stdout.strip() == str(path)
    assert server.bytes_sent == sent  # the cached file matched its prefix: not fetched again

    result = CliRunner().invoke(main, ["weights", "list"])
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if line.startswith("vgg19 "))
    assert row[:5] == ["vgg19", "vgg19", "-", entry.url, entry.sha256_prefix + "..."] and row[-1] == "yes"
    assert "feature networks for training losses" in result.output


def test_cli_download_of_vgg19_with_a_wrong_prefix(
    server: Served, home: Path, vgg_file: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256(vgg_file).hexdigest()
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    monkeypatch.setattr(hub, "CATALOGUE", (_vgg_entry(server, vgg_file, prefix=wrong),))
    result = CliRunner().invoke(main, ["weights", "download", "-q", "vgg19"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {server.url('/vgg19-test.pth')}: sha256 mismatch (expected one starting {wrong}, got {digest}); "
        "the download was deleted"
    ]
    assert _left_in(home / "weights") == []


def test_vgg_weights_path_of_the_real_catalogue(home: Path) -> None:
    for arch in ("vgg19", "vgg16"):
        with pytest.raises(WeightsError) as info:
            hub.vgg_weights_path(arch)
        msg = str(info.value)
        assert f"run 'upscale weights download {arch}' first" in msg and str(home / "weights") in msg
        assert "\n" not in msg
    with pytest.raises(WeightsError, match="not a VGG feature network"):
        hub.vgg_weights_path("rlfn-x4")
    assert _left_in(home / "weights") == []


def test_vgg19_is_refused_as_sr_weights(
    server: Served, home: Path, vgg_file: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WeightsError, match="VGG19 feature network for training losses, not a super-resolution model"):
        load_model("rlfn", weights="vgg19")
    assert _left_in(home / "weights") == []  # refused before any download

    entry = _vgg_entry(server, vgg_file)
    monkeypatch.setattr(hub, "CATALOGUE", (entry,))
    hub.download(entry, progress=False)  # cached or not, it is no SR model
    img = write_rgb(tmp_path / "in.png", photo("astronaut", (16, 16)))
    result = CliRunner().invoke(main, ["images", str(img), "-m", "rlfn", "--weights", "vgg19", "-q"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: vgg19: is a VGG19 feature network for training losses, not a super-resolution model; "
        "pass an SR checkpoint to --weights (see 'upscale weights list')"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache-home", "in.png"]


def test_cli_convert_refuses_a_vgg_file(tmp_path: Path, vgg_file: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "vgg19-test.pth"
    src.write_bytes(vgg_file)
    entry = replace(hub.find("vgg19"), sha256=hashlib.sha256(vgg_file).hexdigest(), size_bytes=len(vgg_file))
    monkeypatch.setattr(hub, "CATALOGUE", (entry,))
    result = CliRunner().invoke(main, ["weights", "convert", str(src), str(tmp_path / "o.safetensors")])
    assert result.exit_code == 1 and "feature network for training losses" in result.output
    assert not (tmp_path / "o.safetensors").exists()


def test_cli_convert_official_rlfn(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "official-weights" / "rlfn" / "rlfn_x2.pth"
    dst = tmp_path / "rlfn_x2.safetensors"
    result = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    with safe_open(str(dst), "pt") as f:
        meta = f.metadata()
    assert meta["model"] == "rlfn" and meta["scale"] == "2"
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert _left_in(tmp_path) == ["rlfn_x2.safetensors"]  # no temp file left

    x = torch.from_numpy(photo("astronaut", (24, 20))).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        want = load_model("rlfn", weights=src).module(x)
        got = load_model("rlfn", weights=dst).module(x)
    assert got.shape == (1, 3, 40, 48)
    assert torch.equal(got, want)


def test_cli_convert_refuses_to_overwrite(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "official-weights" / "rlfn" / "rlfn_s_x4.pth"
    dst = tmp_path / "out.safetensors"
    dst.write_bytes(b"keep me")
    result = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst)])
    assert result.exit_code != 0
    assert "--overwrite" in result.output and str(dst) in result.output
    assert dst.read_bytes() == b"keep me"
    result = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert load_model("rlfn-s", weights=dst).scale == 4


def test_cli_convert_wrong_model_and_bad_input(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "official-weights" / "rlfn" / "rlfn_x4.pth"
    result = CliRunner().invoke(main, ["weights", "convert", str(src), str(tmp_path / "o.safetensors"), "-m", "esrgan"])
    assert result.exit_code != 0 and "not 'esrgan'" in result.output
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["weights", "convert", str(junk), str(tmp_path / "o.safetensors")])
    assert result.exit_code != 0 and str(junk) in result.output
    assert _left_in(tmp_path) == ["junk.pth"]


def test_convert_official_srcnn_mat(shared_data: Path, tmp_path: Path) -> None:
    srcnn = pytest.importorskip("upscale.models.srcnn")
    registry = REGISTRY if "srcnn" in REGISTRY else Registry([*REGISTRY, srcnn.SRCNN_SPEC])
    src = shared_data / "official-weights" / "srcnn_v1_915" / "x3.mat"
    done = hub.convert_checkpoint(src, tmp_path / "srcnn_x3.safetensors", registry=registry)
    # The tensors cannot tell SRCNN's scale; the file's catalogue entry does.
    assert (done.model, done.scale, done.tensors) == ("srcnn", 3, 6)
    y = torch.from_numpy(photo("camera", (20, 18))[..., 0]).float()[None, None] / 255.0
    with torch.no_grad():
        want = load_model("srcnn", weights=src, registry=registry).module(y)
        got = load_model("srcnn", weights=done.path, registry=registry).module(y)
    assert torch.equal(got, want)


def test_converted_file_gets_normal_permissions(tmp_path: Path, rlfn_file: tuple[dict, bytes]) -> None:
    """Readable by others as any file the user writes (the umask decides), not a private temp file's 0600."""
    src = tmp_path / "rlfn.pth"
    torch.save(rlfn_file[0], src)
    dst = tmp_path / "rlfn_x2.safetensors"
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert dst.stat().st_mode & 0o777 == 0o644
    assert _left_in(tmp_path) == ["rlfn.pth", "rlfn_x2.safetensors"]
