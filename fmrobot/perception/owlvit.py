"""OWL-ViT / OWLv2 open-vocabulary detection, lifted to the world through the depth camera.

The detector scores every image patch's box against the text queries; the best query
per box above `score_threshold` survives class-aware NMS. Each box is lifted with the
shared proposal code: only the pixels inside it that stand on the table (the
`proposals.foreground` mask) become the object's points, so the table behind an object
never drags its position down. A box with (almost) no foreground holds no tabletop
object (table, robot, floor) and is dropped.

This module imports torch and transformers; it is imported only when `perception=owlvit`
is selected.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fmrobot.errors import ConfigError
from fmrobot.hub import check_hub_model
from fmrobot.perception import proposals
from fmrobot.perception.lifting import lift
from fmrobot.perception.proposals import ProposalConfig
from fmrobot.types import CameraFrame, DetectedObject, Observation, SceneDescription

if TYPE_CHECKING:  # torch and transformers load when a model is built (fmrobot/hub.py checks its source first)
    import torch

#: config.json `model_type` -> (model class, processor class) in transformers, imported when a model loads
_CLASSES = {
    "owlvit": ("OwlViTForObjectDetection", "OwlViTProcessor"),
    "owlv2": ("Owlv2ForObjectDetection", "Owlv2Processor"),
}
_MIN_VOCABULARY = 100  # offline, a tokenizer without its files loads with 2-3 special tokens
_TEXT_CACHE_SIZE = 16  # query lists remembered; the runner asks with the same vocabulary every time


class OwlVitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "google/owlvit-base-patch32"  # hub id or a local save_pretrained directory; OWLv2 works too
    score_threshold: float = Field(default=0.1, ge=0.0, le=1.0)  # sigmoid score of the best query per box
    nms_iou: float = Field(default=0.3, gt=0.0, le=1.0)  # boxes of one label overlapping more are one object
    max_detections: int = Field(default=20, ge=1)  # objects returned, best first
    prompt_templates: tuple[str, ...] = ("a photo of a {}.",)  # text embeddings averaged per query
    camera: str | None = None  # frame to detect in; the first when None
    min_points: int = Field(default=10, ge=1)  # foreground pixels a box needs to be lifted
    threads: int | None = Field(default=1, ge=1)  # torch.set_num_threads (process-wide) when set
    proposals: ProposalConfig = ProposalConfig()  # table plane and workspace used for lifting
    device: str = "cpu"

    @field_validator("prompt_templates")
    @classmethod
    def _templates_have_a_slot(cls, templates: tuple[str, ...]) -> tuple[str, ...]:
        if not templates:
            raise ValueError("give at least one template, e.g. 'a photo of a {}.'")
        for template in templates:
            if template.count("{}") != 1:
                raise ValueError(f"template {template!r} needs exactly one '{{}}' where the query goes")
        return templates


class Detection(NamedTuple):
    query: int  # index into the query list
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the original image


class OwlVitPerceptor:
    Config = OwlVitConfig
    needs_images = True

    @classmethod
    def check_sources(cls, config: OwlVitConfig) -> None:
        """Before anything is built: a hub id that cannot be loaded here fails in seconds, not minutes."""
        check_hub_model(config.model, "perception.model")

    def __init__(self, config: OwlVitConfig | None = None):
        import torch

        self.config = config or OwlVitConfig()
        self.check_sources(self.config)
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        self.model, self.processor = load(self.config.model, self.config.device)
        # OWLv2 pads the image to a square (bottom and right) before resizing; OWL-ViT stretches it.
        self.padded_square = bool(getattr(self.processor.image_processor, "do_pad", False))
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}

    # ------------------------------------------------------------------ pipeline

    def perceive(self, obs: Observation, queries: Sequence[str] = ()) -> SceneDescription:
        frame = self._frame(obs)
        labels = list(dict.fromkeys(q for q in queries if q.strip()))  # unique, in order
        if not labels:
            return SceneDescription(source="owlvit")
        detections = self.detect(np.asarray(frame.rgb), labels)
        objects = lift_detections(frame, detections, labels, self.config.proposals, self.config.min_points,
                                  self.config.max_detections)
        return SceneDescription(objects=tuple(objects), source="owlvit")

    def detect(self, rgb: np.ndarray, labels: Sequence[str]) -> list[Detection]:
        """2-D detections in pixels of `rgb`, best first, not yet capped (lifting drops some)."""
        logits, boxes = self._predict(rgb, labels)
        height, width = rgb.shape[:2]
        pixel_boxes = to_pixel_boxes(boxes, width, height, self.padded_square)
        return select_detections(logits.sigmoid(), pixel_boxes, self.config.score_threshold, self.config.nms_iou)

    def _predict(self, rgb: np.ndarray, labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw model output: logits (boxes, queries) and boxes (boxes, 4) as normalised cx, cy, w, h."""
        import torch

        device = self.config.device
        rgb = np.require(rgb, np.uint8, ["W"])  # frames are read-only; torch warns on those
        with torch.inference_mode():
            pixels = self.processor.image_processor(images=rgb, return_tensors="pt")["pixel_values"].to(device)
            # The detection forward split in its steps, so one image pass serves ensembled text queries.
            feature_map, _ = self.model.image_embedder(pixel_values=pixels)
            batch, rows, cols, dim = feature_map.shape
            features = feature_map.reshape(batch, rows * cols, dim)
            queries = self._query_embeddings(labels).to(device)
            logits, _ = self.model.class_predictor(features, queries[None], None)
            boxes = self.model.box_predictor(features, feature_map)
        return logits[0].float().cpu(), boxes[0].float().cpu()

    def _query_embeddings(self, labels: Sequence[str]) -> torch.Tensor:
        """(queries, dim) text embeddings: the mean of each query's unit-norm template embeddings.

        Prompt ensembling as CLIP and OWL-ViT do it, in embedding space: one text pass
        for all templates and one image pass, instead of one detector pass per template.
        """
        import torch

        key = tuple(labels)
        if key in self._text_cache:
            return self._text_cache[key]
        templates = self.config.prompt_templates
        prompts = [template.format(label) for label in labels for template in templates]
        tokens = self.processor.tokenizer(
            prompts,
            padding="max_length",
            truncation=True,
            max_length=self.model.config.text_config.max_position_embeddings,
            return_tensors="pt",
        ).to(self.config.device)
        with torch.inference_mode():
            output = self.model.base_model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
        embeddings = output if isinstance(output, torch.Tensor) else output.pooler_output
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        # The class head re-normalises the queries, so the mean needs no normalising here.
        embeddings = embeddings.reshape(len(labels), len(templates), -1).mean(dim=1)
        if len(self._text_cache) >= _TEXT_CACHE_SIZE:
            self._text_cache.clear()
        self._text_cache[key] = embeddings
        return embeddings

    def _frame(self, obs: Observation) -> CameraFrame:
        if not obs.frames:
            raise ValueError("owlvit perception needs camera frames; the observation has none")
        if self.config.camera is None:
            return obs.frames[0]
        try:
            return obs.frame(self.config.camera)
        except KeyError as error:
            raise ValueError(f"owlvit perception: {error.args[0]}") from None


