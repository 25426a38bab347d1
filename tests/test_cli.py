"""The `brogue` command and the installed package: verbs, quiet start-up, errors, extras."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import brogue.train.commands
from brogue.command import Command
from brogue.errors import BrogueError, MissingExtraError, require
from brogue.main import main
from brogue.quiet import _stderr_to_file
from dev.__main__ import COMMANDS as DEV_COMMANDS
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

REPO = Path(__file__).resolve().parents[1]
BROGUE = Path(sys.executable).with_name("brogue")  # the console script of this environment
VERBS = ("extract", "verify", "fit", "evaluate", "sweep", "predict", "export", "yamnet", "serve")
DEV_VERBS = ("synthetic", "bench", "stress")  # a clone's: `python -m dev VERB`, or make
# What TensorFlow, absl and CUDA print while starting, on this machine and on GPU-less CI.
FRAMEWORK_NOISE = ("oneDNN", "cuda", "cuInit", "absl", "I0000", "E0000", "W0000",
                   "cpu_feature_guard", "rebuild TensorFlow")  # fmt: skip


def _quiet_env() -> dict[str, str]:
    """This environment without the switches that would hide the noise anyway."""
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}


def test_help_lists_every_verb_and_starts_no_framework() -> None:
    shown = subprocess.run([str(BROGUE), "--help"], capture_output=True, text=True, check=True)
    verbs = shown.stdout.split("\n  VERB\n")[1].split("\noptions:")[0]
    # One verb a line at four spaces; wrapped help lines indent further.
    assert re.findall(r"^ {4}(\S+)", verbs, re.MULTILINE) == list(VERBS)
    assert shown.stderr == ""
    probe = ("import sys; from brogue.main import build_parser, commands; "
             "build_parser(commands()); print(sorted({'keras', 'tensorflow', 'jax'} & "
             "set(sys.modules)))")  # fmt: skip
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert imported.stdout.strip() == "[]"


@pytest.mark.parametrize("verb", VERBS + DEV_VERBS)
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"], DEV_COMMANDS if verb in DEV_VERBS else None)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: brogue {verb}")
    assert "--verbose" in text


# Defaults the verbs' help must show, as the code's defaults are documented in the README.
SHOWN_DEFAULTS = {
    "extract": "(default: data/embeddings)", "fit": "default 1.9644e-05",
    "evaluate": "(default: the run's own)", "sweep": "default 20", "yamnet": "(default: native)",
    "synthetic": "(default: espeak)", "stress": "SIGKILL trials (default: 20)",
    "serve": "(default: 127.0.0.1)",
}  # fmt: skip


@pytest.mark.parametrize(("verb", "default"), SHOWN_DEFAULTS.items())
def test_help_shows_the_documented_defaults(verb: str, default: str,
                                            capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([verb, "--help"], DEV_COMMANDS if verb in DEV_VERBS else None)
    assert default in " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def test_python_dash_m_brogue_is_the_same_command(tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "brogue", "--version"], cwd=tmp_path,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert shown.stdout.startswith("brogue ")


def test_no_top_level_extract_or_train_outside_the_repository(tmp_path: Path) -> None:
    probe = ("import importlib.util as u, brogue.extract, brogue.train; "
             "print(u.find_spec('extract'), u.find_spec('train'))")  # fmt: skip
    found = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert found.stdout.strip() == "None None"


def test_the_wheel_holds_the_brogue_namespace_only(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = tmp_path.glob("brogue-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"brogue"}
    for member in ("brogue/main.py", "brogue/cache/reader.py", "brogue/extract/yamnet/params.py",
                   "brogue/extract/engine.py", "brogue/inference/predict.py", "brogue/train/fit.py",
                   "brogue/train/sweep_space.json", "brogue/serve/app.py",
                   "brogue/serve/static/index.html",
                   "brogue/extract/yamnet/front_end_constants.npz"):  # fmt: skip
        assert member in names, member
    assert not [name for name in names if "/dev/" in name or "bench" in name]  # clone only
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith("entry_points.txt"))).decode()
    assert "brogue = brogue.main:main" in entry_points


def test_a_fit_prints_no_framework_noise_and_one_line_per_epoch(tmp_path: Path) -> None:
    cache = write_synthetic_cache(tmp_path / "cache", SyntheticCorpus(), seed=0)
    command = [str(BROGUE), "fit", "--cache", str(cache), "--out", str(tmp_path / "run"),
               "--epochs", "2", "--patience", "2", "--no-tensorboard"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=_quiet_env())
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines() if any(n in line for n in FRAMEWORK_NOISE)]
    assert noise == []
    epochs = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"]
    assert "\b" not in done.stdout and "━" not in done.stdout  # no progress bar redraws


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    done = subprocess.run([str(BROGUE), "evaluate", str(tmp_path / "nowhere"), "--verbose"],
                          capture_output=True, text=True, env=_quiet_env())  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" in done.stderr


def test_a_person_s_error_is_one_line_and_verbose_raises(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "nowhere"
    assert main(["evaluate", str(missing)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and str(missing) in line
    with pytest.raises(BrogueError):
        main(["evaluate", str(missing), "--verbose"])


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args) -> int:
        return {}["a bug, not bad input"]

    flags = brogue.train.commands.COMMANDS["evaluate"].add_arguments
    monkeypatch.setitem(brogue.train.commands.COMMANDS, "evaluate",
                        Command("broken", flags, broken))  # fmt: skip
    with pytest.raises(KeyError):
        main(["evaluate", "somewhere"])


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingExtraError) as missing:
        require("brogue_no_such_package", "hub", "loading a TF Hub URL")
    assert str(missing.value) == (
        "loading a TF Hub URL needs brogue_no_such_package: pip install 'brogue[hub]'"
    )
    from brogue.extract.yamnet.weights import saved_model_dir

    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'brogue\[hub\]'"):
        saved_model_dir("https://tfhub.dev/google/yamnet/1")


def test_a_broken_install_of_an_extra_is_not_called_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "half_installed.py").write_text("import brogue_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="brogue_absent_dependency"):
        require("half_installed", "hub", "anything")


def test_quiet_import_replays_what_it_hid_when_the_import_fails(
    capfd: pytest.CaptureFixture,
) -> None:
    with _stderr_to_file():
        os.write(2, b"start-up chatter\n")
    assert "start-up chatter" not in capfd.readouterr().err
    with pytest.raises(ImportError), _stderr_to_file():
        os.write(2, b"the reason the import failed\n")
        raise ImportError("broken")
    assert "the reason the import failed" in capfd.readouterr().err


@pytest.mark.parametrize("verb", [["predict", "{missing}", "a.wav"], ["export", "{missing}", "out"],
                                  ["evaluate", "{missing}"], ["serve", "{missing}"],
                                  ["fit", "--cache", "{missing}"],
                                  ["sweep", "--cache", "{missing}"]])  # fmt: skip
def test_a_missing_run_or_cache_is_one_line_before_any_framework(verb: list[str],
                                                                   tmp_path: Path) -> None:
    """The folder is checked before Keras and TensorFlow load; the report's timing is measured
    by hand (under 1 s against 6-13 s), never asserted here."""
    missing = tmp_path / "nowhere"
    command = [str(BROGUE), *(word.format(missing=missing) for word in verb)]
    done = subprocess.run(command, capture_output=True, text=True, env=_quiet_env(),
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    expected = (f"error: no manifest.json in {missing}; run `brogue extract` first"
                if "--cache" in verb else
                f"error: {missing} is not a finished run folder (no run.json or model.keras)")
    assert done.stderr.strip().splitlines() == [expected]


def test_a_misspelt_verb_is_told_the_closest_one(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["prdict", "run", "a.wav"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "brogue: error: unknown verb 'prdict'; did you mean 'predict'?")


def test_fit_help_groups_the_settings_by_family(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    sections = {title: text.split(title, 1)[1].split("\nsettings for ", 1)[0] for title in (
        "settings for frame-dense", "settings for clip-linear", "settings for clip-attention",
        "settings for families trained by epochs", "settings for every family")}  # fmt: skip
    assert "--layers" in sections["settings for frame-dense"]
    assert "--block-frames" in sections["settings for frame-dense"]
    assert "--linear-c" in sections["settings for clip-linear"]
    assert "--attention-width" in sections["settings for clip-attention"]
    assert "--learning-rate" in sections["settings for families trained by epochs"]
    assert "--class-weight" in sections["settings for every family"]
    assert "--linear-c" not in sections["settings for frame-dense"]
    words = " ".join(text.split())
    assert "example: each class weighted total/count as the Keras example does" in words


def test_serve_help_shows_the_port(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "port to listen on (default: 8000)" in " ".join(capsys.readouterr().out.split())
