"""What a bare model name runs with: bundled weights, else the official checkpoint fetched into the cache.

Checkpoints are served by the local HTTP server of ``tests/test_hub.py``; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from safetensors.torch import save_file

from tests import test_hub as hub_tests
from tests.conftest import photo, read_rgb, write_rgb
from tests.test_hub import Served, _left_in
from upscale import hub
from upscale.cli import main
from upscale.models import REGISTRY, WeightsChoice, build_model, default_model_name, default_weights, load_model
from upscale.models import bundled as bundled_module

# ------------------------------------------------------------------------------------------ helpers

server = hub_tests.server  # the local HTTP server
home = hub_tests.home  # an empty cache under UPSCALE_HOME


@pytest.fixture
def bundled_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty bundled-weights folder in place of ``weights/``: tests add a manifest when they want one."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    monkeypatch.setattr(bundled_module, "weights_dir", lambda: folder)
    bundled_module.bundled_weights.cache_clear()
    yield folder
    bundled_module.bundled_weights.cache_clear()  # the next test reads the real manifest again


def _bundle(folder: Path, model: str, scale: int, set5_psnr: float, **hparams: object) -> Path:
    """A small trained-looking file of ``model`` x``scale`` and its manifest entry, as ``upscale train`` writes them."""
    spec = REGISTRY.get(model)
    net = build_model(spec, scale, **(hparams or {"channels": 8, "num_blocks": 1}))
    path = folder / f"{model}_x{scale}.safetensors"
    save_file(net.module.state_dict(), str(path), metadata={"model": model, "scale": str(scale)})
    entry = {
        "file": path.name,
        "model": model,
        "scale": scale,
        "scores": {"Set5": {"psnr": set5_psnr, "ssim": 0.88}, "Set14": {"psnr": 27.9, "ssim": 0.77}},
        "bicubic": {"Set5": {"psnr": 28.42, "ssim": 0.81}, "Set14": {"psnr": 26.0, "ssim": 0.70}},
    }
    manifest = folder / "manifest.json"
    entries = json.loads(manifest.read_text())["weights"] if manifest.is_file() else []
    manifest.write_text(json.dumps({"weights": [*entries, entry]}))
    bundled_module.bundled_weights.cache_clear()
    return path


def _to_2019_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BasicSR key names -> those of the ESRGAN repository's RRDB_ESRGAN_x4.pth (``RRDB_trunk``, ``HRconv``)."""
    out = {}
    for key, value in sd.items():
        key = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", key)
        key = re.sub(r"^conv_up(\d)\.", r"upconv\1.", key)
        out[key.replace("conv_body.", "trunk_conv.").replace("conv_hr.", "HRconv.")] = value
    return out


@pytest.fixture(scope="module")
def esrgan_file() -> tuple[dict[str, torch.Tensor], bytes]:
    """A stand-in for RRDB_ESRGAN_x4.pth (67 MB): an x4 RRDBNet with one block, saved as the authors' layout."""
    torch.manual_seed(0)
    net = build_model(REGISTRY.get("esrgan"), 4, num_block=1, num_feat=16, num_grow_ch=8).module
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save(_to_2019_layout(sd), buf)
    return sd, buf.getvalue()


def _serve(server: Served, monkeypatch: pytest.MonkeyPatch, payload: bytes) -> hub.Checkpoint:
    """The catalogue's esrgan-official entry, pointed at the local server and at the stand-in's size and sha256."""
    server.files["/RRDB_ESRGAN_x4.pth"] = payload
    entry = replace(
        hub.find("esrgan-official"),
        url=server.url("/RRDB_ESRGAN_x4.pth"),
        sha256=hashlib.sha256(payload).hexdigest(),
        size_bytes=len(payload),
    )
    _replace_entry(monkeypatch, entry)
    return entry


def _replace_entry(monkeypatch: pytest.MonkeyPatch, entry: hub.Checkpoint) -> None:
    monkeypatch.setattr(hub, "CATALOGUE", tuple(entry if e.name == entry.name else e for e in hub.CATALOGUE))


