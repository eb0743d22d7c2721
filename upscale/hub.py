"""Official checkpoints known by name: a catalogue, a per-user cache, downloads and conversion.

``--weights NAME`` resolves NAME here. The file is fetched once into the user cache
(``$UPSCALE_HOME``, else ``$XDG_CACHE_HOME/upscale``, else ``~/.cache/upscale``; files under ``weights/``),
checked against its published sha256 (or the published prefix of it) where one is known, and used from
there afterwards. Nothing is downloaded unless a name is asked for: with ``--weights NAME``, or by a bare
model name whose default weights are an official checkpoint (:mod:`upscale.models.defaults`).

Offline (``offline=True``, ``--offline`` or ``UPSCALE_OFFLINE=1``) :func:`resolve` uses the cache only and
never opens a connection; a missing file is a one-line error naming the file, its URL and the two ways out.

Besides super-resolution checkpoints the catalogue holds torchvision's ImageNet VGG16/VGG19, the feature
networks of perceptual losses (``kind="features"``): ``upscale weights download vgg19`` fetches them,
:func:`vgg_weights_path` finds them, and ``--weights`` refuses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import OutputExistsError, WeightsError
from .io.files import atomic_output

if TYPE_CHECKING:
    from .models.registry import Registry

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 16
_USER_AGENT = "upscale-weights/1"


@dataclass(frozen=True)
class Checkpoint:
    """One published weights file."""

    name: str
    """Id for ``--weights NAME`` and ``upscale weights download NAME``: lower case, no dots or slashes."""

    model: str
    """Registry name of the architecture the file holds (``vgg19`` for a feature network)."""

    scale: int
    """The upscaling factor; 1 for a feature network, which upscales nothing."""

    filename: str
    """The publisher's file name; its suffix decides how the file is read (``.pth``, ``.mat``)."""

    url: str | None
    """Direct download, or None where the authors publish only through a page (e.g. Google Drive)."""

    page: str
    """Where the authors publish the file (README, release page, repository)."""

    licence: str

    sha256: str | None = None
    """Published or otherwise established sha256 of the file; None where none is known."""

    size_bytes: int | None = None

    note: str = ""

    sha256_prefix: str | None = None
    """The leading hex digits of the sha256 where the publisher gives only those (torchvision puts the
    first 8 in its file names). A download is checked against the full ``sha256`` when known, else
    against this prefix; with neither it is used unverified."""

    set5_psnr: float | None = None
    """Set5 PSNR in dB at its scale by this project's evaluation protocol (``upscale eval``, Y channel),
    where measured: a cached file that scores above a model's bundled file runs in its place."""

    kind: Literal["sr", "features"] = "sr"
    """``sr``: a super-resolution network, for ``--weights NAME``. ``features``: a classification
    network whose features drive training losses (VGG for perceptual losses); never an SR model."""

    @property
    def cache_name(self) -> str:
        """File name in the cache: the catalogue name with the publisher's suffix."""
        return self.name + Path(self.filename).suffix.lower()

    @property
    def checksum(self) -> str | None:
        """What a download is checked against: the full sha256, else the published prefix, else None."""
        return self.sha256 or self.sha256_prefix


_RLFN_ZOO = "https://raw.githubusercontent.com/bytedance/RLFN/bccfde91bf8b2de80789ec033a029e6f2a932330/model_zoo/"
_SRCNN_DIR = (
    "https://raw.githubusercontent.com/Guominyingxiongququ/superResolution/"
    "eb7298088cbca24f3fd0df48f79dcee0b02f42b2/libs/SRCNN/"
)
_DRN_RELEASE = "https://github.com/guoyongcs/DRN/releases/download/v0.1/"
_REALESRGAN_RELEASE = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_TORCHVISION_MODELS = "https://download.pytorch.org/models/"


