"""Untrusted configs and secrets (issue 15, items 4, 5, 6 and the run-directory part of 7).

One test per attack vector: where an API key may go (item 4), where an untrusted config may
write (item 5), and how a secret could reach disk or stdout (item 6). The last tests run
`python -m fmrobot.run`'s command line (in process: tests.fakes.run_command) for every secret
vector with a secret in the environment and read every file the run wrote, and its stdout and
stderr, for the secret.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from fmrobot import registry, security
from fmrobot.cli import check_untrusted_command
from fmrobot.errors import ConfigError
from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
from tests.fakes import run_command
from tests.test_security import FakeOpenAI, error_lines, files_holding

#: A run that needs no model and renders little: a config refused later than composing still costs ~2 s.
FAST = ("perception=oracle", "planner=oracle", "policy=scripted", "env.renderer=tiny", "video=none")


def new_secret() -> str:
    return f"sk-fmrobot-{secrets.token_hex(16)}"


@pytest.fixture
def untrusted(monkeypatch, tmp_path):
    """Untrusted configs, with the working directory (the run root) in tmp_path and no extra trust."""
    monkeypatch.setenv(registry.UNTRUSTED_ENV, "1")
    for name in (security.ALLOWED_KEY_ENVS_ENV, security.TRUSTED_HOSTS_ENV, security.RUN_ROOT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_error(done) -> str:
    lines = error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[0].startswith("fmrobot: error: ")
    return lines[0]


# --------------------------------------------------------------------------- item 4: where an API key may go


def test_untrusted_api_key_env_names_only_allowed_variables(untrusted, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", new_secret())
    with pytest.raises(ConfigError) as raised:
        check_untrusted_command("run", ["llm=openai", "llm.api_key_env=GITHUB_TOKEN"])
    assert str(raised.value) == ("llm.api_key_env names 'GITHUB_TOKEN'; with FMROBOT_UNTRUSTED_CONFIG set it may name "
                                 "only OPENAI_API_KEY (add more to FMROBOT_ALLOWED_KEY_ENVS)")
    check_untrusted_command("run", ["llm=openai"])  # the backend's own variable
    monkeypatch.setenv(security.ALLOWED_KEY_ENVS_ENV, "MY_VLLM_KEY, GITHUB_TOKEN")
    check_untrusted_command("run", ["llm=openai", "llm.api_key_env=GITHUB_TOKEN"])
    # Trusted configs may name any variable (the user wrote them); the host check still applies.
    monkeypatch.delenv(registry.UNTRUSTED_ENV)
    monkeypatch.delenv(security.ALLOWED_KEY_ENVS_ENV)
    security.check_key_destinations({"llm": {"api_key_env": "GITHUB_TOKEN", "base_url": "http://127.0.0.1/v1"}})


def test_a_loopback_server_gets_no_key_from_a_variable_an_untrusted_config_names(tmp_path):
    token = f"ghp_{secrets.token_hex(16)}"
    with FakeOpenAI() as server:
        done = run_command("task=pick_place", "perception=oracle", "planner=llm_structured",
                       "llm=openai", f"llm.base_url={server.base_url}", "llm.model=m", "llm.retries=0",
                       "llm.api_key_env=GITHUB_TOKEN", "video=none", f"hydra.run.dir={tmp_path / 'run'}",
                       cwd=tmp_path, env={registry.UNTRUSTED_ENV: "1", "GITHUB_TOKEN": token})
    assert "llm.api_key_env names 'GITHUB_TOKEN'" in one_line_error(done)
    assert server.authorizations == [] and not (tmp_path / "run").exists()
    assert token not in done.stdout + done.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://localhost/v1", "http://127.0.0.2/v1",
                                 "http://[::1]:8000/v1", "https://LOCALHOST./v1"])
def test_keys_go_to_loopback(monkeypatch, url):
    monkeypatch.delenv(security.TRUSTED_HOSTS_ENV, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-key-for-loopback")
    assert security.api_key("OPENAI_API_KEY", url) == "sk-key-for-loopback"


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://10.0.0.1/v1", "http://127.0.0.1.evil.com/v1",
                                 "http://localhost.evil.com/v1", "not a url"])
def test_a_key_goes_to_no_other_host_unless_listed_in_any_mode(monkeypatch, url):
    monkeypatch.delenv(registry.UNTRUSTED_ENV, raising=False)
    monkeypatch.delenv(security.TRUSTED_HOSTS_ENV, raising=False)
    secret = new_secret()
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with pytest.raises(ConfigError) as raised:
        security.api_key("OPENAI_API_KEY", url)
    message = str(raised.value)
    assert "where the API key in OPENAI_API_KEY would be sent; keys go only to loopback and the hosts listed in " \
           "FMROBOT_TRUSTED_HOSTS (now: none)" in message and secret not in message
    monkeypatch.delenv("OPENAI_API_KEY")
    assert security.api_key("OPENAI_API_KEY", url) is None  # no key, nothing to leak: any host
    if "example" in url:
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        monkeypatch.setenv(security.TRUSTED_HOSTS_ENV, "other.example.org, API.example.com")
        assert security.api_key("OPENAI_API_KEY", url) == secret


def test_the_backend_asks_before_sending_a_key(monkeypatch):
    monkeypatch.delenv(security.TRUSTED_HOSTS_ENV, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", new_secret())
    lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url="http://fmrobot-test.invalid/v1", model="m", retries=0))
    with pytest.raises(ConfigError, match="points at 'fmrobot-test.invalid'"):
        lm.generate([])
    assert lm.stats["requests"] == 0


def test_untrusted_config_naming_a_remote_host_is_refused_before_anything_is_written(tmp_path):
    done = run_command("llm=openai", "llm.base_url=https://collector.example.com/v1", *FAST,
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                   env={registry.UNTRUSTED_ENV: "1", "OPENAI_API_KEY": new_secret()})
    assert "llm.base_url points at 'collector.example.com'" in one_line_error(done)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- item 5: where an untrusted config may write


def group_file(folder: Path, text: str) -> Path:
    (folder / "level").mkdir(parents=True, exist_ok=True)
    (folder / "level" / "evil.yaml").write_text("# @package _global_\n" + text)
    return folder


def test_untrusted_output_subdir_outside_the_run_root_is_refused_and_nothing_is_written(tmp_path):
    root = tmp_path / "root"
    configs = group_file(tmp_path / "configs", "hydra:\n  output_subdir: ../../../../somewhere\n")
    root.mkdir()
    done = run_command("--config-dir", str(configs), "level=evil", *FAST, "hydra.run.dir=a/b/c", cwd=root,
                   env={registry.UNTRUSTED_ENV: "1"})
    line = one_line_error(done)
    assert line.startswith(f"fmrobot: error: hydra.output_subdir is '{root}/a/b/c/../../../../somewhere', outside the "
                           f"run root {root}; with FMROBOT_UNTRUSTED_CONFIG set, a config writes only within")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["configs", "evil.yaml", "level", "root"]


@pytest.mark.parametrize("config, overrides, where", [
    ("run", ["hydra.run.dir=/tmp/fmrobot-elsewhere"], "hydra.run.dir"),
    ("run", ["hydra.run.dir=../next-door"], "hydra.run.dir"),
    ("run", ["hydra.sweep.dir=/tmp/fmrobot-elsewhere"], "hydra.sweep.dir"),
    ("run", ["hydra.output_subdir=/tmp/fmrobot-elsewhere"], "hydra.output_subdir"),
    ("run", ["hydra.job_logging.handlers.file.filename=/tmp/fmrobot.log"], "hydra.job_logging.handlers.file.filename"),
    ("run", ["hydra.job.name=../../../../fmrobot"], "hydra.job_logging.handlers.file.filename"),
    ("run", ["+hydra.hydra_logging.handlers.f={class: logging.FileHandler, filename: /tmp/x.log}"],
     "hydra.hydra_logging.handlers.f.filename"),
    ("collect", ["dataset.path=/tmp/fmrobot-dataset"], "dataset.path"),
    ("collect", ["dataset.path='~/fmrobot-dataset'"], "dataset.path"),
    ("train", ["train.out_dir=/tmp/fmrobot-checkpoints"], "train.out_dir"),
    ("run", ["llm=gemma3_270m", "llm.cache_dir=/tmp/fmrobot-cache"], "llm.cache_dir"),
    ("run", ["hydra.job.chdir=true", "hydra.run.dir=run", "llm=llamacpp", "llm.cache_dir=../.."], "llm.cache_dir"),
])
def test_untrusted_configs_write_only_within_the_run_root(untrusted, config, overrides, where):
    with pytest.raises(ConfigError) as raised:
        check_untrusted_command(config, overrides)
    message = str(raised.value)
    assert message.startswith(f"{where} is ") and f"outside the run root {untrusted}; " in message


def test_the_run_root_holds_the_defaults_and_can_be_moved(untrusted, monkeypatch):
    for config in ("run", "collect", "train"):
        check_untrusted_command(config, [])
    check_untrusted_command("collect", ["dataset.path=datasets/mine.zarr", "hydra.run.dir=runs/a"])
    (untrusted / "out").symlink_to("/tmp")  # a link inside the root that leads out of it
    with pytest.raises(ConfigError, match="hydra.run.dir is .*, outside the run root"):
        check_untrusted_command("run", ["hydra.run.dir=out/x"])
    monkeypatch.setenv(security.RUN_ROOT_ENV, "/tmp")
    check_untrusted_command("run", ["hydra.run.dir=/tmp/fmrobot-run"])
    with pytest.raises(ConfigError, match="outside the run root /tmp; "):
        check_untrusted_command("run", ["hydra.run.dir=/var/tmp/x"])


@pytest.mark.parametrize("override", ["task.name=../../x", "++robot.name=a/b", "++task.level=.."])
def test_untrusted_names_that_make_default_paths_are_plain(untrusted, override):
    with pytest.raises(ConfigError, match="must be a plain name"):
        check_untrusted_command("collect", [override])


@pytest.mark.parametrize("handler, what", [
    ({"class": "logging.handlers.HTTPHandler", "host": "collector.example.com", "url": "/"}, "class"),
    ({"class": "logging.handlers.SysLogHandler", "address": ["collector.example.com", 514]}, "class"),
    ({"class": "logging.StreamHandler", "stream": "ext://fmrobot_marker_mod.stream"}, "stream"),
])
def test_untrusted_logging_neither_sends_records_away_nor_imports(handler, what):
    with pytest.raises(ConfigError, match=f"^hydra.job_logging.handlers.x.{what} "):
        security.check_untrusted_hydra({"hydra": {"job_logging": {"handlers": {"x": handler}}}})


@pytest.mark.parametrize("runtime_env", ["{pip: [some-package]}", "{working_dir: /srv/code}",
                                         "{env_vars: {LD_PRELOAD: /tmp/x.so}}"])
def test_untrusted_configs_set_no_ray_runtime_env(untrusted, runtime_env):
    with pytest.raises(ConfigError, match="^executor.runtime_env sets .*an untrusted config may not install"):
        check_untrusted_command("run", ["executor=ray", f"+executor.runtime_env={runtime_env}"])
    check_untrusted_command("run", ["executor=ray"])  # Ray itself is fine


def test_resume_false_never_moves_an_untrusted_run_out_of_the_run_root(untrusted):
    from fmrobot.run import prepare_arguments

    (untrusted / "results.json").write_text("{}")  # the run root itself holds a run
    with pytest.raises(ConfigError, match=r"^hydra.run.dir \(resume=false\) is .*, outside the run root"):
        prepare_arguments(["hydra.run.dir=.", "resume=false"])
    (untrusted / "runs" / "a").mkdir(parents=True)
    (untrusted / "runs" / "a" / "results.json").write_text("{}")
    assert prepare_arguments(["hydra.run.dir=runs/a", "resume=false"])[-1] == f"hydra.run.dir={untrusted}/runs/a-2"


def test_an_uncreatable_run_directory_is_one_clear_line(tmp_path):
    done = run_command(*FAST, "hydra.run.dir=/dev/null/x", cwd=tmp_path)
    assert one_line_error(done) == (
        "fmrobot: error: cannot create the run directory (hydra.run.dir) '/dev/null/x': a part of the path is a "
        "file, not a folder; expected a folder that can be created and written")


# --------------------------------------------------------------------------- item 6: secrets on the command line


@pytest.mark.parametrize("argument, what", [
    ("llm.base_url=http://user:{secret}@127.0.0.1/v1", "holds a URL with credentials (user:password@host)"),
    ("llm.base_url=http://{secret}@127.0.0.1/v1", "holds a URL with credentials (user:password@host)"),
    ("+hydra.job.env_set.OPENAI_API_KEY={secret}", "sets 'hydra.job.env_set.OPENAI_API_KEY', a key that looks like"),
    ("+llm.openai_key={secret}", "sets 'llm.openai_key', a key that looks like a secret"),
    ("++llm.api_key='{secret}'", "sets 'llm.api_key', a key that looks like a secret"),
    ("+planner.note={env_secret}", "holds the value of the environment variable OPENAI_API_KEY"),
])
def test_a_secret_on_the_command_line_is_refused_in_any_mode(monkeypatch, argument, what):
    monkeypatch.delenv(registry.UNTRUSTED_ENV, raising=False)
    secret, env_secret = new_secret(), new_secret()
    monkeypatch.setenv("OPENAI_API_KEY", env_secret)
    with pytest.raises(ConfigError) as raised:
        security.check_arguments(["llm=openai", argument.format(secret=secret, env_secret=env_secret)])
    assert f"command-line argument 2 {what}" in str(raised.value)
    assert secret not in str(raised.value) and env_secret not in str(raised.value)


@pytest.mark.parametrize("argument", ["llm.api_key_env=MY_KEY", "~llm.api_key", "+llm.api_key=null",
                                      "llm.base_url=http://127.0.0.1:8000/v1", "instruction='email me at a@b.c'",
                                      "--config-dir=/x/y@z"])
def test_ordinary_arguments_pass_the_secret_check(argument):
    security.check_arguments([argument])


@pytest.mark.parametrize("value", ["http://user:pw-1234567@host/v1", "https://tok_abcdefgh@host"])
def test_a_url_with_credentials_in_a_config_is_a_secret(value):
    [(path, what, found)] = security.find_secrets({"llm": {"base_url": value}})
    assert path == "llm.base_url" and "URL with credentials" in what and found in value and "host" not in found


def test_a_config_file_with_a_url_credential_is_refused_before_writing_when_untrusted(untrusted):
    (untrusted / "llm").mkdir()
    (untrusted / "llm" / "remote.yaml").write_text("name: openai\nmodel: m\nbase_url: http://u:pw-12345678@h/v1\n")
    with pytest.raises(ConfigError, match="llm.base_url holds a URL with credentials") as raised:
        check_untrusted_command("run", ["-cd", str(untrusted), "llm=remote"])
    assert "pw-12345678" not in str(raised.value)


def test_redact_text_blanks_what_cfg_would_print(monkeypatch):
    secret = new_secret()
    monkeypatch.setenv("MY_PLAIN_NAME", secret)  # not a secret-looking name: named by a *_env key
    text = (f"llm:\n  api_key_env: MY_PLAIN_NAME\n  note: x{secret}x\n  base_url: http://me:pw-1234567@h/v1\n"
            "  api_key: literal-key-123\n  openai_key: null\n  max_tokens: 256\n")
    assert security.redact_text(text) == (
        "llm:\n  api_key_env: MY_PLAIN_NAME\n  note: x<redacted>x\n  base_url: http://<redacted>@h/v1\n"
        "  api_key: <redacted>\n  openai_key: null\n  max_tokens: 256\n")


# --------------------------------------------------------------------------- every secret vector, end to end

#: (name, arguments, files in --config-dir): `{secret}` is the key in OPENAI_API_KEY, `{literal}` a key that is
#: in no environment variable (typed on the command line or into a config file).
SECRET_VECTORS = [
    ("url-credentials", ["llm=openai", "llm.base_url=http://user:{literal}@127.0.0.1:9/v1"], {}),
    ("url-credentials-env", ["llm=openai", "llm.base_url=http://user:{secret}@127.0.0.1:9/v1"], {}),
    ("env-set", ["+hydra.job.env_set.OPENAI_API_KEY={literal}"], {}),
    ("secret-key-override", ["+llm.openai_key={literal}"], {}),
    ("note-override", ["+planner.note={secret}"], {}),
    ("oc-env", ["+planner.note=${{oc.env:OPENAI_API_KEY}}"], {}),
    ("file-url-credentials", ["llm=remote"],
     {"llm/remote.yaml": "name: openai\nmodel: m\nbase_url: http://user:{literal}@127.0.0.1:9/v1\n"}),
    ("file-env-set", ["level=evil"],
     {"level/evil.yaml": "# @package _global_\nhydra:\n  job:\n    env_set:\n      OPENAI_API_KEY: {literal}\n"}),
    ("file-secret-key", ["planner=odd"], {"planner/odd.yaml": "name: oracle\nopenai_key: {literal}\n"}),
]
#: What `--cfg` printed before (options, overrides, files): a key resolved from the environment, one in a file.
PRINT_VECTORS = [
    ("cfg-oc-env", ["--cfg", "job", "--resolve"], ["+planner.note=${{oc.env:OPENAI_API_KEY}}"], {}),
    ("cfg-file", ["--cfg", "all"], ["llm=remote"],
     {"llm/remote.yaml": "name: openai\nmodel: m\nbase_url: http://u:{literal}@127.0.0.1/v1\napi_key: {literal}\n"}),
    ("info-file", ["--info", "config"], ["llm=remote"],
     {"llm/remote.yaml": "name: openai\nmodel: m\nbase_url: http://u:{literal}@127.0.0.1/v1\n"}),
]


def run_vector(tmp_path: Path, arguments, files, untrusted: bool, options=()):
    secret, literal = new_secret(), f"lit-{secrets.token_hex(16)}"
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, text in files.items():
        (configs / name).parent.mkdir(parents=True, exist_ok=True)
        (configs / name).write_text(text.format(literal=literal))
    run_dir = tmp_path / "run"
    env = {"OPENAI_API_KEY": secret, **({registry.UNTRUSTED_ENV: "1"} if untrusted else {})}
    done = run_command(*options, "--config-dir", str(configs), *FAST,
                       *(a.format(secret=secret, literal=literal) for a in arguments), f"hydra.run.dir={run_dir}",
                       cwd=tmp_path, env=env)
    return done, run_dir, (secret, literal)


@pytest.mark.parametrize("untrusted", [pytest.param(False, marks=pytest.mark.slow), True], ids=["trusted", "untrusted"])
@pytest.mark.parametrize("name, arguments, files", SECRET_VECTORS, ids=[v[0] for v in SECRET_VECTORS])
def test_a_refused_secret_reaches_no_file_and_no_output(tmp_path, name, arguments, files, untrusted):
    done, run_dir, keys = run_vector(tmp_path, arguments, files, untrusted)
    line = one_line_error(done)
    refusals = ("fmrobot: error: config value ", "fmrobot: error: command-line argument ",
                "fmrobot: error: hydra.job.env_set sets OPENAI_API_KEY; an untrusted config may not")
    assert line.startswith(refusals), line
    for key in keys:
        assert key not in done.stdout + done.stderr
        # Every file under tmp_path but the config files the test wrote: the run dir and anything beside it.
        assert [p for p in files_holding(tmp_path, key) if not p.startswith("configs/")] == [], name
    assert not (run_dir / "results.json").exists()
    # Refused before Hydra wrote (untrusted, or the command line), or Hydra's copies deleted at the job's check.
    if untrusted or "command-line argument" in line:
        assert not run_dir.exists()
    else:
        assert not [p for p in (run_dir / ".hydra").glob("*") if p.is_file()]


@pytest.mark.parametrize("name, options, arguments, files", PRINT_VECTORS, ids=[v[0] for v in PRINT_VECTORS])
def test_what_hydra_prints_holds_no_secret(tmp_path, name, options, arguments, files):
    done, run_dir, keys = run_vector(tmp_path, arguments, files, untrusted=False, options=options)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "<redacted>" in done.stdout
    for key in keys:
        assert key not in done.stdout + done.stderr
    assert not run_dir.exists()