# --------------------------------------------------------------------------- loading


def load(model: str, device: str = "cpu") -> tuple[torch.nn.Module, object]:
    """The detector and its processor; a one-line ConfigError when they cannot be used."""
    import transformers

    try:
        model_type = transformers.AutoConfig.from_pretrained(model).model_type
    except Exception as error:
        raise ConfigError(_load_failure(model, error)) from error
    if model_type not in _CLASSES:
        raise ConfigError(
            f"perception owlvit: {model!r} holds a {model_type!r} model, not OWL-ViT or OWLv2 "
            f"(model_type {' or '.join(map(repr, _CLASSES))})"
        )
    model_class, processor_class = (getattr(transformers, name) for name in _CLASSES[model_type])
    try:
        detector = model_class.from_pretrained(model).to(device).eval()
        processor = processor_class.from_pretrained(model)
    except Exception as error:
        raise ConfigError(_load_failure(model, error)) from error
    vocabulary = len(processor.tokenizer)
    if vocabulary < _MIN_VOCABULARY:
        raise ConfigError(
            f"perception owlvit: the tokenizer of {model!r} loaded with a vocabulary of {vocabulary} tokens: "
            "its files (tokenizer.json, or vocab.json and merges.txt) are missing and the Hugging Face hub "
            "is unreachable offline; save the processor into the model directory"
        )
    return detector, processor


