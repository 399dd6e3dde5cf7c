"""Faults and bad input around training (issue 24): one clear line, the right exit code, and
every file the user had byte-identical afterwards.

- ``log=tensorboard`` when ``out_dir/tensorboard`` is a file: refused before anything is written;
- ``--resume`` of a run already at ``max_iters`` writes nothing at all (no empty event file);
- ``llmcourse plot`` on a metrics line that is not an object, or a record without ``iter``;
- ``sample`` / ``eval`` on a checkpoint whose ``model_config`` no longer fits its weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmcourse import cli
from llmcourse.train import TrainConfig, Trainer, load_model_state
from llmcourse.train.plots import metrics_curves, plot_runs
from faults_helpers import copy_of_run, finished_run, one_error_line, snapshot, train_args
from train_helpers import TinyLM, make_tokens, random_batch_fn

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A text, its prepared data in a cache, and one finished tiny run with TensorBoard."""
    yield from finished_run(tmp_path_factory.mktemp("faults_train"), "log=tensorboard")


@pytest.fixture()
def run(world, tmp_path, monkeypatch):
    return copy_of_run(world, tmp_path, monkeypatch, "log=tensorboard")


# ---- TensorBoard ---------------------------------------------------------------------------

def test_tensorboard_path_that_is_a_file_is_refused_before_anything_is_written(
        world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "fresh"
    out.mkdir()
    (out / "tensorboard").write_text("my notes\n")
    before = snapshot(out, world["cache"])
    capsys.readouterr()
    args = train_args(world["text"], out, "log=tensorboard")
    assert cli.main(args) == 2
    line = one_error_line(capsys, "train")
    assert line == (f"llmcourse train: error: {out / 'tensorboard'} is a file, but "
                    "log='tensorboard' writes its event files into a folder of that name: "
                    "move or delete that file, or set log='jsonl'")
    assert snapshot(out, world["cache"]) == before


def test_trainer_refuses_a_tensorboard_file_when_built(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "tensorboard").write_bytes(b"x")
    cfg = TrainConfig(out_dir=str(out), max_iters=2, batch_size=4, block_size=8, device="cpu",
                      progress=False, log="tensorboard")
    with pytest.raises(NotADirectoryError, match="is a file, but log='tensorboard'"):
        Trainer(TinyLM(), cfg, random_batch_fn(make_tokens()))
    assert sorted(p.name for p in out.iterdir()) == ["tensorboard"]


def test_resume_already_at_max_iters_writes_nothing_at_all(run, capsys):
    out, args = run
    events = sorted((out / "tensorboard").iterdir())
    assert len(events) == 1
    before = snapshot(out)
    for _ in range(2):
        capsys.readouterr()
        assert cli.main(args + ["--resume"]) == 0
        assert "nothing to do" in capsys.readouterr().out
        assert snapshot(out) == before  # no new (empty) event file
    # and a real continuation still logs to TensorBoard
    assert cli.main(args + ["--resume", "--set", "max_iters=6", "--set", "lr_decay_iters=6"]) == 0
    assert len(list((out / "tensorboard").iterdir())) == 2


def test_trainer_resumed_at_max_iters_fit_writes_nothing(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), max_iters=3, batch_size=4, block_size=8,
                      eval_interval=3, eval_iters=1, device="cpu", progress=False,
                      log="tensorboard")
    get_batch = random_batch_fn(make_tokens())
    Trainer(TinyLM(), cfg, get_batch).fit()
    before = snapshot(tmp_path)
    resumed = Trainer(TinyLM(), cfg.replace(init_from="resume"), get_batch)
    assert resumed.fit() == [] and resumed.stop_reason == "max_iters"
    assert snapshot(tmp_path) == before


# ---- plot: the reading of metrics.jsonl ------------------------------------------------------

