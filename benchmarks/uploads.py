"""What a person sees on an upload: the app's image + sound path on real recordings the zoo
never heard.

For every held-out recording of the asset bank, compose the upload a visitor would make: a PNG
(a held-out sprite of the recording's class pasted on a held-out background photo, at a
position that varies by upload) and the recording as a WAV file. Each pair goes through the
Run button's own steps (`load_input`, then `run` with the page's default settings: PGD-10 on
both modalities, audio 0.006, pixels 2/255, seed 0) on each model asked for. An upload has no
ground truth, so the attack pushes away from the model's own clean prediction, as on the page:
a wrong clean guess can turn right under attack. Prints per upload the clean and attacked top-1 and whether the map's peak lies on the pasted object (frame 1; a
still image repeats one frame), then the totals. Needs the asset bank (`make zoo` builds it).

    python benchmarks/uploads.py [--models av-attention av-concat] [--out runs/uploads]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avdemo.data.bank import load_bank
from avdemo.lab.analysis import NO_DEFENSE, run
from avdemo.lab.ui import attack_settings, load_input, model_frames
from avdemo.measures.localization import pointing_game

SIZE = 224  # the model's frame size: the composed image needs no resizing, so the box is exact
SPRITE_SHARE = 0.45  # the sprite's longer side as a share of the frame
CORNERS = ((0.25, 0.3), (0.72, 0.35), (0.3, 0.72), (0.7, 0.7))  # sprite centres (x, y) as shares


def compose_image(background: np.ndarray, sprite_rgba: np.ndarray, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """background `(h, w, 3)` uint8 and sprite `(h, w, 4)` uint8 -> the `(SIZE, SIZE, 3)` uint8
    image with the sprite alpha-blended at `centre`, and the sprite's visible box (x0, y0, x1, y1)."""
    image = cv2.resize(background, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    scale = SPRITE_SHARE * SIZE / max(sprite_rgba.shape[:2])
    sprite = cv2.resize(sprite_rgba, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
    h, w = sprite.shape[:2]
    x0 = int(np.clip(centre[0] * SIZE - w / 2, 0, SIZE - w))
    y0 = int(np.clip(centre[1] * SIZE - h / 2, 0, SIZE - h))
    alpha = sprite[..., 3:] / 255
    region = image[y0:y0 + h, x0:x0 + w]
    image[y0:y0 + h, x0:x0 + w] = alpha * sprite[..., :3] + (1 - alpha) * region
    ys, xs = np.nonzero(sprite[..., 3] > 127)
    box = np.array([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], dtype=np.float32)
    return image.round().astype(np.uint8), box


def write_uploads(out: Path) -> list[dict]:
    """One (image, sound, class, box) upload per held-out recording of the bank."""
    bank = load_bank()
    backgrounds = bank.backgrounds["heldout"]
    uploads = []
    for label, sounds in sorted(bank.recordings["heldout"].items()):
        sprites = bank.sprites["heldout"].get(label) or bank.sprites["train"][label]
        for sound in sounds:
            index = len(uploads)
            image, box = compose_image(backgrounds[index % len(backgrounds)].rgb, sprites[index % len(sprites)].rgba,
                                       CORNERS[index % len(CORNERS)])
            image_path = out / f"{index:02d}-{label}.png"
            cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            sound_path = bank.root / next(item["file"] for item in bank.index["recordings"] if item["id"] == sound.id)
            uploads.append({"label": label, "image": image_path, "sound": sound_path, "box": box, "recording": sound.id})
    return uploads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["av-attention"])
    parser.add_argument("--out", type=Path, default=None, help="where to keep the composed uploads (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="avdemo-uploads-"))
    out.mkdir(parents=True, exist_ok=True)
    uploads = write_uploads(out)
    settings = attack_settings("both", 0.006, 2, 10, 0, False)
    print(f"{len(uploads)} uploads (held-out recordings, held-out sprites on held-out photos) in {out}")
    for model in args.models:
        frames = model_frames(model)
        counts = {"clean": 0, "attacked": 0, "map": 0, "maps": 0}
        seconds = []
        print(f"\n{model} (T = {frames}), default Run: PGD-10 both, audio 0.006, pixels 2/255")
        print(f"{'recording':32s} {'class':16s} {'clean':16s} {'attacked':16s} map on object")
        for upload in uploads:
            started = time.perf_counter()
            clip, _ = load_input(None, str(upload["image"]), str(upload["sound"]), frames)
            analysis = run(clip, model, NO_DEFENSE, "pgd", settings)
            seconds.append(time.perf_counter() - started)
            clean = analysis.classes[int(analysis.clean_probabilities.argmax())]
            attacked = analysis.classes[int(analysis.attacked_probabilities.argmax())]
            counts["clean"] += clean == upload["label"]
            counts["attacked"] += attacked == upload["label"]
            on_object = "–"
            if analysis.clean_maps is not None:
                hit = bool(pointing_game(analysis.clean_maps[:1], upload["box"][None])[0])
                counts["map"] += hit
                counts["maps"] += 1
                on_object = "yes" if hit else "no"
            print(f"{upload['recording']:32s} {upload['label']:16s} {clean:16s} {attacked:16s} {on_object}")
        n = len(uploads)
        print(f"clean top-1 right on {counts['clean']} of {n}; after the attack (away from the clean guess) {counts['attacked']} of {n}; "
              + (f"clean map's peak on the object {counts['map']} of {counts['maps']}; " if counts["maps"] else "")
              + f"server time per upload median {np.median(seconds):.2f} s (decode + attack + measures, no rendering)")


if __name__ == "__main__":
    main()