def _dead_url(path: str) -> str:
    """A URL on a local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _errors(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


# ------------------------------------------------------------------------------- the choice itself


@pytest.mark.parametrize(
    ("model", "scale", "expected"),
    [
        ("esrgan", None, ("esrgan-official", 4)),
        ("esrgan", 4, ("esrgan-official", 4)),  # the paper's file, not Real-ESRGAN's
        ("esrgan", 2, ("realesrgan-x2plus", 2)),
        ("esrgan", 8, None),
        ("rlfn", None, ("rlfn-x4", 4)),  # not rlfn-ntire-x4, listed later
        ("rlfn", 2, ("rlfn-x2", 2)),
        ("rlfn", 3, None),
        ("rlfn-s", None, ("rlfn-s-x4", 4)),
        ("rlfn-s", 2, ("rlfn-s-x2", 2)),
        ("drn-s", None, ("drn-s-x4", 4)),
        ("drn-l", 8, ("drn-l-x8", 8)),
        ("srcnn", None, ("srcnn-915-x4", 4)),
        ("srcnn", 3, ("srcnn-915-x3", 3)),
        ("srcnn", 5, None),
        ("srresnet", None, None),
        ("bicubic", None, None),  # needs no weights
    ],
)
def test_official_default_of_each_model(
    bundled_dir: Path, model: str, scale: int | None, expected: tuple[str, int] | None
) -> None:
    choice = default_weights(REGISTRY.get(model), scale)
    if expected is None:
        assert choice is None
        return
    assert choice is not None and (choice.source, choice.name, choice.scale) == ("official", *expected)
    assert choice.checkpoint is not None and choice.checkpoint.url is not None


def test_bundled_wins_over_official(bundled_dir: Path, home: Path) -> None:
    _bundle(bundled_dir, "rlfn", 4, 31.02)
    rlfn = REGISTRY.get("rlfn")
    for scale in (None, 4):
        choice = default_weights(rlfn, scale)
        assert isinstance(choice, WeightsChoice)
        assert (choice.source, choice.name, choice.scale, choice.set5_psnr) == ("bundled", "rlfn.x4", 4, 31.02)
        # The authors' file scores higher (Set5 32.24 dB by this project's eval): named, as not cached yet.
        assert choice.label == "rlfn.x4 (bundled, Set5 31.02 dB; 'upscale weights download rlfn-x4' gets Set5 32.24 dB)"
        assert choice.fetch(offline=True) == bundled_dir / "rlfn_x4.safetensors"
    x2 = default_weights(rlfn, 2)  # no bundled x2: the official one
    assert x2 is not None and (x2.source, x2.name) == ("official", "rlfn-x2")
    assert x2.label == "rlfn-x2 (download)" and not x2.cached
    # A bundled x2 alone is still the bare name's choice: bundled at any scale beats official at x4.
    bundled_module.bundled_weights.cache_clear()
    (bundled_dir / "manifest.json").unlink()
    _bundle(bundled_dir, "rlfn", 2, 37.1)
    only_x2 = default_weights(rlfn, None)
    assert only_x2 is not None and (only_x2.source, only_x2.scale) == ("bundled", 2)
    assert default_weights(rlfn, 4).name == "rlfn-x4"  # type: ignore[union-attr]


def test_srcnn_prefers_the_authors_file_and_keeps_its_bundled_one_for_offline_runs(
    bundled_dir: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authors' SRCNN release reproduces the paper, so it wins over a CPU-trained bundled file, which
    an offline run that has not cached the official one still gets. RLFN keeps its bundled file first."""
    _bundle(bundled_dir, "srcnn", 3, 31.5, n1=8, n2=4)
    _bundle(bundled_dir, "rlfn", 4, 31.02)
    srcnn, official = REGISTRY.get("srcnn"), hub.find("srcnn-915-x3")
    assert srcnn.prefer_official and not REGISTRY.get("rlfn").prefer_official
    for scale in (3, None):
        online = default_weights(srcnn, scale, offline=False)
        assert online is not None and online.source == "official"
    assert default_weights(srcnn, 3, offline=False).name == "srcnn-915-x3"  # type: ignore[union-attr]
    offline = default_weights(srcnn, 3, offline=True)
    assert offline is not None and (offline.source, offline.name, offline.set5_psnr) == ("bundled", "srcnn.x3", 31.5)
    monkeypatch.setenv("UPSCALE_OFFLINE", "1")
    assert default_weights(srcnn, 3).source == "bundled"  # type: ignore[union-attr]
    cached = home / "weights" / official.cache_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\0" * official.size_bytes)  # type: ignore[operator]
    assert default_weights(srcnn, 3).name == "srcnn-915-x3"  # type: ignore[union-attr]  # cached: no network needed
    cached.unlink()
    assert default_weights(REGISTRY.get("rlfn"), 4, offline=False).source == "bundled"  # type: ignore[union-attr]

    img = write_rgb(tmp_path / "photo.png", photo("coffee", (20, 16)))
    result = run("images", img, "-m", "srcnn", "-s", "3", "--offline", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "model srcnn x3, weights: srcnn.x3 (bundled, Set5 31.50 dB)"
    assert read_rgb(tmp_path / "photo_x3.png").shape == (48, 60, 3)
    monkeypatch.delenv("UPSCALE_OFFLINE")
    rows = {line.split()[0]: line for line in run("models").stdout.splitlines() if line and not line.startswith(" ")}
    assert "official: srcnn-915-x4 (x4), srcnn-915-x3 (x3), srcnn-915-x2 (x2); offline: bundled x3" in rows["srcnn"]


def test_a_failed_download_of_the_preferred_official_file_falls_back_on_the_bundled_one(
    bundled_dir: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online but unreachable (no --offline given): SRCNN's authors' file cannot be fetched, so the run
    says why and uses the bundled file, which exists for runs without the network."""
    _bundle(bundled_dir, "srcnn", 3, 31.5, n1=8, n2=4)
    _replace_entry(monkeypatch, replace(hub.find("srcnn-915-x3"), url=_dead_url("/x3.mat")))
    img = write_rgb(tmp_path / "photo.png", photo("coffee", (20, 16)))
    result = run("images", img, "-m", "srcnn", "-s", "3", "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "model srcnn x3, weights: srcnn-915-x3 (download)"
    warning = next(line for line in lines if "cannot download 'srcnn-915-x3'" in line)
    assert warning.endswith("using the bundled srcnn.x3 instead (bundled, Set5 31.50 dB)")
    assert read_rgb(tmp_path / "photo_x3.png").shape == (48, 60, 3)
    assert _left_in(home / "weights") == []  # no partial download left behind

    # Asked for by name (--weights), the official file has no stand-in: its failure stays an error.
    result = run("images", img, "-m", "srcnn", "-s", "3", "--weights", "srcnn-915-x3", "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "cannot download 'srcnn-915-x3'" in result.output


def test_bundled_weights_run_without_the_network(
    bundled_dir: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bundle(bundled_dir, "rlfn", 4, 31.02)
    _replace_entry(monkeypatch, replace(hub.find("rlfn-x4"), url=_dead_url("/rlfn_x4.pth")))
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (20, 16)))
    result = run("images", img, "-m", "rlfn", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "model rlfn x4, weights: rlfn.x4 (bundled, Set5 31.02 dB; "
        "'upscale weights download rlfn-x4' gets Set5 32.24 dB)"
    )
    assert read_rgb(tmp_path / "photo_x4.png").shape == (64, 80, 3)
    assert _left_in(home / "weights") == []
    assert default_model_name() == "rlfn"


def test_a_cached_official_file_that_scores_higher_wins_over_the_bundled_one(
    bundled_dir: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rlfn x4: the authors' file scores Set5 32.24 dB by this project's eval, the bundled one less. Once
    cached (online or offline) it runs, saying why; uncached, the bundled file runs and no request is made."""
    _bundle(bundled_dir, "rlfn", 4, 31.36)
    torch.manual_seed(1)
    official_sd = build_model(REGISTRY.get("rlfn"), 4).module.state_dict()
    buf = io.BytesIO()
    torch.save(official_sd, buf)
    payload = buf.getvalue()
    entry = replace(
        hub.find("rlfn-x4"),
        url=_dead_url("/rlfn_x4.pth"),  # never asked: a request would fail the run
        sha256=hashlib.sha256(payload).hexdigest(),
        size_bytes=len(payload),
    )
    _replace_entry(monkeypatch, entry)
    rlfn = REGISTRY.get("rlfn")
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (20, 16)))

    uncached = default_weights(rlfn, 4, offline=True)
    assert uncached is not None and uncached.source == "bundled"
    result = run("images", img, "-m", "rlfn", "--device", "cpu", "-o", tmp_path / "bundled.png")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("model rlfn x4, weights: rlfn.x4 (bundled, Set5 31.36 dB; ")

    cached = home / "weights" / entry.cache_name
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(payload)
    for offline in (True, False):
        choice = default_weights(rlfn, None, offline=offline)
        assert choice is not None and (choice.source, choice.name, choice.scale) == ("official", "rlfn-x4", 4)
        assert choice.label == "rlfn-x4 (cache; Set5 32.24 dB, above the bundled rlfn.x4's 31.36)"
        assert choice.fallback is not None and choice.fallback.name == "rlfn.x4"
    result = run("images", img, "-m", "rlfn", "--device", "cpu", "--precision", "fp32", "-o", tmp_path / "cached.png")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "model rlfn x4, weights: rlfn-x4 (cache; Set5 32.24 dB, above the bundled rlfn.x4's 31.36)"
    )
    expected = run("images", img, "-m", "rlfn", "--weights", cached, "--precision", "fp32", "-o", tmp_path / "e.png")
    assert expected.exit_code == 0, expected.output
    assert (read_rgb(tmp_path / "cached.png") == read_rgb(tmp_path / "e.png")).all()  # the cached file ran
    assert not (read_rgb(tmp_path / "cached.png") == read_rgb(tmp_path / "bundled.png")).all()

    # A bundled file that scores above the official one keeps its place, cached or not.
    bundled_module.bundled_weights.cache_clear()
    (bundled_dir / "manifest.json").unlink()
    _bundle(bundled_dir, "rlfn", 4, 32.5)
    best = default_weights(rlfn, 4, offline=False)
    assert best is not None and best.source == "bundled" and best.label == "rlfn.x4 (bundled, Set5 32.50 dB)"


