"""Reading weight files: safety, wrappers, metadata and clear errors."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from upscale.errors import WeightsError
from upscale.models import REGISTRY, build_model, load_model, read_state_dict


class Payload:
    """Any class: unpickling it needs code that ``weights_only=True`` refuses to run."""

    def __reduce__(self):
        return (print, ("this would run on load",))


def _rlfn_sd(scale: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model(REGISTRY.get("rlfn"), scale).module.state_dict()


def test_pickle_needing_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"params": _rlfn_sd(), "extra": Payload()}, path)
    with pytest.raises(WeightsError, match=r"evil\.pth: refused to load: the checkpoint needs arbitrary code"):
        read_state_dict(path)
    assert "this would run on load" not in capsys.readouterr().out


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict"])
def test_wrappers_and_data_parallel_prefix_are_unwrapped(tmp_path: Path, wrapper: str) -> None:
    sd = _rlfn_sd()
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: collections.OrderedDict((f"module.{k}", v) for k, v in sd.items()), "iter": 5}, path)
    loaded = load_model("rlfn", weights=path)
    assert loaded.scale == 2
    for k, v in loaded.module.state_dict().items():
        assert torch.equal(v, sd[k])


def test_converted_safetensors_record_their_scale(tmp_path: Path) -> None:
    torch.manual_seed(0)
    srcnn = build_model(REGISTRY.get("srcnn"), 3).module.state_dict()
    path = tmp_path / "srcnn.safetensors"
    save_file(srcnn, str(path), metadata={"model": "srcnn", "scale": "3"})
    assert load_model("srcnn", weights=path).scale == 3  # the tensors alone do not say
    assert load_model("srcnn", weights=path, scale=2).scale == 2  # scale-free network: the user decides


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not a readable weights file"), (b"PK\x03\x04garbage", "not a readable weights file")],
)
def test_unreadable_files(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=f"broken.pth: {reason}"):
        load_model("rlfn", weights=path)


def test_missing_file_and_tensorless_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nothere\.pth: no such weights file"):
        load_model("rlfn", weights=tmp_path / "nothere.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(WeightsError, match=r"empty\.pth: holds no tensors"):
        load_model("rlfn", weights=tmp_path / "empty.pth")


def test_shape_mismatch_names_the_file(tmp_path: Path) -> None:
    sd = _rlfn_sd()
    sd["conv_2.weight"] = torch.zeros(52, 52, 5, 5)
    save_file(sd, str(tmp_path / "odd.safetensors"))
    with pytest.raises(WeightsError, match=r"odd.safetensors: does not fit 'rlfn'"):
        load_model("rlfn", weights=tmp_path / "odd.safetensors")
