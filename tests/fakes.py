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
    """Compose the packaged Hydra config `name` (run, collect, train) with overrides, resolved to plain containers.
    Each distinct composition runs once per session (Hydra takes 0.1-0.3 s); callers get their own copy."""
    import copy
    import os

    from fmrobot import registry
    from fmrobot.compose import compose_plain

    if any("${" in override for override in overrides):  # may read the environment (oc.env): never cached
        return compose_plain(name, overrides)
    # What else a composition reads: the working directory and installed plugins' config folders.
    return copy.deepcopy(_composed(name, tuple(overrides), os.getcwd(), tuple(registry.config_search_path())))


@functools.cache
def _composed(name: str, overrides: tuple[str, ...], cwd: str, search_path: tuple[str, ...]) -> dict:
    from fmrobot.compose import compose_plain

    return compose_plain(name, overrides)


def run_command(*args: str, cwd: Path, env: dict[str, str] | None = None, command: str = "run"):
    """`python -m fmrobot.<command> *args` in this process, for command lines that are refused or run a few quick
    episodes in process: no interpreter start and imports per call. Returns a CompletedProcess with the exit
    status and everything written to stdout and stderr, by Python or by C code (file descriptors 1 and 2),
    warnings Python would print included. The working directory, environment, sys.argv, logging and Hydra's
    singletons are put back."""
    import importlib
    import io
    import os
    import subprocess
    import sys
    import tempfile
    from contextlib import redirect_stderr, redirect_stdout

    main = importlib.import_module(f"fmrobot.{command}").main
    py_out, py_err = io.StringIO(), io.StringIO()
    status = 0
    with tempfile.TemporaryFile() as fd_out, tempfile.TemporaryFile() as fd_err, _as_a_fresh_process(cwd, env):
        sys.argv = [f"fmrobot.{command}", *args]
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = [os.dup(1), os.dup(2)]
        os.dup2(fd_out.fileno(), 1)
        os.dup2(fd_err.fileno(), 2)
        try:
            with _printed_warnings(py_err), redirect_stdout(py_out), redirect_stderr(py_err):
                main()
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        finally:
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
        fd_out.seek(0)
        fd_err.seek(0)
        stdout = fd_out.read().decode(errors="replace") + py_out.getvalue()
        stderr = fd_err.read().decode(errors="replace") + py_err.getvalue()
    return subprocess.CompletedProcess([f"fmrobot.{command}", *args], status, stdout, stderr)


@contextlib.contextmanager
def _as_a_fresh_process(cwd: Path, env: dict[str, str] | None):
    """Working directory `cwd`, `env` added to the environment, no logging handlers (records go to
    logging.lastResort, stderr); afterwards all of it, sys.argv and Hydra's singletons as they were."""
    import logging
    import os
    import sys

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    saved_argv, saved_cwd, saved_env = sys.argv[:], os.getcwd(), dict(os.environ)
    loggers = [logging.root, *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    saved_loggers = [(lg, lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers]
    try:
        os.chdir(cwd)
        os.environ.update(env or {})
        logging.root.handlers = []
        yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        known = {id(lg) for lg in loggers}
        new = [v for v in logging.root.manager.loggerDict.values()
               if isinstance(v, logging.Logger) and id(v) not in known]
        for lg, level, handlers, propagate, disabled in [*saved_loggers, *((lg, 0, [], True, False) for lg in new)]:
            for handler in lg.handlers:
                if handler not in handlers:
                    handler.close()  # Hydra's run.log handler, for one
            lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
            lg.setLevel(level)
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()


@contextlib.contextmanager
def _printed_warnings(stderr):
    """Warnings as Python's default filters would print them to stderr (pytest would otherwise collect them)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for warning in caught:
                if not issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                                                     ResourceWarning)):
                    stderr.write(warnings.formatwarning(warning.message, warning.category, warning.filename,
                                                        warning.lineno, warning.line))


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
        # shutdown() waits for the loop's next poll: 0.5 s with serve_forever's default interval.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

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