# ------------------------------------------------------------------------------ download and cache


def test_first_run_downloads_and_later_runs_use_the_cache(
    server: Served, home: Path, bundled_dir: Path, esrgan_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd, payload = esrgan_file
    entry = _serve(server, monkeypatch, payload)
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (16, 12)))

    result = run("images", img, "-m", "esrgan", "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "model esrgan x4, weights: esrgan-official (download)"
    size = f"{len(payload) / 1024:.1f} KiB"  # the real file: 63.8 MiB
    assert lines[1] == f"fetching esrgan-official (RRDB_ESRGAN_x4.pth, {size}, Apache-2.0) from {entry.url}"
    assert "esrgan-official" in result.stderr and "100%" in result.stderr  # the bar
    cached = home / "weights" / "esrgan-official.pth"
    assert _left_in(home / "weights") == ["esrgan-official.pth"] and cached.read_bytes() == payload
    assert server.ranges == [None] and server.bytes_sent == len(payload)
    assert read_rgb(tmp_path / "photo_x4.png").shape == (48, 64, 3)

    # Later runs: from the cache, even with the server gone.
    _replace_entry(monkeypatch, replace(entry, url=_dead_url("/RRDB_ESRGAN_x4.pth")))
    result = run("images", img, "-m", "esrgan", "--device", "cpu", "--overwrite")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "model esrgan x4, weights: esrgan-official (cache)"
    assert "fetching" not in result.stderr
    result = run("images", img, "-m", "esrgan", "--device", "cpu", "--overwrite", "-q")
    assert result.exit_code == 0 and result.stderr == ""  # -q: not even the announcement
    assert server.ranges == [None]

    loaded = load_model("esrgan", offline=True)  # the library: the same choice, the served tensors
    assert loaded.weights == str(cached) and loaded.scale == 4
    got = loaded.module.state_dict()
    assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)


