"""Bad input a user plausibly types, found by red-teaming every subcommand (book/faults.md,
rules 1 and 2): each is one line on stderr with rule 1's exit status, refused before any work,
and every file the user had is byte-identical afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmcourse import cli
from llmcourse.cli.args import MAX_SEED
from llmcourse.cli.commands import MAX_BENCH_ITERS, MAX_MATMUL_SIZE
from llmcourse.cli.sweep import MAX_SEEDS

from faults_helpers import (TEXT, error_line, finished_run, one_error_line, sets, small_tmpfs,
                            snapshot, train_args)

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One finished TINY run (character tokenizer) and its cache."""
    yield from finished_run(tmp_path_factory.mktemp("world"))


@pytest.fixture()
def files(tmp_path):
    """A folder of the user's files: a file where a folder could be asked for, a text."""
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "tiny.txt").write_text(TEXT)
    return tmp_path


def refused(capsys, command, argv, status=2):
    """Run ``argv`` (argparse's refusals end in SystemExit); return its one error line."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == status
    return one_error_line(capsys, command)


# ---- sample: every setting is checked before the model is loaded ----------------------------

@pytest.mark.parametrize("option, value, message", [
    ("--temperature", "nan", "temperature must be a finite number >= 0 (0 = greedy, 1 = the "
                             "model's own distribution), got nan"),
    ("--top-k", "-1", "top_k must be >= 1 or None (the number of most likely tokens to keep; "
                      "None disables it), got -1"),
    ("--top-p", "0", "top_p must be in the interval (0, 1] (1 keeps every token) or None, got 0.0"),
    ("--min-p", "2", "min_p must be in [0, 1] (keep tokens with probability >= min_p * the top "
                     "one's) or None, got 2.0"),
    ("--repetition-penalty", "0", "repetition_penalty must be a finite number > 0 (1 = off, > 1 "
                                  "makes tokens already in the context less likely), got 0.0"),
])
def test_bad_sampling_setting_is_one_line_before_the_model_loads(capsys, world, option, value,
                                                                 message):
    """These used to print the checkpoint's header line first: two lines on stderr."""
    before = snapshot(world["base"])
    assert cli.main(["sample", "--checkpoint", str(world["base"]), option, value]) == 2
    assert capsys.readouterr().err == f"llmcourse sample: error: {message}\n"
    # the same line for a checkpoint that is not there: the model was never loaded
    assert cli.main(["sample", "--checkpoint", str(world["root"] / "nope"), option, value]) == 2
    assert one_error_line(capsys, "sample") == f"llmcourse sample: error: {message}"
    assert snapshot(world["base"]) == before


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_seed_too_large_for_torch_is_refused_at_the_edge(capsys, world, command):
    """It was "Overflow when unpacking long long", which says nothing of what to do."""
    big = str(2**80)
    line = refused(capsys, command, [command, "--checkpoint", str(world["base"]), "--seed", big])
    assert line == (f"llmcourse {command}: error: argument --seed: must be <= {MAX_SEED} (2**63 "
                    f"- 1, the largest seed torch takes; e.g. --seed 1337), got {big} (see "
                    f"llmcourse {command} --help)")
    # the messages of the lesson of day 24 stay as they were
    line = refused(capsys, command, [command, "--checkpoint", "x", "--seed", "one"])
    assert line.endswith("argument --seed: 'one' is not a whole number "
                         f"(see llmcourse {command} --help)")
    line = refused(capsys, command, [command, "--checkpoint", "x", "--seed", "-1"])
    assert line.endswith(f"argument --seed: must be >= 0, got -1 (see llmcourse {command} --help)")


def test_sample_output_that_cannot_be_written_is_refused_before_sampling(capsys, world, files):
    before = snapshot(files)
    line = refused(capsys, "sample", ["sample", "--checkpoint", str(world["base"]), "--output", ""])
    assert line == ("llmcourse sample: error: argument --output: is empty; give a path, e.g. "
                    "out/my-run (see llmcourse sample --help)")
    target = files / "afile" / "x.txt"
    assert cli.main(["sample", "--checkpoint", str(world["base"]), "--output", str(target)]) == 2
    assert capsys.readouterr().err == (  # it said "the folder .../afile does not exist"
        f"llmcourse sample: error: --output {target}: {files / 'afile'} is a file, not a folder, "
        "so nothing can be written inside it; choose a path in a folder\n")
    assert snapshot(files) == before