@pytest.mark.parametrize("bad, words", [
    ("[1, 2]", 'a metrics record is a JSON object such as {"type": "train", "iter": 0, '
               '"loss": 4.2}, not [1, 2]; fix or delete that line'),
    ('{"type": "train", "loss": 2.0}',
     'this "train" record has no integer "iter" (the step it belongs to); fix or delete '
     "that line"),
    ('{"type": "eval", "iter": "ten", "val_loss": 2.0}', 'this "eval" record has no integer'),
])
def test_plot_of_a_bad_metrics_line_is_one_line_naming_file_and_line(run, capsys, bad, words):
    out, _ = run
    log = out / "metrics.jsonl"
    log.write_text(log.read_text() + bad + "\n")
    line_no = len(log.read_text().splitlines())
    with pytest.raises(ValueError) as exc:
        metrics_curves(out)
    assert str(exc.value).startswith(f"{log}:{line_no}: ") and words in str(exc.value)
    with pytest.raises(ValueError, match=f"{line_no}: "):
        plot_runs([out])
    before = snapshot(out)
    image = out.parent / "curves.png"
    capsys.readouterr()
    assert cli.main(["plot", str(out), "--out", str(image)]) == 2
    line = one_error_line(capsys, "plot")
    assert f"{log}:{line_no}: " in line and words in line
    assert snapshot(out) == before and not image.exists()


def test_metrics_records_given_as_a_list_are_checked_too():
    with pytest.raises(ValueError, match='record 1: this "train" record has no integer "iter"'):
        metrics_curves([{"type": "train", "iter": 0, "loss": 1.0}, {"type": "train"}])


def test_plot_of_a_binary_metrics_file_names_it(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=f"{log} is not a metrics log: it is not UTF-8 text"):
        metrics_curves(log)


# ---- a checkpoint whose model_config no longer fits its weights ------------------------------

def edit_model_config(path: Path, **changes) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"].update(changes)
    torch.save(ckpt, path)


@pytest.mark.parametrize("command", [
    ["sample", "--max-new-tokens", "3"],
    ["eval", "--iters", "1"],
])
def test_edited_model_config_is_one_line_naming_tensor_and_shapes(run, capsys, command):
    out, _ = run
    edit_model_config(out / "best.pt", n_embd=32)
    before = snapshot(out)
    capsys.readouterr()
    code = cli.main([command[0], "--checkpoint", str(out), "--device", "cpu", *command[1:]])
    assert code == 2
    line = one_error_line(capsys, command[0])
    assert f"{out / 'best.pt'}: its weights do not fit" in line
    assert "tensor 'transformer.wte.weight' is (" in line and ", 16) in the checkpoint but (" in line
    assert ", 32) in the model" in line and "size mismatch" not in line
    assert snapshot(out) == before


def test_load_model_state_names_the_checkpoint_the_tensor_and_both_shapes():
    model = TinyLM()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["head.weight"] = torch.zeros(32, 24)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as exc:
        load_model_state(model, state, source="out/run/best.pt")
    assert str(exc.value) == (
        "out/run/best.pt: its weights do not fit the model built from its model_config: "
        "tensor 'head.weight' is (32, 24) in the checkpoint but (32, 16) in the model. Was "
        "model_config edited? Put back the values the weights were trained with, or use "
        "another checkpoint")
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k])


def test_tensorboard_file_is_refused_before_the_data_is_prepared(world, tmp_path, monkeypatch,
                                                                  capsys):
    cache = tmp_path / "empty-cache"  # nothing prepared yet: a refusal must not prepare it
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(cache))
    out = tmp_path / "fresh"
    out.mkdir()
    (out / "tensorboard").write_text("my notes\n")
    capsys.readouterr()
    args = train_args(world["text"], out, "log=tensorboard")
    assert cli.main(args) == 2
    assert "is a file, but log='tensorboard'" in one_error_line(capsys, "train")
    assert not cache.exists() or not any(cache.rglob("*.bin"))
    assert sorted(p.name for p in out.iterdir()) == ["tensorboard"]
