"""Train the tabletop LiT model: a small image tower against a frozen sentence encoder.

    python -m sims.datasets.perception_crops --out data/crops --scenes 1500 --seed 0 \
        --exclude purple:bowl --exclude orange:block --exclude pink:bowl --exclude brown:block
    python -m fmrobot.perception.train_lit --data data/crops --out fmrobot/perception/weights/tabletop-lit \
        --steps 1500 --seed 0

LiT (Zhai et al., 2022) locks one pretrained tower and tunes the other to meet it; here
the locked tower is the text one: all-MiniLM-L6-v2 stays frozen, so phrases the training
captions never used still land where the encoder puts them, and the image tower and
both projections learn to meet it. The loss is CLIP's softmax over a bank holding one
freshly sampled caption per class, so images of one class never count as each other's
negatives. Distractors (random meshes, cylinders, balls) come in every colour and are
captioned with colour and shape ("a pink cylinder"), so that colour and shape vary
independently in training; that is what lets colour-shape pairs never seen in training
be named. (Shape-only captions on grayscale crops, and colour-only captions, were tried
and generalized worse to unseen pairs.) The temperature
of the scores is then fitted on held-out scenes (lowest negative log-likelihood), which
is what makes the perceptor's scores calibrated probabilities.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from fmrobot.perception.clip_model import (
    crop_boxes,
    frozen_text_features,
    lit_model_config,
    register_config,
    save_folder,
    to_tensor,
)

#: Nouns used for each shape in training captions (held-out ones live in benchmarks/heldout_phrases.py).
SHAPE_NOUNS = {"block": ("block",), "bowl": ("bowl",)}
OBJECT_CAPTIONS = ("a {color} {noun}", "the {color} {noun}", "{color} {noun}", "a photo of a {color} {noun}",
                   "a {color} {noun} on a table", "a {noun} that is {color}")
NEGATIVE_CAPTIONS = {
    "robot": ("a robot arm", "a robot gripper", "part of a robot"),
    "table": ("the table", "an empty table", "a wooden table top"),
    "distractor": ("a {color} {shape}", "the {color} {shape}", "a photo of a {color} {shape}"),
}
#: What the perceptor compares crops with, per query label ("red block") or negative.
PROMPT_TEMPLATES = ("a {}", "the {}", "a photo of a {}", "a {} on a table")
CROP_MARGIN = 0.2


def class_of(record: dict) -> str:
    if record["kind"] == "object":
        return f"{record['color']} {record['shape']}"
    if record["kind"] == "distractor":
        # Distractors of every colour and several shapes keep colour and shape apart in training.
        return f"{record['color']} {record['shape']}"
    return record["kind"]


def captions_of(name: str, record: dict) -> list[str]:
    kind = record["kind"]
    if kind == "object":
        return [t.format(color=record["color"], noun=noun) for t in OBJECT_CAPTIONS
                for noun in SHAPE_NOUNS[record["shape"]]]
    if kind == "distractor":
        return [t.format(color=record["color"], shape=record["shape"]) for t in NEGATIVE_CAPTIONS[kind]]
    return list(NEGATIVE_CAPTIONS[kind])


def negative_prompts(colors) -> list[str]:
    """Labels the perceptor also scores so that non-objects can lose to something."""
    return ["robot arm", "table", "object", "cylinder", "ball"]


def load_dataset(folder: Path):
    from PIL import Image

    records = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    images = [np.asarray(Image.open(folder / "images" / r["file"]).convert("RGB")) for r in records]
    meta = json.loads((folder / "meta.json").read_text())
    return records, images, meta


def augment_boxes(rng: np.random.Generator, boxes: np.ndarray) -> np.ndarray:
    """Jitter ground-truth boxes the way proposals err: shifted, grown or shrunk."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.maximum(w, h)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.normal(0, 0.07, len(boxes)) * size
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.normal(0, 0.07, len(boxes)) * size
    scale = rng.uniform(0.9, 1.2, len(boxes))
    hw, hh = w * scale / 2, h * scale / 2
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)


def make_batch(rng, images, records, indices, size, margin):
    boxes = augment_boxes(rng, np.array([records[i]["box"] for i in indices], float))
    crops = np.concatenate([crop_boxes(images[i], [box], size, margin) for i, box in zip(indices, boxes)])
    crops = crops.astype(np.float32) * rng.uniform(0.8, 1.2, (len(indices), 1, 1, 1))  # brightness
    flip = rng.random(len(indices)) < 0.5
    crops[flip] = crops[flip, :, ::-1]
    return np.clip(crops, 0, 255).astype(np.uint8)


def prompt_embeddings(clip, tokenizer, labels: list[str]):
    """Prompt-ensembled, normalized text embeddings, as the perceptor computes them."""
    import torch

    with torch.no_grad():
        per_template = [clip.encode_text(tokenizer([t.format(label) for label in labels]), normalize=True)
                        for t in PROMPT_TEMPLATES]
        return torch.nn.functional.normalize(torch.stack(per_template).mean(0), dim=-1)


def fit_temperature(similarity: np.ndarray, targets: np.ndarray) -> float:
    """The softmax temperature with the lowest negative log-likelihood on held-out crops."""
    best, best_nll = 0.05, math.inf
    for t in np.geomspace(0.003, 0.3, 60):
        z = similarity / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -(z[np.arange(len(z)), targets] - np.log(np.exp(z).sum(axis=1))).mean()
        if nll < best_nll:
            best, best_nll = float(t), float(nll)
    return best