@pytest.mark.parametrize("how", ["--offline", "UPSCALE_OFFLINE=1"])
def test_offline_with_an_empty_cache_is_one_line_and_no_request(
    how: str, server: Served, home: Path, bundled_dir: Path, esrgan_file, tmp_path: Path, monkeypatch
) -> None:
    _, payload = esrgan_file
    entry = _serve(server, monkeypatch, payload)
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (16, 12)))
    args: list[str | Path] = ["images", img, "-m", "esrgan", "--device", "cpu", "-q"]
    result = run(*args, "--offline") if how == "--offline" else run(*args, env={"UPSCALE_OFFLINE": "1"})
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()  # -q: the error alone, on one line
    assert line.startswith("Error: esrgan-official: RRDB_ESRGAN_x4.pth")
    for part in (entry.url, "upscale weights download esrgan-official", str(home / "weights"), "--weights FILE"):
        assert part in line, part
    assert server.ranges == [] and server.bytes_sent == 0  # not a single request
    assert _left_in(home / "weights") == [] and not (tmp_path / "photo_x4.png").exists()


def test_offline_env_does_not_stop_an_explicit_download(
    server: Served, home: Path, bundled_dir: Path, esrgan_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, payload = esrgan_file
    _serve(server, monkeypatch, payload)
    monkeypatch.setenv("UPSCALE_OFFLINE", "1")
    result = run("weights", "download", "esrgan-official")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(home / "weights" / "esrgan-official.pth")
    assert result.stderr.startswith("fetching esrgan-official (RRDB_ESRGAN_x4.pth, ")
    # ... after which offline runs have what they need.
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (16, 12)))
    result = run("images", img, "-m", "esrgan", "--device", "cpu", "--offline")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "model esrgan x4, weights: esrgan-official (cache)"
    assert server.ranges == [None]


