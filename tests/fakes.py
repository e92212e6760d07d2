"""Fakes and helpers in one place: scripted components that fail on cue, config composition."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Sequence

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.types import Action, Observation, SceneDescription, SkillCall, SkillStatus


def compose_config(overrides: Sequence[str], name: str = "run") -> dict:
    """Compose the packaged Hydra config `name` (run, collect, train) with overrides, resolved to plain containers."""
    from fmrobot.compose import compose_plain

    return compose_plain(name, overrides)


class FlakyPolicy(ScriptedPolicy):
    """The scripted policy, except that the first `failures` skill calls fail after three steps."""

    def __init__(self, failures: int = 1, steps_before_failing: int = 3):
        super().__init__()
        self.failures_left = failures
        self.steps_before_failing = steps_before_failing
        self.calls: list[str] = []
        self._countdown: int | None = None

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        self.calls.append(str(call))
        super().reset(call, scene, obs)
        self._countdown = None
        if self.failures_left > 0:
            self.failures_left -= 1
            self._countdown = self.steps_before_failing

    def status(self, obs: Observation) -> SkillStatus:
        if self._countdown is not None:
            return SkillStatus.FAILURE if self._countdown <= 0 else SkillStatus.RUNNING
        return super().status(obs)

    def act(self, obs: Observation) -> Action:
        if self._countdown is not None:
            self._countdown -= 1
        return super().act(obs)

    def failure_reason(self) -> str:
        return "injected failure" if self._countdown is not None else super().failure_reason()


# --------------------------------------------------------------------------- tiny offline models

OWL_IMAGE_SIZE = 64  # model input: a 4 x 4 grid of 16-pixel patches, 16 boxes
OWL_TEXT_LENGTH = 16  # OWL-ViT's text context


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte -> printable character map (byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def clip_tokenizer(folder: Path):
    """The real CLIP tokenizer from open_clip's shipped BPE file, as CLIP's tokenizer defines it."""
    import open_clip
    from transformers import CLIPTokenizer

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # transformers 5's CLIPTokenizer(vocab_file, merges_file) silently builds a 2-token vocabulary;
    # from_pretrained on the folder reads both files.
    return CLIPTokenizer.from_pretrained(folder, model_max_length=OWL_TEXT_LENGTH)


def save_tiny_owlvit(kind: str, folder: Path, tokenizer) -> Path:
    """A tiny random OWL-ViT (`kind='owlvit'`) or OWLv2 (`'owlv2'`) with its processor, saved to `folder`."""
    import torch
    from transformers import (Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor,
                              OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor)

    torch.manual_seed(0)
    layers = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    text = dict(layers, vocab_size=len(tokenizer), max_position_embeddings=OWL_TEXT_LENGTH)
    vision = dict(layers, image_size=OWL_IMAGE_SIZE, patch_size=16)
    size = {"height": OWL_IMAGE_SIZE, "width": OWL_IMAGE_SIZE}
    if kind == "owlvit":
        model = OwlViTForObjectDetection(OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32))
        processor = OwlViTProcessor(image_processor=OwlViTImageProcessor(size=size, crop_size=size), tokenizer=tokenizer)
    else:
        model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32))
        processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size=size), tokenizer=tokenizer)
    # Random box heads saturate to zero-size boxes in a corner; zeroed, each box sits on its grid
    # cell (the model's box prior). Zeroing the logit shift keeps scores near 0.5 (random ones
    # are mostly far below any threshold). Then random detections reach the lifting.
    with torch.no_grad():
        for layer in (model.box_head.dense2, model.class_head.logit_shift):
            layer.weight.zero_()
            layer.bias.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_tiny_clip(folder: Path, colors: dict | None = None) -> Path:
    """A tiny random open_clip model (open_clip's own text tower and BPE) in the local-dir layout."""
    import open_clip
    import torch

    from fmrobot.perception.clip_model import register_config, save_folder

    torch.manual_seed(0)
    name = register_config("fmrobot-test-tiny-clip", TINY_CLIP_CONFIG)
    model = open_clip.create_model(name)
    metadata = {"temperature": 0.05, "crop_margin": 0.2, "negatives": ["robot arm", "table"]}
    if colors:
        metadata["colors"] = colors
    return save_folder(folder, model, TINY_CLIP_CONFIG, metadata)


class KeywordLM:
    """A deterministic stand-in language model: a continuation scores by the words it
    shares with the prompt's last instruction, minus a length penalty. Records calls."""

    def __init__(self):
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def score(self, prompt: str, continuations):
        self.calls.append((prompt, tuple(continuations)))
        human = prompt.rsplit("Human:", 1)[-1].split("\n")[0].lower().split()
        taken = prompt.rsplit("Robot:", 1)[-1].lower()
        scores = []
        for text in continuations:
            words = text.strip(" .").lower().split()
            overlap = sum(w in human for w in words)
            repeat = 5.0 if text.strip(" .") in taken else 0.0
            finished = 4.0 if words == ["done"] and "put it in" in taken and human != ["n/a"] else 0.0
            scores.append(overlap - repeat + finished - 0.1 * len(words))
        return scores

    def generate(self, messages, schema=None) -> str:
        raise NotImplementedError


class ScriptedLM:
    """Answers generate() with the given texts in order; records the messages it saw."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen: list[list] = []
        self.schemas: list = []

    def generate(self, messages, schema=None) -> str:
        self.seen.append(list(messages))
        self.schemas.append(schema)
        return self.answers.pop(0)

    def score(self, prompt, continuations):
        raise NotImplementedError


class SeeingScriptedLM(ScriptedLM):
    """ScriptedLM that says it reads images (fmrobot.interfaces.ReadsImages), for VLM planners and detectors."""

    reads_images = True


class ReadingVLM:
    """A stand-in vision-language model for whole episodes: it plans pick/place of the objects the instruction
    names (from the prompt's names) and answers a success detector's question with `verdicts` in turn (then
    yes). It records every call: (whether the last message held images, the last message's text, schema name)."""

    reads_images = True

    def __init__(self, verdicts=()):
        self.verdicts = list(verdicts)
        self.calls: list[tuple[int, str, str]] = []

    def generate(self, messages, schema=None) -> str:
        import re

        last = messages[-1]
        self.calls.append((len(last.images), last.text, getattr(schema, "__name__", "")))
        if "achieved" in json.dumps(schema.model_json_schema() if schema else {}):
            achieved = self.verdicts.pop(0) if self.verdicts else True
            return json.dumps({"reason": "the images show it" if achieved else "the block is still on the table",
                               "achieved": achieved})
        names = re.search(r"Objects you can name: (.*)", last.text).group(1).split(", ")
        instruction = re.search(r"Instruction: (\".*\")", last.text).group(1)
        named = sorted((n for n in names if n in json.loads(instruction)), key=json.loads(instruction).index)
        block, target = named[0], named[-1]
        return json.dumps({"steps": [{"skill": "pick", "args": {"object": block}},
                                     {"skill": "place", "args": {"target": target}}]})

    def score(self, prompt, continuations):
        raise NotImplementedError


def save_tiny_causal_lm(folder) -> str:
    """A tiny random Llama with a byte-level BPE tokenizer trained here, saved as a model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = ["Human: put the red block in the green bowl", "Robot: 1. pick up the red block. 2. put it in the bowl.",
              "pick up the blue block", "put it in the yellow bowl", "done", "N/A"] * 4
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=320, special_tokens=["<eos>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


# --------------------------------------------------------------------------- HTTP servers on loopback


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port) in a background thread; `with` starts and stops it.
    Subclasses answer each POST in `handle_post(request)`, with `read_json` and `send_json`."""

    def __init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                owner.handle_post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def handle_post(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_json(request: BaseHTTPRequestHandler) -> dict:
    return json.loads(request.rfile.read(int(request.headers.get("Content-Length", 0))) or b"{}")


def send_json(request: BaseHTTPRequestHandler, status: int, document: dict,
              headers: dict[str, str] | None = None) -> None:
    data = json.dumps(document).encode()
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def chat_reply(content: str, **extra) -> dict:
    """An OpenAI chat-completions response with one assistant message."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}], **extra}


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server_process(command: Sequence[str], ready_url: str, log_path: Path, name: str, env: dict[str, str],
                   deadline: float = 180.0):
    """Run a server `command` (logging to `log_path`) until `ready_url` answers 200, yield, then stop it.
    AssertionError with the log's tail if it exits first or is not ready within `deadline` seconds."""
    import subprocess
    import time
    import urllib.request

    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env)
    try:
        give_up = time.monotonic() + deadline
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > give_up:
                raise AssertionError(f"{name} not ready after {deadline:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def transformers_serve(model: Path, log_path: Path, deadline: float = 180.0, drop_env: Sequence[str] = ()):
    """A `transformers serve` process on loopback serving only `model` (a folder), offline, on the CPU;
    yields its base URL once `/health` answers (the pinned model loads before the server listens)."""
    import os
    import sys

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_TELEMETRY="1")
    for name in drop_env:
        env.pop(name, None)
    # The `transformers` console script's own module, run by this interpreter.
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    with server_process(command, f"http://127.0.0.1:{port}/health", log_path, "transformers serve", env, deadline):
        yield f"http://127.0.0.1:{port}/v1"


class BrokenPolicy(ScriptedPolicy):
    """Raises an unexpected error (a bug, not a skill failure) a few steps into the first skill."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        if self.steps > 3:
            raise RuntimeError("policy bug")
        return super().act(obs)