def _rlfn(name: str, *, scale: int, sha256: str, size_bytes: int, set5_psnr: float | None = None) -> Checkpoint:
    filename = name.replace("-", "_") + ".pth"  # rlfn-s-x4 -> rlfn_s_x4.pth
    return Checkpoint(
        name=name,
        model="rlfn-s" if name.startswith("rlfn-s-") else "rlfn",
        scale=scale,
        filename=filename,
        url=_RLFN_ZOO + filename,
        page="https://github.com/bytedance/RLFN",
        licence="Apache-2.0",
        sha256=sha256,
        size_bytes=size_bytes,
        note="model_zoo/ of bytedance/RLFN at commit bccfde9",
        set5_psnr=set5_psnr,
    )


def _realesr_v3(name: str, *, sha256: str, size_bytes: int, note: str) -> Checkpoint:
    """A SRVGGNetCompact file of Real-ESRGAN's v0.2.5.0 release (``{'params': state_dict}``)."""
    return Checkpoint(
        name=name,
        model="compact",
        scale=4,
        filename=f"{name}.pth",
        url=f"{_REALESRGAN_RELEASE}v0.2.5.0/{name}.pth",
        page="https://github.com/xinntao/Real-ESRGAN/releases/tag/v0.2.5.0",
        licence="BSD-3-Clause",
        sha256=sha256,
        size_bytes=size_bytes,
        note=note + "; the release publishes no checksum: sha256 and size as pinned alike by several projects",
    )


def _srcnn(scale: int, *, sha256: str, size_bytes: int) -> Checkpoint:
    return Checkpoint(
        name=f"srcnn-915-x{scale}",
        model="srcnn",
        scale=scale,
        filename=f"x{scale}.mat",
        url=f"{_SRCNN_DIR}x{scale}.mat",
        page="https://mmlab.ie.cuhk.edu.hk/projects/SRCNN.html",
        licence="none stated",
        sha256=sha256,
        size_bytes=size_bytes,
        note="the authors' 2014 MATLAB release (9-1-5, 91 images), as bundled in Guominyingxiongququ/superResolution",
    )


def _drn(model: str, scale: int) -> Checkpoint:
    filename = f"DRN{model[-1].upper()}{scale}x.pt"  # drn-s, 4 -> DRNS4x.pt
    return Checkpoint(
        name=f"{model}-x{scale}",
        model=model,
        scale=scale,
        filename=filename,
        url=_DRN_RELEASE + filename,
        page="https://github.com/guoyongcs/DRN/releases",
        licence="MIT",
        note="the primal network; the dual models are separate files",
    )


def _torchvision_vgg(arch: str, filename: str, *, sha256: str, size_bytes: int) -> Checkpoint:
    """torchvision's ImageNet ``IMAGENET1K_V1`` weights; the file name carries the sha256's first 8 digits."""
    prefix = Path(filename).stem.rsplit("-", 1)[1]  # vgg19-dcbb9e9d.pth -> dcbb9e9d
    return Checkpoint(
        name=arch,
        model=arch,
        scale=1,
        filename=filename,
        url=_TORCHVISION_MODELS + filename,
        page=f"https://pytorch.org/vision/stable/models/generated/torchvision.models.{arch}.html",
        licence="BSD-3-Clause (torchvision); weights: see torchvision",
        sha256=sha256,
        size_bytes=size_bytes,
        note=(
            f"torchvision {arch.upper()}_Weights.IMAGENET1K_V1, for perceptual losses. torchvision publishes the "
            f"sha256 prefix {prefix} in the file name; the full sha256 and size are those of downloads of that file. "
            "torchvision notes that pre-trained weights may carry terms derived from their training data (ImageNet)"
        ),
        sha256_prefix=prefix,
        kind="features",
    )