def test_unreachable_server_is_one_line_with_both_ways_out(
    home: Path, bundled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _dead_url("/RRDB_ESRGAN_x4.pth")
    _replace_entry(monkeypatch, replace(hub.find("esrgan-official"), url=url))
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (16, 12)))
    result = run("images", img, "-m", "esrgan", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "model esrgan x4, weights: esrgan-official (download)"
    (line,) = _errors(result)
    assert line.startswith("Error: cannot download 'esrgan-official' (RRDB_ESRGAN_x4.pth) from " + url)
    for part in ("upscale weights download esrgan-official", str(home / "weights"), "--weights FILE"):
        assert part in line, part
    assert _left_in(home / "weights") == []


def test_official_srcnn_mat_runs_at_the_catalogue_scale(
    shared_data: Path, server: Served, home: Path, bundled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authors' real .mat files, checked against the catalogue's own sha256. A .mat file does not
    record its scale: the catalogue entry's is used, with no warning."""
    for scale in (3, 4):
        entry = hub.find(f"srcnn-915-x{scale}")
        server.files[f"/x{scale}.mat"] = (
            shared_data / "official-weights" / "srcnn_v1_915" / f"x{scale}.mat"
        ).read_bytes()
        _replace_entry(monkeypatch, replace(entry, url=server.url(f"/x{scale}.mat")))
    img = write_rgb(tmp_path / "photo.png", photo("coffee", (20, 16)))
    for args, scale, size in ((["-s", "3"], 3, "37.6 KiB"), ([], 4, "37.6 KiB")):
        result = run("images", img, "-m", "srcnn", *args, "--device", "cpu")
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines()[0] == f"model srcnn x{scale}, weights: srcnn-915-x{scale} (download)"
        assert f"(x{scale}.mat, {size}, none stated)" in result.stderr
        assert "do not record a scale" not in result.stderr
        assert read_rgb(tmp_path / f"photo_x{scale}.png").shape == (16 * scale, 20 * scale, 3)
        assert hub.sha256_file(home / "weights" / f"srcnn-915-x{scale}.mat") == hub.find(f"srcnn-915-x{scale}").sha256


def test_the_real_esrgan_file_is_announced_in_mib() -> None:
    entry = hub.find("esrgan-official")
    assert hub._size_text(entry.size_bytes) == "63.8 MiB"


# --------------------------------------------------------------------------------- CLI surfaces


@pytest.mark.parametrize("command", ["images", "video", "pipe", "eval", "bench"])
def test_every_running_command_takes_offline(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "--offline" in result.stdout and "UPSCALE_OFFLINE" in result.stdout


def test_bicubic_says_it_has_no_weights(tmp_path: Path) -> None:
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (16, 12)))
    result = run("images", img, "-m", "bicubic", "-s", "2", "--offline")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "model bicubic x2 (no weights)"


def test_models_shows_what_a_bare_name_runs(bundled_dir: Path, home: Path) -> None:
    _bundle(bundled_dir, "rlfn", 4, 31.02)
    result = run("models")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    assert "weights" in rows["model"].split()
    assert "bundled x4 (Set5 31.02 dB); official: rlfn-x2 (x2)" in rows["rlfn"]
    assert "official: esrgan-official (x4), realesrgan-x2plus (x2)" in rows["esrgan"]
    assert "official: drn-s-x4 (x4), drn-s-x8 (x8)" in rows["drn-s"]
    assert re.search(r"\)\s+-\s+SRResNet", rows["srresnet"])  # nothing without --weights
    assert re.search(r"\)\s+n/a\s+Bicubic", rows["bicubic"])  # needs none
    assert "default model: rlfn" in result.stdout

    data = json.loads(run("models", "--json").stdout)
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["rlfn"]["default_weights"] == {
        "source": "bundled",
        "name": "rlfn.x4",
        "scale": 4,
        "set5_psnr": 31.02,
        "cached": True,
    }
    assert [(w["source"], w["name"]) for w in by_name["rlfn"]["weights_by_scale"]] == [
        ("bundled", "rlfn.x4"),
        ("official", "rlfn-x2"),
    ]
    assert by_name["esrgan"]["default_weights"]["name"] == "esrgan-official"
    assert by_name["esrgan"]["default_weights"]["cached"] is False
    assert by_name["srresnet"]["default_weights"] is None and by_name["srresnet"]["weights"] == "-"


def test_videos_default_to_the_bundled_real_world_model_and_images_to_the_best_scoring(
    bundled_dir: Path, home: Path, tmp_path: Path
) -> None:
    """A video carries compression and noise: without -m it runs the model made for real inputs, where one
    is bundled; images keep the best-scoring model on the benchmark."""
    from tests.media import make_video

    _bundle(bundled_dir, "rlfn", 4, 31.36)
    _bundle(bundled_dir, "compact", 4, 29.5, num_feat=8, num_conv=2)
    assert REGISTRY.get("compact").fits == "real-world photos and video"
    assert default_model_name() == "rlfn"
    assert default_model_name(real_world=True) == "compact"
    img = write_rgb(tmp_path / "photo.png", photo("astronaut", (20, 16)))
    result = run("images", img, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("model rlfn x4, weights: rlfn.x4 (bundled, Set5 31.36 dB")
    clip = make_video(tmp_path / "clip.mp4", n=2, size=(16, 12), audio=None)
    result = run("video", clip, "--device", "cpu", "-o", tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "model compact x4, weights: compact.x4 (bundled, Set5 29.50 dB)"
    bundled_module.bundled_weights.cache_clear()
    (bundled_dir / "manifest.json").unlink()
    _bundle(bundled_dir, "rlfn", 4, 31.36)
    assert default_model_name(real_world=True) == "rlfn"  # none bundled: the best-scoring one