def test_sample_output_in_a_read_only_folder_fails_before_sampling(capsys, world, tmp_path):
    """It sampled first, then failed: two lines (the header, then the error)."""
    with small_tmpfs(tmp_path / "ro", "size=64k,ro") as mounted:
        if not mounted:
            pytest.skip("mounting a read-only tmpfs needs root")
        target = tmp_path / "ro" / "s.txt"
        assert cli.main(["sample", "--checkpoint", str(world["base"]), "--output",
                         str(target)]) == 1
        assert capsys.readouterr().err == (f"llmcourse sample: error: {tmp_path / 'ro'} is on a "
                                           "read-only file system: choose a writable folder\n")
        assert not target.exists()


# ---- out of memory: one line, exit 1, the run as it was ---------------------------------------

ALLOC = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
         "memory: you tried to allocate 120000000000 bytes. Error code 12 (Cannot allocate memory)")


def test_train_out_of_memory_is_one_line(capsys, monkeypatch, world, tmp_path):
    import llmcourse.runs

    def too_big(*args, **kwargs):
        raise RuntimeError(ALLOC)

    monkeypatch.setattr(llmcourse.runs, "train_preset", too_big)
    assert cli.main(train_args(world["text"], tmp_path / "r")) == 1
    assert capsys.readouterr().err == (
        "llmcourse train: error: not enough memory: an allocation of 111.8 GiB failed; use "
        "smaller settings: batch_size, block_size, n_embd or n_layer (--set ...)\n")


def test_bench_out_of_memory_is_one_line(capsys, monkeypatch):
    import llmcourse.bench

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.17 GiB for an array with shape (100000000, 17)")

    monkeypatch.setattr(llmcourse.bench, "matmul_peak_flops", too_big)
    assert cli.main(["bench", "matmul", "--size", "8"]) == 1
    assert capsys.readouterr().err == ("llmcourse bench: error: not enough memory: an allocation "
                                       "of 3.17 GiB failed; give a smaller --size or --iters\n")


