"""CLIP on RGB-D proposals: class-agnostic regions, named by an open_clip model.

Proposals come from depth (`proposals.py`); each is cropped square, embedded by the
image tower, and compared with the prompt-ensembled text embedding of every query and
of a few negatives ("robot arm", "table", "red object", ...). Scores are a softmax over
those cosine similarities at a temperature fitted on held-out data, so a score is the
probability that the label is right. A proposal that looks more like a negative than
like any query is dropped. With `assignment: unique` each query names at most one
object (a joint assignment, for scenes whose objects differ).

Before the text tower, a query is grounded in the model's training words when the model
says what they were: its colour word in colour space (`fmrobot/colors.py`), its head noun
in the frozen text encoder's space (see `ClipPerceptor.ground`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.cache import content_key, load_tensors, save_tensors
from fmrobot.colors import ColorLexicon
from fmrobot.perception.clip_model import crop_boxes, load_clip, to_tensor
from fmrobot.perception.lifting import lift
from fmrobot.perception.proposals import ProposalConfig, propose
from fmrobot.types import CameraFrame, DetectedObject, Observation, SceneDescription

DEFAULT_TEMPLATES = ("a photo of a {}.", "a {}.", "the {}.")
#: Cache folder of text embeddings, and the version of how they are computed (bump it when
#: `_embed_texts` or grounding changes what they hold).
TEXT_CACHE = "clip-text"
TEXT_CACHE_VERSION = "clip-text-embeddings/1"


class ClipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "tabletop-lit"  # shipped name, model folder, or open_clip name (with `pretrained`)
    pretrained: str | None = None  # open_clip tag or checkpoint file, for open_clip names
    prompt_templates: tuple[str, ...] | None = None  # None: the model's own, else DEFAULT_TEMPLATES
    negatives: tuple[str, ...] | None = None  # None: the model's own, else ("robot arm", "table")
    temperature: float | None = Field(default=None, gt=0.0)  # None: fitted value stored with the model
    min_score: float = Field(default=0.25, ge=0.0, le=1.0)
    assignment: Literal["unique", "best"] = "unique"
    ground_colors: bool = True
    ground_nouns: bool = True  # restate unknown head nouns as the nearest noun of the model's training
    noun_similarity: float = Field(default=0.4, ge=-1.0, le=1.0)  # cosine needed to replace a noun
    crop_margin: float | None = Field(default=None, ge=0.0)  # None: as in training
    camera: str | None = None  # frame to use; the first when None
    threads: int | None = Field(default=1, ge=1)  # torch.set_num_threads (process-wide) when set
    proposals: ProposalConfig = ProposalConfig()
    device: str = "cpu"
    cache_dir: str | None = None  # text embeddings kept between runs; $FMROBOT_CACHE or ~/.cache/fmrobot


class ClipPerceptor:
    Config = ClipConfig
    needs_images = True

    def __init__(self, config: ClipConfig | None = None):
        import torch

        self.config = c = config or ClipConfig()
        if c.threads is not None:
            torch.set_num_threads(c.threads)
        self.clip = load_clip(c.model, c.pretrained, c.device, c.cache_dir)
        meta = self.clip.metadata
        self.templates = tuple(c.prompt_templates or meta.get("prompt_templates") or DEFAULT_TEMPLATES)
        self.negatives = tuple(c.negatives if c.negatives is not None else meta.get("negatives", ("robot arm", "table")))
        self.temperature = float(c.temperature or meta.get("temperature", 0.01))
        self.margin = float(c.crop_margin if c.crop_margin is not None else meta.get("crop_margin", 0.2))
        colors = meta.get("colors")
        self.lexicon = ColorLexicon(colors) if c.ground_colors and colors else None
        self.nouns: dict[str, str] = {n: shape for shape, ns in meta.get("nouns", {}).items() for n in ns}
        self._text_cache: dict[tuple, object] = {}
        self._noun_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ Perceptor

    def perceive(self, obs: Observation, queries: Sequence[str] = ()) -> SceneDescription:
        frame = self._frame(obs)
        labels = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
        candidates = propose(frame, self.config.proposals)
        if not labels or not candidates:
            return SceneDescription(source="clip")
        probabilities = self.score(np.asarray(frame.rgb), [p.box for p in candidates], labels)
        chosen = choose_labels(probabilities, len(labels), self.config.assignment, self.config.min_score)
        objects: list[DetectedObject] = []
        for proposal_index, label_index, score in chosen:
            proposal = candidates[proposal_index]
            objects.append(lift(proposal.points, labels[label_index], score, box_2d=proposal.box, camera=frame.name))
        objects.sort(key=lambda o: (-o.score, o.label))
        return SceneDescription(objects=tuple(objects), source="clip")

    def score(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[str]) -> np.ndarray:
        """(boxes, labels + negatives) probabilities: softmax of cosine similarity / temperature."""
        import torch

        crops = crop_boxes(rgb, boxes, self.clip.image_size, self.margin)
        with torch.inference_mode():
            image = self.clip.encode_image(to_tensor(crops, self.clip.mean, self.clip.std).to(self.config.device))
            text = torch.cat([self.text_embeddings(labels), self.text_embeddings(self.negatives, ground=False)])
            logits = (image @ text.T).float().cpu().numpy() / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def text_embeddings(self, labels: Sequence[str], ground: bool = True):
        """Prompt-ensembled unit text embeddings, cached per label list in memory and on disk.

        A task's vocabulary is the same every run, so its embeddings are read from the cache
        (fmrobot/cache.py) instead of running the text tower, which then never loads."""
        key = (ground, *labels)
        if key not in self._text_cache:
            disk_key = self._disk_key(labels, ground)
            stored = load_tensors(TEXT_CACHE, disk_key, self.config.cache_dir) if disk_key else None
            if stored is not None and "embedding" in stored:
                embedding = stored["embedding"].to(self.config.device)
            else:
                embedding = self._embed_texts(labels, ground)
                if disk_key:
                    save_tensors(TEXT_CACHE, disk_key, {"embedding": embedding}, self.config.cache_dir)
            if len(self._text_cache) > 32:
                self._text_cache.clear()
            self._text_cache[key] = embedding
        return self._text_cache[key]

    def _embed_texts(self, labels: Sequence[str], ground: bool):
        import torch

        grounded = [self.ground(label) for label in labels] if ground else list(labels)
        with torch.inference_mode():
            per_template = [
                self.clip.model.encode_text(self.clip.tokenizer([t.format(g) for g in grounded]).to(self.config.device),
                                            normalize=True)
                for t in self.templates
            ]
            return torch.nn.functional.normalize(torch.stack(per_template).mean(0), dim=-1)

    def _disk_key(self, labels: Sequence[str], ground: bool) -> str | None:
        """Everything the embeddings of `labels` follow from: the model's files and the libraries
        that run it (`clip.text_key`), the prompts, how labels are grounded, this code's version."""
        if self.clip.text_key is None:
            return None
        c = self.config
        grounding = [c.ground_colors, c.ground_nouns, c.noun_similarity] if ground else None
        return content_key(TEXT_CACHE_VERSION, self.clip.text_key, self.templates, grounding, list(labels))

    def ground(self, label: str) -> str:
        """A query restated in words the image tower was trained against: colour words through
        the colour lexicon, an unknown head noun ("cube") as the nearest training noun
        ("block") in the frozen text encoder's own space, where MiniLM does know synonyms."""
        if self.lexicon is not None:
            label = self.lexicon.ground(label)
        if not self.nouns or not self.config.ground_nouns:
            return label
        words = label.split()
        if not words or words[-1] in self.nouns:
            return label
        return " ".join(words[:-1] + [self._nearest_noun(words[-1])])

    def _nearest_noun(self, noun: str) -> str:
        if noun not in self._noun_cache:
            import torch

            from fmrobot.perception.clip_model import frozen_text_features

            known = list(self.nouns)
            features = torch.nn.functional.normalize(frozen_text_features(
                self.clip.model, self.clip.tokenizer, [f"a {w}" for w in [noun, *known]]), dim=-1)
            similarity = (features[1:] @ features[0]).tolist()
            best = max(range(len(known)), key=similarity.__getitem__)
            # Only a close synonym is replaced; an unrelated noun ("mug") keeps its own meaning.
            self._noun_cache[noun] = self.nouns[known[best]] if similarity[best] >= self.config.noun_similarity else noun
        return self._noun_cache[noun]

    def _frame(self, obs: Observation) -> CameraFrame:
        if not obs.frames:
            raise ValueError("clip perception needs camera frames; the observation has none")
        if self.config.camera is None:
            return obs.frames[0]
        try:
            return obs.frame(self.config.camera)
        except KeyError as error:
            raise ValueError(f"clip perception: {error.args[0]}") from None


def choose_labels(probabilities: np.ndarray, n_labels: int, assignment: str,
                  min_score: float) -> list[tuple[int, int, float]]:
    """(proposal, label, probability) triples.

    Columns past `n_labels` are negatives: a proposal whose best column is a negative is
    not an object. `unique` solves the assignment of labels to proposals that maximizes
    the summed log-probability, so two proposals never share a label.
    """
    if probabilities.size == 0:
        return []
    queries = probabilities[:, :n_labels]
    is_object = queries.max(axis=1) >= probabilities[:, n_labels:].max(axis=1, initial=0.0)
    rows = np.flatnonzero(is_object)
    if assignment == "unique" and len(rows):
        from scipy.optimize import linear_sum_assignment

        cost = -np.log(np.clip(queries[rows], 1e-12, 1.0))
        picked_rows, picked_cols = linear_sum_assignment(cost)
        pairs = [(int(rows[r]), int(c)) for r, c in zip(picked_rows, picked_cols)]
    else:
        pairs = [(int(r), int(queries[r].argmax())) for r in rows]
    return [(r, c, float(queries[r, c])) for r, c in pairs if queries[r, c] >= min_score]