CATALOGUE: tuple[Checkpoint, ...] = (
    Checkpoint(
        name="esrgan-official",
        model="esrgan",
        scale=4,
        filename="RRDB_ESRGAN_x4.pth",
        url="https://github.com/cszn/KAIR/releases/download/v1.0/ESRGAN.pth",
        page="https://github.com/xinntao/ESRGAN",
        licence="Apache-2.0",
        sha256="65fece06e1ccb48853242aa972bdf00ad07a7dd8938d2dcbdf4221b59f6372ce",
        size_bytes=66929193,
        note="the authors' RRDB_ESRGAN_x4.pth (published on Google Drive), as mirrored in the cszn/KAIR v1.0 release",
    ),
    Checkpoint(
        name="esrgan-psnr",
        model="esrgan",
        scale=4,
        filename="RRDB_PSNR_x4.pth",
        url=None,
        page="https://github.com/xinntao/ESRGAN",
        licence="Apache-2.0",
        note="published on Google Drive only (links in the ESRGAN README)",
    ),
    Checkpoint(
        name="realesrgan-x4plus",
        model="esrgan",
        scale=4,
        filename="RealESRGAN_x4plus.pth",
        url=_REALESRGAN_RELEASE + "v0.1.0/RealESRGAN_x4plus.pth",
        page="https://github.com/xinntao/Real-ESRGAN/releases/tag/v0.1.0",
        licence="BSD-3-Clause",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size_bytes=67040989,
    ),
    Checkpoint(
        name="realesrgan-x2plus",
        model="esrgan",
        scale=2,
        filename="RealESRGAN_x2plus.pth",
        url=_REALESRGAN_RELEASE + "v0.2.1/RealESRGAN_x2plus.pth",
        page="https://github.com/xinntao/Real-ESRGAN/releases/tag/v0.2.1",
        licence="BSD-3-Clause",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size_bytes=67061725,
    ),
    _realesr_v3(
        "realesr-general-x4v3",
        sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        size_bytes=4885111,
        note="general scenes, 32 convolutions; --denoise blends it with realesr-general-wdn-x4v3",
    ),
    _realesr_v3(
        "realesr-animevideov3",
        sha256="b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
        size_bytes=2504012,
        note="anime video, 16 convolutions",
    ),
    _realesr_v3(
        "realesr-general-wdn-x4v3",
        sha256="1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca",
        size_bytes=4885111,
        note="realesr-general-x4v3 trained to denoise less (weak denoise); the other end of --denoise",
    ),
    _rlfn(
        "rlfn-x2",
        scale=2,
        sha256="eafe5d5feeb122022453595c06d79160facdc157ae88deb02a44c50f5eba2d41",
        size_bytes=2145309,
        set5_psnr=38.08,
    ),
    _rlfn(
        "rlfn-x4",
        scale=4,
        sha256="8c7edb57dfc89048bafba29d591d4c27d4099964b4a9e22df23d6dc257a637c0",
        size_bytes=2212893,
        set5_psnr=32.24,
    ),
    _rlfn(
        "rlfn-s-x2",
        scale=2,
        sha256="f5175f499f869c1b884c2552a1bcd6abd07ab352e3d8c8c9abe31b1deb60fe45",
        size_bytes=1855005,
        set5_psnr=38.06,
    ),
    _rlfn(
        "rlfn-s-x4",
        scale=4,
        sha256="f769c5a88433786b2db0c2b24da6ca6c92a24c62344b9354a390f8a74388e89d",
        size_bytes=1919005,
        set5_psnr=32.25,
    ),
    _rlfn(
        "rlfn-ntire-x4",
        scale=4,
        sha256="3c9be7b9d7a4bece9b68c83a56a1ffb38010f76413d5f215be6b4be842e18fb2",
        size_bytes=1294011,
    ),
    _drn("drn-s", 4),
    _drn("drn-l", 4),
    _drn("drn-s", 8),
    _drn("drn-l", 8),
    _srcnn(2, sha256="51b748297e8669832a4ad27cc4b7eebc6d65d37a77bcb19bef23c1b5f972ea12", size_bytes=38625),
    _srcnn(3, sha256="ef05325a96221ab9399db844bc833f687796a1078bfa6aacc6930bde60ca5b10", size_bytes=38483),
    _srcnn(4, sha256="717c2c6f5196a95959f98953f84a359e56fc415eba190b5db016b25896e74862", size_bytes=38489),
    _torchvision_vgg(
        "vgg19",
        "vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        size_bytes=574673361,
    ),
    _torchvision_vgg(
        "vgg16",
        "vgg16-397923af.pth",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        size_bytes=553433881,
    ),
)
"""The known checkpoints. Functions read it at call time, so tests can replace it.

Order matters: the first ``sr`` entry of a model at a scale is what the bare model name runs at that
scale where no bundled file exists (:func:`upscale.models.defaults.default_weights`), so each model's
reference release comes before its variants (``esrgan-official`` before ``realesrgan-x4plus``,
``rlfn-x4`` before ``rlfn-ntire-x4``, ``realesr-general-x4v3`` before ``realesr-animevideov3``)."""