def test_a_runtime_error_that_is_not_memory_is_still_a_bug(capsys, monkeypatch):
    import llmcourse.bench

    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(llmcourse.bench, "matmul_peak_flops", broken)
    assert cli.main(["bench", "matmul", "--size", "8"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("the traceback above")


LIMITED = textwrap.dedent('''
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
    sys.argv = ["llmcourse"] + sys.argv[1:]
    from llmcourse.cli import main
    sys.exit(main())
''')


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps the address space on Linux")
def test_resumed_run_out_of_memory_keeps_the_run(world, tmp_path):
    """A batch too large for the memory (6 GiB here) was a traceback, exit 1 'a bug'."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(world["base"], run)
    before = snapshot(run, world["cache"])
    argv = train_args(world["text"], run, "max_iters=6", "batch_size=1000000000") + ["--resume"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               LLMCOURSE_CACHE_DIR=str(world["cache"]))
    done = subprocess.run([sys.executable, "-c", LIMITED, *argv], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    line = error_line(done.stderr, "train")
    assert line.startswith("llmcourse train: error: not enough memory: an allocation of ")
    assert line.endswith(" failed; use smaller settings: batch_size, block_size, n_embd or "
                         "n_layer (--set ...)")
    assert snapshot(run, world["cache"]) == before


# ---- counts too large to be meant ---------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["bench", "matmul", "--size", "1000000"],
     f"argument --size: must be <= {MAX_MATMUL_SIZE} (three such matrices of float32 take 3 GiB), "
     "got 1000000 (see llmcourse bench --help)"),
    (["bench", "generate", "--iters", str(10**21)],
     f"argument --iters: must be <= {MAX_BENCH_ITERS} (a benchmark, not a training run), got "
     f"{10**21} (see llmcourse bench --help)"),
    (["bench", "matmul", "--size", "0"], "argument --size: must be >= 1, got 0 (see llmcourse "
                                         "bench --help)"),
])
def test_bench_sizes_too_large_are_refused_before_any_work(capsys, argv, message):
    """--size 1000000 and --iters 10**21 were tracebacks (an allocation, an overflow)."""
    assert refused(capsys, "bench", argv) == f"llmcourse bench: error: {message}"


def test_sweep_with_a_huge_seed_count_is_refused_at_the_edge(capsys, tmp_path, monkeypatch):
    """--seeds 100000000 made a list of 10**8 runs and was killed for memory."""
    import llmcourse.cli.sweep as cli_sweep

    def never(*args, **kwargs):  # without the check, fail here instead of filling the memory
        raise AssertionError("the seed count was not refused before the sweep")

    monkeypatch.setattr(cli_sweep, "parse_seeds", never)
    monkeypatch.setattr(cli_sweep, "run_sweep", never)
    line = refused(capsys, "sweep", ["sweep", "--seeds", "100000000", "--out-dir",
                                     str(tmp_path / "sw")])
    assert line == ("llmcourse sweep: error: argument --seeds: 100000000 seeds would train "
                    f"100000000 runs per setting; give at most {MAX_SEEDS} (3 to 5 measure the "
                    "spread) (see llmcourse sweep --help)")
    assert not (tmp_path / "sw").exists()


# ---- a path under a file, an empty path ---------------------------------------------------------

def test_out_dir_under_a_file_is_one_line_that_says_what_to_do(capsys, files, world):
    """These said "[Errno 20] Not a directory: ..." or "[Errno 17] File exists: ..." (prepare,
    train, sweep) or "appeared while drawing" (plot)."""
    afile, sub = files / "afile", files / "afile" / "sub"
    before = snapshot(files, world["base"])
    block = f"{afile} is a file, not a folder, so nothing can be written inside it; choose a " \
            "path in a folder"
    assert cli.main(["prepare", str(files / "tiny.txt"), "--out-dir", str(sub),
                     "--no-progress"]) == 2
    assert one_error_line(capsys, "prepare") == \
        f"llmcourse prepare: error: --out-dir {sub}: {block}"
    assert cli.main(["plot", str(world["base"]), "--out", str(sub / "c.png")]) == 2
    assert one_error_line(capsys, "plot") == \
        f"llmcourse plot: error: --out {sub / 'c.png'}: {block}"
    assert cli.main(["sweep", "--out-dir", str(sub), *sets(["max_iters=2"])]) == 2
    assert one_error_line(capsys, "sweep") == f"llmcourse sweep: error: --out-dir {sub}: {block}"
    # train's out_dir comes through --set: the operating system's error, said plainly
    assert cli.main(train_args(world["text"], sub)) == 2
    assert one_error_line(capsys, "train") == (
        f"llmcourse train: error: {sub}: {afile} is a file, not a folder, so nothing can be made "
        "inside it; move that file or choose another path")
    assert snapshot(files, world["base"]) == before


@pytest.mark.parametrize("argv, option", [
    (["prepare", "shakespeare", "--out-dir", ""], "--out-dir"),
    (["sweep", "--out-dir", ""], "--out-dir"),
])
def test_an_empty_out_dir_is_refused(capsys, argv, option, tmp_path, monkeypatch):
    """An empty --out-dir meant the current folder: prepare offered to replace it, listing
    the user's files (and its own lock file); sweep refused it as 'not a sweep folder'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    command = argv[0]
    assert refused(capsys, command, argv) == (
        f"llmcourse {command}: error: argument {option}: is empty; give a path, e.g. out/my-run "
        f"(see llmcourse {command} --help)")
    assert snapshot(tmp_path) == before


# ---- Ctrl-C while Python loads torch -------------------------------------------------------------

def test_the_cli_module_loads_without_torch():
    """So that Ctrl-C in the first seconds reaches main()'s handler, not a raw traceback."""
    done = subprocess.run([sys.executable, "-c", "import sys, llmcourse.cli; "
                           "print('torch' in sys.modules)"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.stdout.strip() == "False", done.stderr


CTRL_C_AT_START = textwrap.dedent('''
    import os, signal, sys
    class CtrlC:  # Ctrl-C arrives while the command imports the data code (and torch)
        def find_spec(self, name, path=None, target=None):
            if name == "llmcourse.data":
                os.kill(os.getpid(), signal.SIGINT)
            return None
    sys.meta_path.insert(0, CtrlC())
    sys.argv = ["llmcourse"] + sys.argv[1:]
    from llmcourse.cli import main
    sys.exit(main())
''')


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_before_the_command_starts_is_130_and_one_line(files):
    """It was a KeyboardInterrupt traceback from inside torch's import, and exit -2."""
    before = snapshot(files)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CTRL_C_AT_START, "prepare",
                           str(files / "tiny.txt"), "--out-dir", str(files / "prep")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr == ("llmcourse prepare: error: interrupted before the command started; "
                           "nothing was changed\n")
    assert snapshot(files) == before


# ---- settings the configs now check (val_fraction, seed, bias) ------------------------------------

@pytest.mark.parametrize("setting, words", [
    ("data.val_fraction=abc", "val_fraction must be a number in [0, 1)"),
    ("seed=99999999999999999999999", "seed"),
    ("model.bias=maybe", "bias"),
    ("model.tie_weights=2", "tie_weights"),
])
def test_a_setting_of_the_wrong_kind_is_one_line_and_changes_nothing(capsys, world, setting,
                                                                     words):
    """These were a traceback (val_fraction), "Overflow when unpacking long long" (seed) or a
    run that took "maybe" as True (bias)."""
    before = snapshot(world["base"])
    out = world["base"].parent / "new_run"
    assert cli.main(train_args(world["text"], out, setting)) == 2
    line = one_error_line(capsys, "train")
    assert words in line and setting.split("=", 1)[1] in line, line
    assert snapshot(world["base"]) == before and not out.exists()
