"""Visual initialisations (avdemo.training.visual_init): losses, the training loop and its resume,
the saved weights loading through `build_for_training`, and the held-out exclusions. Tiny 64 px
images; fake teacher targets only where the test is about the student's loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from avdemo.models.visual_net import VisualNet
from avdemo.training import visual_init as vi
from avdemo.training.train import TrainConfig, build_for_training

SIZE = 64  # map side 2


def _quiet(*_):
    pass


def _fake_targets(n: int = 16, seed: int = 0) -> vi.DistillTargets:
    """Images with targets that are a fixed function of them (so they can be learned)."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, SIZE, SIZE, 3)) * 255).astype(np.uint8)
    frames = vi.to_tensor(images)
    cells = F.adaptive_avg_pool2d(frames, 2)  # (n, 3, 2, 2)
    mix = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    feature_map = torch.einsum("oc,nchw->nohw", mix, cells)
    pooled = feature_map.mean(dim=(2, 3)).repeat(1, 160)  # (n, 1280)
    logits = 3 * pooled[:, :1000]
    return vi.DistillTargets(images, feature_map.numpy(), pooled.numpy(), logits.numpy())


def _material(categories: int = 3) -> vi.Material:
    rng = np.random.default_rng(0)
    sprites = []
    for c in range(categories):
        rgba = np.zeros((20, 30, 4), np.uint8)
        rgba[..., c % 3] = 255
        rgba[4:16, 5:25, 3] = 255
        sprites += [(c, rgba), (c, rgba[:, ::-1].copy())]
    backgrounds = [(rng.random((80, 100, 3)) * 255).astype(np.uint8) for _ in range(2)]
    return vi.Material([f"k{c}" for c in range(categories)], sprites, backgrounds)


def test_distill_loss_is_zero_at_the_target_and_positive_elsewhere():
    target = {"map": torch.randn(2, 8, 2, 2), "pooled": torch.randn(2, 1280), "logits": torch.randn(2, 1000)}
    same = vi.distill_loss({k: v.clone() for k, v in target.items()}, target)
    assert all(float(v) < 1e-5 for v in same.values())
    other = vi.distill_loss({k: torch.randn_like(v) for k, v in target.items()}, target)
    assert all(float(v) > 0.1 for v in other.values())


def test_distillation_loss_decreases_on_a_tiny_set(tmp_path):
    targets = _fake_targets()
    vi.train_distill(epochs=6, out=tmp_path, batch_size=8, targets=targets, log=_quiet)
    history = json.loads((tmp_path / "card.json").read_text())["loss_history"]
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert len(history) == 6
    assert last < 0.8 * first, history


def test_saved_keys_load_through_build_for_training_and_change_the_model(tmp_path):
    torch.manual_seed(3)
    student = VisualNet(0.25)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = vi.save_student(student, tmp_path, "test", {"epoch": 1, "seconds": 0.0, "history": []}, {})
    keys = set(load_file(str(path)))
    assert keys == {f"visual_net.{k}" for k in VisualNet(0.25).state_dict()}
    config = {"name": "probe", "architecture": "visual-only", "width": 0.25}
    loaded = build_for_training(TrainConfig(**config, init_visual=str(path)), num_classes=5)
    fresh = build_for_training(TrainConfig(**config), num_classes=5)
    for key, value in student.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[f"visual_net.{key}"], value)
    frames = torch.rand(2, 3, SIZE, SIZE)
    loaded.eval(), fresh.eval(), student.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.visual_net(frames)[0], student(frames)[0])
        assert not torch.allclose(loaded.visual_net(frames)[0], fresh.visual_net(frames)[0])
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["method"] == "test" and card["width"] == 0.25
    assert load_student(path)(frames)[0].shape == (2, 128)


def load_student(path):
    with torch.no_grad():
        return vi.load_student(path)


class _Stop(Exception):
    pass


def _cutout_run(out, epochs, stop_at=None, seen=None):
    material = _material()

    def make_batch(epoch, step):
        if seen is not None:
            seen.append(epoch)
        if stop_at is not None and epoch == stop_at:
            raise _Stop
        pairs = [vi.compose_scene(np.random.default_rng([epoch, step, i]), material, size=SIZE) for i in range(4)]
        return vi.to_tensor(np.stack([p[0] for p in pairs])), torch.tensor([p[1] for p in pairs])

    def loss_fn(outputs, labels, head):
        return {"ce": F.cross_entropy(head(outputs[0]), labels)}

    torch.manual_seed(0)
    head = nn.Linear(128, 3)
    return vi._train("cutouts", out, epochs, 2, make_batch, head, loss_fn, log=_quiet)


def test_resume_after_a_stop_continues_at_the_right_epoch_and_matches_an_unbroken_run(tmp_path):
    with pytest.raises(_Stop):
        _cutout_run(tmp_path / "broken", epochs=3, stop_at=1)
    assert json.loads((tmp_path / "broken" / "checkpoint.json").read_text())["state"]["epoch"] == 1
    assert not list((tmp_path / "broken").glob("*.pt")), "nothing is pickled"
    seen: list[int] = []
    resumed = _cutout_run(tmp_path / "broken", epochs=3, seen=seen)
    assert sorted(set(seen)) == [1, 2]
    unbroken = _cutout_run(tmp_path / "unbroken", epochs=3)
    a, b = load_file(str(resumed)), load_file(str(unbroken))
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert json.loads((tmp_path / "broken" / "card.json").read_text())["epochs"] == 3