# --------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """``$UPSCALE_HOME``, else ``$XDG_CACHE_HOME/upscale``, else ``~/.cache/upscale``."""
    home = os.environ.get("UPSCALE_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "upscale"


def weights_dir() -> Path:
    return cache_dir() / "weights"


def find(name: str, catalogue: Sequence[Checkpoint] | None = None) -> Checkpoint:
    """The catalogue entry called ``name`` (case-insensitive)."""
    entries = CATALOGUE if catalogue is None else catalogue
    for entry in entries:
        if entry.name == name.lower():
            return entry
    raise WeightsError(f"{name}: no such weights file or known checkpoint name (see 'upscale weights list')")


def cached_path(entry: Checkpoint, directory: Path | None = None) -> Path | None:
    """The cached file, or None when it is absent or has the wrong size."""
    path = (directory or weights_dir()) / entry.cache_name
    if not path.is_file():
        return None
    if entry.size_bytes is not None and path.stat().st_size != entry.size_bytes:
        return None
    return path


def offline_from_env() -> bool:
    """Whether ``UPSCALE_OFFLINE`` forbids downloads: set and not ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get("UPSCALE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


def resolve(
    name: str,
    *,
    catalogue: Sequence[Checkpoint] | None = None,
    progress: bool | None = None,
    offline: bool | None = None,
) -> Path:
    """The cached file for a known super-resolution checkpoint name, downloaded on first use.

    This is what ``--weights NAME`` and a bare model name with official default weights read, so feature
    networks (VGG) are refused here: see :func:`vgg_weights_path` for those. ``offline`` (None: read
    ``UPSCALE_OFFLINE``) uses the cache only; a missing file then raises without any network access.
    """
    entry = find(name, catalogue)
    if entry.kind != "sr":
        raise WeightsError(
            f"{entry.name}: is a {entry.model.upper()} feature network for training losses, not a super-resolution "
            "model; pass an SR checkpoint to --weights (see 'upscale weights list')"
        )
    path = cached_path(entry)
    if path is not None:
        return path
    return download(entry, progress=progress, offline=offline_from_env() if offline is None else offline)


def vgg_weights_path(arch: str, *, catalogue: Sequence[Checkpoint] | None = None) -> Path:
    """The cached ImageNet weights of ``arch`` (``vgg19``, ``vgg16``) for perceptual losses.

    Never downloads: training should not start a 550 MB transfer unasked. A missing file raises
    :class:`WeightsError` naming the command that fetches it.
    """
    entry = find(arch, catalogue)
    if entry.kind != "features":
        raise WeightsError(f"{entry.name}: is a super-resolution checkpoint, not a VGG feature network")
    path = cached_path(entry)
    if path is None:
        raise WeightsError(
            f"{entry.name}: the ImageNet {entry.model.upper()} weights are not in the cache ({weights_dir()}); "
            f"run 'upscale weights download {entry.name}' first"
        )
    return path


def digest_matches(entry: Checkpoint, digest: str) -> bool:
    """Whether a file's sha256 ``digest`` agrees with the entry's full sha256, else with its published
    prefix; True where the entry knows neither."""
    digest = digest.lower()
    if entry.sha256 is not None:
        return digest == entry.sha256.lower()
    if entry.sha256_prefix is not None:
        return digest.startswith(entry.sha256_prefix.lower())
    return True


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ download


class _RestartDownload(Exception):
    """The server refused or mangled a Range request: fetch the whole file again."""


def download(
    entry: Checkpoint,
    *,
    directory: Path | None = None,
    progress: bool | None = None,
    force: bool = False,
    timeout_s: float = 30.0,
    offline: bool = False,
) -> Path:
    """Fetch ``entry`` into the cache and return its path.

    The bytes go to ``<file>.part``, which is renamed only once complete and verified; an interrupted
    download is resumed with an HTTP Range request (or restarted where the server ignores Range). A
    sha256 or size mismatch deletes the download. ``progress=None`` shows a bar unless logging is quiet;
    with the bar, one line first says what is fetched, its size, licence and URL.

    This is the explicit fetch (``upscale weights download``), so ``UPSCALE_OFFLINE`` is not read here;
    ``offline=True`` refuses before any connection is opened, with the error :func:`resolve` reports.
    """
    if entry.url is None:
        raise WeightsError(
            f"{entry.name}: no direct download is known; get {entry.filename} from {entry.page} and pass --weights FILE"
        )
    directory = Path(directory) if directory is not None else weights_dir()
    if offline:
        raise WeightsError(
            f"{entry.name}: {entry.filename} ({entry.url}) is not in the cache and downloads are off "
            f"(--offline or UPSCALE_OFFLINE); {_ways_out(entry, directory)}"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"{directory}: cannot create the weights cache ({exc.strerror or exc})") from None
    dest = directory / entry.cache_name
    part = dest.with_name(dest.name + ".part")
    show = progress if progress is not None else logging.getLogger("upscale").getEffectiveLevel() <= logging.WARNING
    with _locked(directory / ".lock"):
        if not force and cached_path(entry, directory) is not None:
            return dest  # another process finished it while we waited
        if show:  # the bar's heading: what, how big, under which licence, from where
            what = f"{entry.filename}, {_size_text(entry.size_bytes)}, {entry.licence}"
            print(f"fetching {entry.name} ({what}) from {entry.url}", file=sys.stderr, flush=True)
        else:
            log.info("downloading %s from %s", entry.name, entry.url)
        try:
            digest = _fetch(entry, part, show, timeout_s)
        except _RestartDownload:
            part.unlink(missing_ok=True)
            digest = _fetch(entry, part, show, timeout_s)
        _verify(entry, part, digest)
        os.replace(part, dest)
    return dest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise downloads between processes sharing one cache (POSIX only; elsewhere a no-op)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fetch(entry: Checkpoint, part: Path, show: bool, timeout_s: float) -> str:
    """Append the missing bytes to ``part`` (or rewrite it) and return the sha256 of the whole file."""
    from tqdm import tqdm

    url = entry.url
    assert url is not None
    offset = part.stat().st_size if part.is_file() else 0
    if entry.size_bytes is not None and offset > entry.size_bytes:
        part.unlink()
        offset = 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            raise _RestartDownload from None
        raise WeightsError(
            f"cannot download '{entry.name}' from {url} (HTTP {exc.code} {exc.reason}); "
            "download it by hand and pass --weights FILE"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # unreachable: DNS, refused, timeout
        reason = _one_line(getattr(exc, "reason", exc))
        raise WeightsError(
            f"cannot download '{entry.name}' ({entry.filename}) from {url} ({reason}); "
            + _ways_out(entry, part.parent, by_hand=True)
        ) from None

    digest = hashlib.sha256()
    with resp:
        if offset and resp.status == 206:
            if _range_start(resp.headers.get("Content-Range")) != offset:
                raise _RestartDownload
            with open(part, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            mode = "ab"
        else:  # 200: no Range asked, or the server ignored it and sends the whole file
            offset, mode = 0, "wb"
        length_header = resp.headers.get("Content-Length")
        length = int(length_header) if length_header is not None else None
        total = offset + length if length is not None else entry.size_bytes
        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=entry.name,
            file=sys.stderr,
            disable=not show,
            dynamic_ncols=True,
        )
        with bar, open(part, mode) as out:
            try:
                while chunk := resp.read(_CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise WeightsError(
                    f"download of '{entry.name}' from {url} broke off after {offset + received} bytes "
                    f"({_one_line(exc)}); run the same command again to resume"
                ) from None
            out.flush()
            os.fsync(out.fileno())
    if length is not None and received < length:
        raise WeightsError(
            f"download of '{entry.name}' from {url} stopped after {offset + received} of {offset + length} bytes; "
            "run the same command again to resume"
        )
    return digest.hexdigest()


def _verify(entry: Checkpoint, part: Path, digest: str) -> None:
    size = part.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        part.unlink()
        raise WeightsError(f"{entry.url}: got {size} bytes, expected {entry.size_bytes}; the download was deleted")
    if entry.checksum is None:
        log.warning("%s: no published sha256 is known; the file is used unverified", entry.name)
    elif not digest_matches(entry, digest):
        part.unlink()
        expected = entry.sha256 or f"one starting {entry.sha256_prefix}"
        raise WeightsError(
            f"{entry.url}: sha256 mismatch (expected {expected}, got {digest}); the download was deleted"
        )
    elif entry.sha256 is None:
        log.info("%s: sha256 prefix %s matches (only the prefix is published)", entry.name, entry.sha256_prefix)


def _ways_out(entry: Checkpoint, directory: Path, *, by_hand: bool = False) -> str:
    """The two ways to run without reaching the URL: fetch on another machine and copy, or pass a file."""
    file = "download it by hand and pass --weights FILE" if by_hand else "pass --weights FILE"
    return (
        f"run 'upscale weights download {entry.name}' on a connected machine and copy the file it prints "
        f"into {directory}, or {file}"
    )


def _size_text(size_bytes: int | None) -> str:
    """``66929193`` -> ``63.8 MiB``; ``38625`` -> ``37.7 KiB``; None -> ``size unknown``."""
    if size_bytes is None:
        return "size unknown"
    if size_bytes >= 1 << 20:
        return f"{size_bytes / (1 << 20):.1f} MiB"
    return f"{size_bytes / 1024:.1f} KiB"


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def _one_line(obj: object) -> str:
    text = str(obj).strip()
    return text.splitlines()[0] if text else type(obj).__name__


# ---------------------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class Converted:
    path: Path
    model: str
    scale: int
    tensors: int
    source_sha256: str


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    model: str | None = None,
    scale: int | None = None,
    overwrite: bool = False,
    registry: Registry | None = None,
) -> Converted:
    """Rewrite a checkpoint of any supported layout as safetensors in this project's key layout.

    The architecture is ``model`` or detected from the tensors. The network is built and loaded strictly
    before anything is written, so the output always loads. Metadata records the model, the scale and
    the sha256 of the source file. The output appears only when complete (temp name, then rename).
    """
    from safetensors.torch import save_file

    from .models import REGISTRY
    from .models.loading import model_from_state_dict, read_state_dict

    src, dst = Path(src), Path(dst)
    registry = registry if registry is not None else REGISTRY
    if dst.suffix.lower() != ".safetensors":
        raise WeightsError(f"{dst}: the output must be a .safetensors file")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputExistsError(f"{dst}: is the input file; choose another output")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst}: exists; pass --overwrite to replace it")
    if not dst.parent.is_dir():
        raise WeightsError(f"{dst.parent}: no such folder")
    sd = read_state_dict(src)
    source_sha256 = sha256_file(src)
    # A catalogued file says what it is, which matters where the tensors cannot (SRCNN's scale).
    known = next((e for e in CATALOGUE if e.sha256 == source_sha256), None)
    if known is not None and known.kind != "sr":
        raise WeightsError(
            f"{src}: is '{known.name}', a {known.model.upper()} feature network for training losses, "
            "not a super-resolution model; it needs no conversion"
        )
    if model:
        spec = registry.get(model)
    else:
        spec = registry.identify(sd)
        if spec is None and known is not None and known.model in registry:
            spec = registry.get(known.model)
    if spec is None:
        raise WeightsError(
            f"{src}: holds no architecture this version knows; pass --model NAME ({', '.join(registry.names())})"
        )
    if scale is None and known is not None and known.model == spec.name:
        scale = known.scale
    loaded = model_from_state_dict(spec, sd, scale=scale, registry=registry, origin=str(src))
    tensors = {k: v.detach().contiguous().clone() for k, v in loaded.module.state_dict().items()}
    metadata = {
        "format": "pt",
        "model": spec.name,
        "scale": str(loaded.scale),
        "source_file": src.name,
        "source_sha256": source_sha256,
    }
    with atomic_output(dst) as tmp:  # a normal file's permissions, unlike mkstemp's 0600
        save_file(tensors, str(tmp), metadata=metadata)
    return Converted(dst, spec.name, loaded.scale, len(tensors), source_sha256)