def evaluate(clip, tokenizer, images, records, indices, labels, size, margin, mean, std, batch=256):
    """Cosine similarities of held-out crops (untouched boxes) to every label's prompts."""
    import torch

    text = prompt_embeddings(clip, tokenizer, labels)
    sims = []
    with torch.no_grad():
        for start in range(0, len(indices), batch):
            chunk = indices[start:start + batch]
            crops = np.concatenate([crop_boxes(images[i], [records[i]["box"]], size, margin) for i in chunk])
            features = clip.encode_image(to_tensor(crops, mean, std), normalize=True)
            sims.append((features @ text.T).numpy())
    return np.concatenate(sims) if sims else np.zeros((0, len(labels)))


def train(args: argparse.Namespace) -> dict:
    import open_clip
    import torch
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    records, images, data_meta = load_dataset(args.data)
    classes = sorted({class_of(r) for r in records})
    class_index = {c: i for i, c in enumerate(classes)}
    val_scene = np.array([r["scene"] % args.val_every == 0 for r in records])
    train_idx = np.flatnonzero(~val_scene)
    val_idx = np.flatnonzero(val_scene)

    model_cfg = lit_model_config(embed_dim=args.embed_dim, image_size=args.image_size, vision=args.vision)
    from fmrobot.perception.clip_model import _with_local_text_tower

    name = register_config("fmrobot-lit-train", _with_local_text_tower(model_cfg))
    clip = open_clip.create_model(name)
    clip.lock_text_tower()
    tokenizer = open_clip.get_tokenizer(name)
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD

    example = {c: next(r for r in records if class_of(r) == c) for c in classes}
    banks = {"full": {c: captions_of(c, example[c]) for c in classes}}  # bank -> {class: captions}
    flat = [(bank, c, text) for bank, members in banks.items() for c, texts in members.items() for text in texts]
    pooled = frozen_text_features(clip, tokenizer, [text for _, _, text in flat])
    rows = {(bank, c): [i for i, (b, cc, _) in enumerate(flat) if (b, cc) == (bank, c)] for bank, c, _ in flat}
    targets = {
        "full": np.array([class_index[class_of(r)] for r in records]),
    }

    params = [p for p in clip.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    warmup = min(100, args.steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    started = time.time()
    clip.train()
    clip.text.eval()  # frozen tower: keep dropout off
    bar = tqdm(range(args.steps), desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        batch = rng.choice(train_idx, size=args.batch, replace=False)
        crops = make_batch(rng, images, records, batch, args.image_size, CROP_MARGIN)
        inputs = {"full": (crops, batch)}
        scale = clip.logit_scale.exp().clamp(max=100)
        loss = 0.0
        for bank, members in banks.items():
            pixels, which = inputs[bank]
            image = clip.encode_image(to_tensor(pixels, mean, std), normalize=True)
            pick = [rows[(bank, c)][int(rng.integers(len(rows[(bank, c)])))] for c in members]
            text = torch.nn.functional.normalize(clip.text.proj(pooled[pick]), dim=-1)
            loss = loss + torch.nn.functional.cross_entropy(scale * image @ text.T,
                                                            torch.from_numpy(targets[bank][which]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{clip.logit_scale.exp().item():.1f}")
    clip.eval()

    colors = data_meta["colors"]
    objects = [c for c in classes if c.split(" ")[-1] in data_meta["shapes"]]
    labels = objects + negative_prompts(colors)
    val_objects = [i for i in val_idx if records[i]["kind"] == "object"]
    sims = evaluate(clip, tokenizer, images, records, val_objects, labels, args.image_size, CROP_MARGIN, mean, std)
    truth = np.array([labels.index(class_of(records[i])) for i in val_objects])
    accuracy = float((sims.argmax(axis=1) == truth).mean()) if len(truth) else float("nan")
    all_val = evaluate(clip, tokenizer, images, records, list(val_idx), labels, args.image_size, CROP_MARGIN,
                       mean, std)
    val_truth = np.array([labels.index(_label_of(records[i])) for i in val_idx])
    temperature = fit_temperature(all_val, val_truth)
    metadata = {
        "colors": colors,
        "shapes": data_meta["shapes"],
        "nouns": {shape: list(nouns) for shape, nouns in SHAPE_NOUNS.items()},
        "negatives": negative_prompts(colors),
        "prompt_templates": list(PROMPT_TEMPLATES),
        "temperature": temperature,
        "crop_margin": CROP_MARGIN,
        "training": {
            "command": "python -m fmrobot.perception.train_lit " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "data": {k: data_meta[k] for k in ("scenes", "views", "seed", "exclude", "crops")},
            "classes": classes, "train_crops": int(len(train_idx)), "val_crops": int(len(val_idx)),
            "val_object_accuracy": accuracy, "minutes": round((time.time() - started) / 60, 1),
        },
    }
    save_folder(args.out, clip, model_cfg, metadata,
                preprocess_cfg={"size": args.image_size, "mean": list(mean), "std": list(std)})
    return metadata


def _label_of(record: dict) -> str:
    """The label a perceptor should give this crop: its class, or the negative it falls under."""
    if record["kind"] == "robot":
        return "robot arm"
    if record["kind"] == "distractor":
        return record["shape"]
    return class_of(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder written by sims.datasets.perception_crops")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--vision", default="mobilenetv3_small_050", help="timm model name of the image tower")
    parser.add_argument("--val-every", type=int, default=10, help="every n-th scene is held out for validation")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    metadata = train(args)
    t = metadata["training"]
    print(f"validation accuracy on seen objects {t['val_object_accuracy']:.3f}; temperature "
          f"{metadata['temperature']:.4f}; {t['minutes']} min -> {args.out}")


if __name__ == "__main__":
    main()