def test_scenes_have_the_promised_shape_and_labels():
    material = _material()
    rng = np.random.default_rng(0)
    labels = set()
    for _ in range(30):
        scene, label = vi.compose_scene(rng, material, size=SIZE)
        assert scene.shape == (SIZE, SIZE, 3) and scene.dtype == np.uint8
        labels.add(label)
    assert labels == {0, 1, 2}
    assert vi.compose_scene(rng, material, size=SIZE, plain=True)[1] == -1


def test_extras_never_include_heldout_files_or_their_variants(tmp_path, monkeypatch):
    # A drawing held out by an older bank in the cache (roles moved between bank versions) counts as
    # held out, whatever today's manifest says; the cache here is the test's own, not the machine's.
    held = "usr/share/openclipart/svg/animals/mammals/dog_03_drawn_with_strai_01.svg"
    cache = tmp_path / "cache"
    (cache / "bank-v1").mkdir(parents=True)
    (cache / "bank-v1" / "bank.json").write_text(json.dumps(
        {"sprites": [{"package": "openclipart-svg", "path": held, "role": "heldout"}], "backgrounds": []}))
    monkeypatch.setenv("AVDEMO_CACHE", str(cache))
    paths, _ = vi.heldout_exclusions()
    assert held in paths
    base = tmp_path / "openclipart-svg" / "usr/share/openclipart/svg/animals/mammals"
    base.mkdir(parents=True)
    names = ["dog_03_drawn_with_strai_01.svg", "dog_03_drawn_with_strai_02.svg"] + [f"zebra_{i}.svg" for i in range(10)]
    for name in names:
        (base / name).write_text("<svg/>")
    stamps = tmp_path / "tuxpaint-stamps-default" / "usr/share/tuxpaint/stamps"
    stamps.mkdir(parents=True)
    roots = {
        "openclipart-svg": tmp_path / "openclipart-svg",
        "tuxpaint-stamps-default": tmp_path / "tuxpaint-stamps-default",
    }
    extras = vi.list_extras(roots, min_per_category=5, max_per_category=50)
    chosen = {e.path.rsplit("/", 1)[-1] for e in extras}
    assert chosen == {f"zebra_{i}.svg" for i in range(10)}
    assert {e.category for e in extras} == {"openclipart/animals/mammals"}


def test_teacher_loads_offline_and_gives_the_documented_shapes():
    pytest.importorskip("efficientnet_lite_pytorch")
    teacher = vi.load_teacher()
    out = vi.teacher_outputs(teacher, torch.rand(2, 3, SIZE, SIZE))
    assert out["map"].shape == (2, 1280, 2, 2) and out["pooled"].shape == (2, 1280) and out["logits"].shape == (2, 1000)
    assert float(out["map"].min()) >= 0 and float(out["map"].max()) <= 6
    q = vi.projection()
    torch.testing.assert_close(q @ q.T, torch.eye(vi.PROJECTED_CHANNELS), atol=1e-4, rtol=0)


def test_train_bank_drops_material_held_out_in_any_bank_version(tmp_path, monkeypatch):
    """Roles moved between bank versions: a photo that is "train" in one bank but "heldout" in
    another must not be used, nor must a held-out sprite."""
    import cv2

    monkeypatch.setenv("AVDEMO_CACHE", str(tmp_path))
    photo = {"package": "p", "path": "a.jpg"}
    for version, roles in ((1, ("train", "train")), (2, ("heldout", "train"))):
        folder = tmp_path / f"bank-v{version}"
        (folder / "sprites" / "dog").mkdir(parents=True)
        (folder / "backgrounds").mkdir()
        cv2.imwrite(str(folder / "backgrounds" / "a.jpg"), np.full((40, 40, 3), 90, np.uint8))
        cv2.imwrite(str(folder / "backgrounds" / "b.jpg"), np.full((40, 40, 3), 30, np.uint8))
        cv2.imwrite(str(folder / "sprites" / "dog" / "s.png"), np.full((10, 10, 4), 255, np.uint8))
        index = {
            "classes": ["dog"],
            "manifest_sha256": f"m{version}",
            "sprites": [
                {"package": "p", "path": "s.png", "role": "train", "class": "dog", "file": "sprites/dog/s.png"},
                {"package": "p", "path": "h.png", "role": "heldout", "class": "dog", "file": "sprites/dog/s.png"},
            ],
            "backgrounds": [
                {**photo, "role": roles[0], "file": "backgrounds/a.jpg"},
                {"package": "p", "path": "b.jpg", "role": roles[1], "file": "backgrounds/b.jpg"},
            ],
        }
        (folder / "bank.json").write_text(json.dumps(index))
    bank = vi.load_train_bank(tmp_path / "bank-v1", log=_quiet)
    assert len(bank.sprites["dog"]) == 1
    assert [int(b[0, 0, 0]) for b in bank.backgrounds] == [30]