def _load_failure(model: str, error: Exception) -> str:
    if _looks_local(model) and not os.path.isdir(os.path.expanduser(model)):
        reason = "no such directory"
    else:
        lines = str(error).strip().splitlines() or [""]
        reason = f"{type(error).__name__}: {lines[0][:160]}"
    return (
        f"perception owlvit: cannot load model {model!r} ({reason}); a hub id needs the Hugging Face hub, "
        "which is unreachable offline unless the model is cached; set `model` to a local directory "
        "written by save_pretrained (model and processor)"
    )


def _looks_local(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or os.path.exists(model) or model.count("/") > 1


# --------------------------------------------------------------------------- post-processing


def to_pixel_boxes(boxes: torch.Tensor, width: int, height: int, padded_square: bool) -> torch.Tensor:
    """Normalised (cx, cy, w, h) boxes to x0, y0, x1, y1 pixels of the original image, clipped to it.

    OWLv2 pads the image at the bottom and right to a square of its longer side, so both
    axes scale by that side; OWL-ViT resizes without padding, so each axis scales by its own.
    """
    import torch

    cx, cy, w, h = boxes.float().unbind(-1)
    scale_x, scale_y = (max(width, height),) * 2 if padded_square else (width, height)
    corners = torch.stack([(cx - w / 2) * scale_x, (cy - h / 2) * scale_y,
                           (cx + w / 2) * scale_x, (cy + h / 2) * scale_y], dim=-1)
    limits = torch.tensor([width, height, width, height], dtype=corners.dtype)
    return torch.minimum(corners.clamp(min=0.0), limits)


def select_detections(scores: torch.Tensor, boxes: torch.Tensor, score_threshold: float, nms_iou: float,
                      max_detections: int | None = None) -> list[Detection]:
    """Best query per box, at least `score_threshold`, class-aware NMS; best first.

    scores: (boxes, queries) probabilities; boxes: (boxes, 4) x0, y0, x1, y1.
    """
    from torchvision.ops import batched_nms

    if scores.numel() == 0:
        return []
    best, query = scores.max(dim=1)
    keep = best >= score_threshold
    best, query, boxes = best[keep], query[keep], boxes[keep].float()
    order = batched_nms(boxes, best.float(), query, nms_iou)  # indices by decreasing score
    if max_detections is not None:
        order = order[:max_detections]
    return [
        Detection(query=int(query[i]), score=float(best[i]), box=tuple(float(v) for v in boxes[i]))
        for i in order.tolist()
    ]


def lift_detections(frame: CameraFrame, detections: Sequence[Detection], labels: Sequence[str],
                    config: ProposalConfig, min_points: int = 10,
                    max_detections: int | None = None) -> list[DetectedObject]:
    """World objects from 2-D boxes: the foreground points inside each box, through `lifting.lift`.

    Boxes with fewer than `min_points` foreground pixels are skipped: nothing stands on the
    table there. The cap applies after that, so empty boxes do not take an object's place.
    """
    mask, points, _ = proposals.foreground(frame, config)  # once per frame, shared by all boxes
    height, width = mask.shape
    objects = []
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        c0, r0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        c1, r1 = min(int(math.ceil(x1)), width), min(int(math.ceil(y1)), height)
        cloud = points[r0:r1, c0:c1][mask[r0:r1, c0:c1]]
        if len(cloud) < min_points:
            continue
        objects.append(lift(cloud.astype(np.float64), labels[detection.query], detection.score,
                            box_2d=detection.box, camera=frame.name))
        if max_detections is not None and len(objects) >= max_detections:
            break
    return objects
