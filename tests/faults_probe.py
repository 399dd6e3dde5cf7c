"""Try every bad input and fault of ``book/faults.md`` and print its table rows.

    python tests/faults_probe.py > /tmp/rows.md        # about two minutes on 2 cores
    python tests/faults_probe.py --sections issue24     # only the cases of issue 24

Each probe runs the CLI (in this process, or as a subprocess for ``kill -9``) on tiny runs in a
temporary folder and records the exit status, the line the user sees, and whether the earlier
run's files and the prepared data are byte-identical afterwards. A full disk and a read-only
folder are real small tmpfs mounts when this runs as root (else those rows say "skipped").
The assertions live in ``tests/test_faults*.py``; this script only reports. The cases of issue 24
carry what a good answer is (``good``), and the closing totals count them: run the script on
the code before a fix and after it to compare (``PYTHONPATH=/path/to/old/checkout``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llmcourse import cli  # noqa: E402

from faults_helpers import (CHECK_SETUP, TEXT, TINY, notebook, sets, small_tmpfs,  # noqa: E402
                            snapshot, train_args)

ROOT = Path(tempfile.mkdtemp(prefix="faults-"))
ROWS: list[str] = []
COUNT = [0]
RESULTS: list[dict] = []  # one per row: its exit status, a traceback seen, files kept, good


def call(argv):
    """Run the CLI in this process: (exit status, the line shown)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - escaped the command's own handling
            code = "raised"
            print(f"Traceback (most recent call last):\n{type(exc).__name__}: {exc}", file=err)
    return _shown(code, out.getvalue(), err.getvalue())


def _shown(code, out_text, err_text):
    """(exit status, the line shown): the last stderr line, or stdout's on a quiet success."""
    lines = [x for x in err_text.splitlines() if x.strip()]
    shown = lines[-1] if lines and (code or not out_text.strip()) else \
        out_text.strip().splitlines()[-1] if out_text.strip() else ""
    if code == 0 and lines:  # a note on stderr next to a success
        shown = lines[-1] + " / " + shown if shown else lines[-1]
    if "Traceback (most recent call last)" in err_text:
        shown = "[traceback] " + shown
    elif len(lines) > 1:
        shown += f" [{len(lines)} lines on stderr]"
    return code, shown


def sub(argv, *, env=None, timeout=300, limit_as=None):
    """Run ``llmcourse ARGV`` as a subprocess (its kernel's or children's output included)."""
    cmd = [sys.executable, "-m", "llmcourse", *argv]
    if limit_as and shutil.which("prlimit"):
        cmd = ["prlimit", f"--as={limit_as}", "--"] + cmd
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, **(env or {})))
    except subprocess.TimeoutExpired:
        return "timeout", f"still running after {timeout} s"
    return _shown(proc.returncode, proc.stdout, proc.stderr)


def clean(text):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).replace("\n", " ")
    text = text.replace(str(ROOT), "…").replace("|", "\\|")
    return text if len(text) < 400 else text[:397] + "..."


def row(probe, code, shown, same=None, good=None):
    """One table row; ``good`` (issue 24's cases) says whether the answer is the right one."""
    kept = "" if same is None else ("yes" if same else "**no**")
    COUNT[0] += 1
    mark = "" if good is None else (" ✓" if good else " ✗")
    ROWS.append(f"| {COUNT[0]} | {probe}{mark} | {code} | {clean(shown)} | {kept} |")
    RESULTS.append({"code": code, "traceback": str(shown).startswith("[traceback]"),
                    "kept": same, "good": good})
    print(ROWS[-1], flush=True)


def one_line(code, shown, status=2):
    """The rule-1 answer: exit ``status`` (or any of 1, 2 if None), one line, no traceback."""
    return (code == status if status is not None else code in (1, 2)) and \
        ": error: " in shown and not shown.startswith("[traceback]") and "lines on stderr" not in shown


def base_run(name="base", extra=()):
    out = ROOT / name
    args = train_args(TEXT_FILE, out, *extra)
    code, shown = call(args)
    assert code == 0, shown
    return out, args


def copy_run(name):
    out = ROOT / name
    shutil.copytree(BASE, out)
    args = train_args(TEXT_FILE, out)
    return out, args


def prepared_of(out):
    return Path(json.loads((out / "run.json").read_text())["prepared_dir"])


def on_run(probe, extra, name=None, mutate=None):
    out, args = copy_run(name or f"r{len(ROWS)}")
    if mutate:
        mutate(out)
    before = snapshot(out, prepared_of(out) if (out / "run.json").is_file() else out)
    code, shown = call(args + extra)
    after = snapshot(out, prepared_of(out) if (out / "run.json").is_file() else out)
    row(probe, code, shown, None if code == 0 and "nothing to do" not in shown else before == after)


os.environ["LLMCOURSE_CACHE_DIR"] = str(ROOT / "cache")
TEXT_FILE = ROOT / "tiny.txt"
TEXT_FILE.write_text(TEXT, encoding="utf-8")
BASE, BASE_ARGS = base_run()
CKPT = BASE / "ckpt.pt"


def section(title):
    ROWS.append(f"| | **{title}** | | | |")
    print(ROWS[-1])


def probe_base():  # noqa: C901 - one long list of probes
    section("train: settings and an earlier run")
    on_run("train into a finished run with `--set data.tokenizer=gpt2` (no `--resume`)",
           sets(["data.tokenizer=gpt2"]))
    on_run("`--resume --set data.tokenizer=gpt2`", ["--resume"] + sets(["data.tokenizer=gpt2"]))
    on_run("`--resume --set model.n_embd=32`", ["--resume"] + sets(["model.n_embd=32"]))
    on_run("`--resume --set model.n_layer=2`", ["--resume"] + sets(["model.n_layer=2"]))
    on_run("`--resume --set model.block_size=8`", ["--resume"] + sets(["model.block_size=8"]))
    on_run("`--resume --set data.val_fraction=0.5`",
           ["--resume"] + sets(["data.val_fraction=0.5"]))
    on_run("`--resume` with `learning_rate=1e30 grad_clip=0` (diverges)",
           ["--resume"] + sets(["max_iters=8", "lr_decay_iters=8", "learning_rate=1e30",
                                "grad_clip=0"]))
    out = ROOT / "div"
    row("a new run with `learning_rate=1e30 grad_clip=0` (diverges before a checkpoint)",
        *call(train_args(TEXT_FILE, out, "learning_rate=1e30", "grad_clip=0")))
    on_run("`--resume --set max_iters=4` (the checkpoint is at 4)",
           ["--resume"] + sets(["max_iters=4"]))
    on_run("`--resume --set max_iters=2` (below the checkpoint)",
           ["--resume"] + sets(["max_iters=2"]))
    on_run("`--resume` with `ckpt.pt` missing, `best.pt` there (kill in an old first save)",
           ["--resume"] + sets(["max_iters=6", "lr_decay_iters=6"]),
           mutate=lambda o: (o / "ckpt.pt").unlink())
    for item, what in [("data.tokeniser=gpt2", "a typo in a data key"),
                       ("tokeniser=gpt2", "the same typo, bare"),
                       ("model.n_layers=2", "a typo in a model key"),
                       ("train.max_iter=5", "a typo in a train key"),
                       ("learnin_rate=1", "a bare key no section has"),
                       ("train.n_layer=2", "a model key in the train section"),
                       ("train.block_size=32", "`train.block_size` (the model's setting)"),
                       ("modle.n_layer=2", "an unknown section"),
                       ("max_iters", "no `=`")]:
        row(f"`--set {item}` ({what})", *call(["train", "--print-config", "--set", item]))
    for item, what in [("batch_size=0", "a zero batch size"),
                       ("learning_rate=-1", "a negative learning rate"),
                       ("dtype=float8", "an unknown dtype"),
                       ("device=tpu", "an unknown device"),
                       ("batch_size=abc", "a word for a number"),
                       ("model.n_head=3", "`n_embd` not divisible by `n_head`"),
                       ("model.vocab_size=10", "a vocabulary smaller than the tokenizer's"),
                       ("max_iters=-1", "negative `max_iters`")]:
        row(f"`--set {item}` ({what})", *call(train_args(TEXT_FILE, ROOT / "values", item)))
    out = ROOT / "zero"
    row("`--set max_iters=0`", *call(train_args(TEXT_FILE, out, "max_iters=0")))
    out = ROOT / "b128"
    code, shown = call(train_args(TEXT_FILE, out, "block_size=128", "max_iters=1",
                                  "lr_decay_iters=1", "eval_interval=1"))
    size = torch.load(out / "ckpt.pt", weights_only=True)["model_config"]["block_size"]
    row("bare `--set block_size=128`", code, f"{shown} (checkpoint's block_size: {size})")
    out = ROOT / "bigblock"
    row("`--set model.block_size=100000` (longer than the data)", *call(
        train_args(TEXT_FILE, out, "model.block_size=100000")))
    row("`--preset nope`", *call(["train", "--preset", "nope"]))
    for name, item in [("no such dataset", "data.dataset=nosuch"),
                       ("a missing text file", "data.dataset=/no/such/file.txt"),
                       ("`val_fraction=1.5`", "data.val_fraction=1.5")]:
        row(f"train on {name}", *call(["train", "--no-progress"] + sets(
            TINY + [f"out_dir={ROOT / 'x'}", item])))
    out = ROOT / "v0"
    row("`data.val_fraction=0` (no validation tokens)",
        *call(train_args(TEXT_FILE, out, "data.val_fraction=0")))
    empty = ROOT / "empty"
    empty.mkdir()
    row("`--resume` in an empty folder", *call(BASE_ARGS[:-1] + [f"out_dir={empty}", "--resume"]))
    early = ROOT / "early"
    early.mkdir()
    (early / "run.json").write_text("{}")
    (early / "metrics.jsonl").write_text('{"type": "train", "iter": 0, "loss": 4.0}\n')
    row("`--resume` after a kill before the first checkpoint",
        *call(BASE_ARGS[:-1] + [f"out_dir={early}", "--resume"]))
    row("a new run there", *call(BASE_ARGS[:-1] + [f"out_dir={early}"]))
    afile = ROOT / "afile"
    afile.write_text("x")
    row("`out_dir` is a file", *call(BASE_ARGS[:-1] + [f"out_dir={afile}"]))

    def leftovers(o):
        (o / "ckpt.pt.tmp-999-deadbeef").write_bytes(b"PK half")
        (o / "run.json.tmp-999").write_text("{")
    out, args = copy_run("left")
    leftovers(out)
    code, shown = call(args + ["--resume"] + sets(["max_iters=6", "lr_decay_iters=6"]))
    row("`--resume` with `ckpt.pt.tmp-*` and `run.json.tmp-*` left by a kill", code,
        f"{shown} (left after: {sorted(p.name for p in out.glob('*.tmp*')) or 'none'})")

    section("train: the prepared data")

    def private(name):
        out, prep = ROOT / name, ROOT / f"{name}-prep"
        args = train_args(TEXT_FILE, out, f"data.prepared_dir={prep}")
        assert call(args)[0] == 0
        return out, prep, args

    out, prep, args = private("remade")
    row("`prepare --tokenizer gpt2 --out-dir` the run's data folder",
        *call(["prepare", str(TEXT_FILE), "--tokenizer", "gpt2", "--out-dir", str(prep),
               "--no-progress"]))
    row("the same with `--force`", *call(["prepare", str(TEXT_FILE), "--tokenizer", "gpt2",
                                          "--out-dir", str(prep), "--force", "--no-progress"]))
    before = snapshot(out)
    row("`--resume` after that", *call(args + ["--resume"] + sets(["max_iters=6"])),
        snapshot(out) == before)
    row("`eval` after that", *call(["eval", "--checkpoint", str(out), "--device", "cpu"]),
        snapshot(out) == before)
    row("`sample` after that", *call(["sample", "--checkpoint", str(out), "--device", "cpu"]),
        snapshot(out) == before)
    out, prep, args = private("corrupt")
    ids = np.fromfile(prep / "train.bin", dtype=np.uint16)
    ids[10] = 999
    ids.tofile(prep / "train.bin")
    before = snapshot(out)
    row("`--resume` on a `train.bin` holding id 999 (vocabulary 53)",
        *call(args + ["--resume"] + sets(["max_iters=6"])), snapshot(out) == before)
    row("`eval --split train` on it",
        *call(["eval", "--checkpoint", str(out), "--split", "train", "--device", "cpu"]))
    out, prep, args = private("short")
    with open(prep / "train.bin", "r+b") as f:
        f.truncate(100)
    row("`--resume` on a truncated `train.bin`", *call(args + ["--resume"] + sets(["max_iters=6"])))
    out, prep, args = private("meta")
    (prep / "meta.json").write_text('{"format_version": 1,')
    row("`--resume` with a damaged `meta.json`", *call(args + ["--resume"] + sets(["max_iters=6"])))
    out, prep, args = private("gone")
    shutil.rmtree(prep)
    row("`eval` with the run's data folder deleted",
        *call(["eval", "--checkpoint", str(out), "--device", "cpu"]))
    row("`sample` with it deleted (needs only run.json's tokenizer)",
        *call(["sample", "--checkpoint", str(out), "--device", "cpu", "--max-new-tokens", "5"]))
    mine = ROOT / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    row("`data.prepared_dir` holding other files",
        *call(BASE_ARGS[:-1] + [f"out_dir={ROOT / 'pd'}", "--set", f"data.prepared_dir={mine}"]))

    section("prepare")
    default = prepare_path = None
    code, shown = call(["prepare", str(TEXT_FILE), "--no-progress"])
    default = Path(os.environ["LLMCOURSE_CACHE_DIR"]) / "prepared" / "tiny-char"
    before = snapshot(default)
    row("`prepare tiny.txt --val-fraction 0.5` next to the default one",
        *call(["prepare", str(TEXT_FILE), "--val-fraction", "0.5", "--no-progress"]),
        snapshot(default) == before)
    for flags, what in [(["--val-fraction", "1.0"], "`--val-fraction 1.0`"),
                        (["--val-fraction", "-0.1"], "`--val-fraction -0.1`"),
                        (["--tokenizer", "nosuch"], "an unknown tokenizer")]:
        row(f"prepare with {what}", *call(["prepare", str(TEXT_FILE), "--no-progress"] + flags))
    row("`prepare no-such-dataset`", *call(["prepare", "no-such-dataset", "--no-progress"]))
    for name, content in [("empty.txt", b""), ("latin.txt", "caf\u00e9\n".encode("latin-1") * 50),
                          ("one.txt", b"a")]:
        path = ROOT / name
        path.write_bytes(content)
        row(f"prepare {name}", *call(["prepare", str(path), "--no-progress"]))
    odd = ROOT / "odd"
    shutil.copytree(default, odd)
    (odd / "meta.json").write_text("{oops")
    before = snapshot(odd)
    row("prepare into a folder whose `meta.json` is damaged",
        *call(["prepare", str(TEXT_FILE), "--out-dir", str(odd), "--no-progress"]),
        snapshot(odd) == before)
    row("prepare into a folder of other files",
        *call(["prepare", str(TEXT_FILE), "--out-dir", str(mine), "--no-progress"]))
    row("prepare with `--out-dir` a file",
        *call(["prepare", str(TEXT_FILE), "--out-dir", str(afile), "--no-progress"]))
    junk = default.parent / ".tiny-char.tmp-killed"
    junk.mkdir()
    (junk / "train.bin").write_bytes(b"\0" * 65_000)
    row("prepare after a killed prepare left `.tiny-char.tmp-*`",
        *call(["prepare", str(TEXT_FILE), "--no-progress"]))
    os.replace(default, default.parent / ".tiny-char.old-killed")
    row("prepare after a kill between the two renames of a replacement",
        *call(["prepare", str(TEXT_FILE), "--no-progress"]))

    # concurrent prepare of one folder: threads (flock is per open file) and processes
    from llmcourse.data import prepare
    failures = []
    for _ in range(3):
        cache = ROOT / "race"
        os.environ["LLMCOURSE_CACHE_DIR"] = str(cache)

        def work():
            try:
                prepare(TEXT_FILE, "char", progress=False, verbose=False)
            except Exception as exc:  # noqa: BLE001 - reported
                failures.append(repr(exc))
        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shutil.rmtree(cache)
    row("3 rounds of 10 concurrent `prepare` of one folder (threads)", 0 if not failures else 1,
        f"{30 - len(failures)} of 30 succeeded" + (f": {failures[0]}" if failures else ""))
    env = dict(os.environ, LLMCOURSE_CACHE_DIR=str(ROOT / "race2"))
    procs = [subprocess.Popen([sys.executable, "-m", "llmcourse", "prepare", str(TEXT_FILE),
                               "--no-progress"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [(p.wait(), p.stdout.read()) for p in procs]
    row("4 concurrent `llmcourse prepare` processes", max(c for c, _ in outs),
        "; ".join(sorted({o.strip().splitlines()[0] for _, o in outs})))
    os.environ["LLMCOURSE_CACHE_DIR"] = str(ROOT / "cache")

    section("sample and eval")
    ck = ["--checkpoint", str(BASE), "--device", "cpu", "--max-new-tokens", "5"]
    for flags, what in [(["--prompt", ""], "`--prompt ''`"),
                        (["--prompt", "Zebra€"], "a prompt with characters the run never saw"),
                        (["--prompt", "caf\udce9"], "a prompt that is not UTF-8"),
                        (["--temperature", "-1"], "`--temperature -1`"),
                        (["--top-p", "1.5"], "`--top-p 1.5`"),
                        (["--top-k", "0"], "`--top-k 0`"),
                        (["--num-samples", "0"], "`--num-samples 0`"),
                        (["--max-new-tokens", "0"], "`--max-new-tokens 0`"),
                        (["--seed", "-1"], "`--seed -1`"),
                        (["--device", "cuda"], "`--device cuda` on a machine without one")]:
        row(f"sample with {what}", *call(["sample"] + ck + flags))
    row("sample from a missing folder", *call(["sample", "--checkpoint", str(ROOT / "nope")]))
    row("sample from a folder without checkpoints", *call(["sample", "--checkpoint", str(empty)]))
    for name, data in [("random bytes", os.urandom(4096)),
                       ("half a checkpoint", CKPT.read_bytes()[: CKPT.stat().st_size // 2])]:
        bad = ROOT / f"{name.replace(' ', '_')}.pt"
        bad.write_bytes(data)
        row(f"sample from {name} as a `.pt`", *call(["sample", "--checkpoint", str(bad)]))

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(ROOT / "pwned"),))
    evil = ROOT / "evil" / "ckpt.pt"
    evil.parent.mkdir()
    torch.save({"model": Payload()}, evil)
    code, shown = call(["sample", "--checkpoint", str(evil)])
    row("sample from a crafted pickle that runs a command", code,
        f"{shown} (command ran: {(ROOT / 'pwned').exists()})")
    plain = ROOT / "plain" / "ckpt.pt"
    plain.parent.mkdir()
    torch.save({"weights": torch.ones(2)}, plain)
    row("sample from a `.pt` that is not an llmcourse checkpoint",
        *call(["sample", "--checkpoint", str(plain)]))
    out, _ = copy_run("norun")
    (out / "run.json").unlink()
    row("sample with `run.json` missing", *call(["sample", "--checkpoint", str(out)]))
    (out / "run.json").write_text("{not json")
    row("sample with `run.json` damaged", *call(["sample", "--checkpoint", str(out)]))
    ev = ["eval", "--checkpoint", str(BASE), "--device", "cpu"]
    for flags, what in [(["--iters", "0"], "`--iters 0`"), (["--batch-size", "0"], "`--batch-size 0`"),
                        (["--split", "test"], "`--split test`")]:
        row(f"eval with {what}", *call(ev + flags))

    section("bench")
    for argv in (["bench", "train", "--iters", "0"], ["bench", "matmul", "--size", "0"],
                 ["bench", "generate", "--iters", "0"], ["bench", "nothing"]):
        row(f"`llmcourse {' '.join(argv)}`", *call(argv))

    section("full disk, read-only folder (real tmpfs mounts)")
    disk = ROOT / "disk"
    with small_tmpfs(disk, "size=256k") as mounted:
        if mounted:
            row("train into a 256 KiB tmpfs (`n_embd=64`: the checkpoint does not fit)",
                *call(train_args(TEXT_FILE, disk / "run", "model.n_embd=64")))
            big = ROOT / "big.txt"
            big.write_text(TEXT * 40)
            row("prepare a 400 kB text into it",
                *call(["prepare", str(big), "--out-dir", str(disk / "prep"), "--no-progress"]))
            row("what is left on the tmpfs afterwards", "",
                ", ".join(sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))) or "nothing")
        else:
            row("full disk", "skipped", "needs root to mount a tmpfs")
    ro = ROOT / "ro"
    with small_tmpfs(ro, "ro,size=64k") as mounted:
        if mounted:
            row("train into a read-only tmpfs", *call(BASE_ARGS[:-1] + [f"out_dir={ro / 'run'}"]))
            row("prepare into it",
                *call(["prepare", str(TEXT_FILE), "--out-dir", str(ro / "prep"), "--no-progress"]))
        else:
            row("read-only folder", "skipped", "needs root to mount a tmpfs")

    section("the Python API")
    from llmcourse.data import get_batch
    from llmcourse.tokenizers import get_tokenizer

    def api(probe, fn):
        try:
            result = fn()
            row(probe, "returns", repr(result)[:200])
        except Exception as exc:  # noqa: BLE001 - reported
            row(probe, "raises", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    signed = np.arange(200, dtype=np.int64)
    signed[50:] = -1
    api("`get_batch` on int64 data holding -1",
        lambda: get_batch(signed, 8, 16, generator=torch.Generator().manual_seed(0)))
    api("`get_batch(..., vocab_size=40)` on ids up to 199",
        lambda: get_batch(np.arange(200, dtype=np.uint16), 8, 16, vocab_size=40))
    gpt2 = get_tokenizer("gpt2")
    api("gpt2 `decode([-1])`", lambda: gpt2.decode([-1]))
    api("gpt2 `decode([50257])`", lambda: gpt2.decode([50257]))
    api("gpt2 `encode('a\\udc80b')` (a lone surrogate)", lambda: gpt2.encode("a\udc80b"))
    char = get_tokenizer("char", text="abc")
    api("char `encode('a\\udc80b')`", lambda: char.encode("a\udc80b"))
    api("char `decode([-1])`", lambda: char.decode([-1]))
    from llmcourse.train import TrainConfig, load_checkpoint
    api("`load_checkpoint` of the crafted pickle", lambda: load_checkpoint(evil))
    api("`TrainConfig(max_iters=-1)`", lambda: TrainConfig(max_iters=-1))
    from llmcourse.data import open_prepared
    api("`PreparedData.load('train')` of the file holding id 999",
        lambda: open_prepared(ROOT / "corrupt-prep").load("train"))

    section("kill -9 at random moments (then the next command)")
    rng = random.Random(0)
    for k in range(6):
        out = ROOT / f"kill{k}"
        argv = [sys.executable, "-m", "llmcourse", "train", "--no-progress"] + sets(
            TINY + ["max_iters=400", "lr_decay_iters=400", "eval_interval=20",
                    "always_save_checkpoint=true", f"data.dataset={TEXT_FILE}", f"out_dir={out}"])
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out / "ckpt.pt").exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        iters = torch.load(out / "ckpt.pt", weights_only=True)["iter_num"]
        resume_args = train_args(TEXT_FILE, out, "max_iters=400", "lr_decay_iters=400",
                                 "eval_interval=20", "always_save_checkpoint=true")
        code, shown = call(resume_args + ["--resume", "--set", f"max_iters={iters + 20}"])
        row(f"`kill -9` of a training run (ckpt.pt at iteration {iters}), then `--resume`",
            code, shown)
    for k in range(3):
        cache = ROOT / f"kp{k}"
        env = dict(os.environ, LLMCOURSE_CACHE_DIR=str(cache))
        big = ROOT / "big.txt"
        if not big.is_file() or big.stat().st_size < 10_000_000:
            big.write_text(TEXT * 1000)
        proc = subprocess.Popen([sys.executable, "-m", "llmcourse", "prepare", str(big),
                                 "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while proc.poll() is None and not list((cache / "prepared").glob(".big-char.tmp-*/train.bin")):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = sorted(p.name for p in (cache / "prepared").glob(".*")) if cache.exists() else []
        os.environ["LLMCOURSE_CACHE_DIR"] = str(cache)
        code, shown = call(["prepare", str(big), "--no-progress"])
        os.environ["LLMCOURSE_CACHE_DIR"] = str(ROOT / "cache")
        after = sorted(p.name for p in (cache / "prepared").glob(".*"))
        row(f"`kill -9` of `prepare` (left {', '.join(left) or 'nothing'}), then prepare again",
            code, f"{shown} (hidden entries after: {after or 'none'})")


# ---- issue 24: the newer commands, `llmcourse check` on collected notebooks ------------------


def guard(probe, fn):
    """Run one probe; a probe that cannot even be set up is reported, not fatal."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - reported
        row(probe, "probe failed", f"{type(exc).__name__}: {str(exc)[:200]}", good=False)


def api_good(probe, fn, ok):
    """Call ``fn``; ``ok(result or exception)`` says whether that was the right answer."""
    try:
        result = fn()
        shown, value = repr(result)[:200], result
        code = "returns"
    except Exception as exc:  # noqa: BLE001 - reported
        shown, value = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", exc
        code = "raises"
    row(probe, code, shown, good=bool(ok(value)))


def probe_check():
    section("check and diff on collected notebooks")
    folder = ROOT / "nbs"
    folder.mkdir()
    forged = notebook(folder / "day99_forged.ipynb",
                      [CHECK_SETUP, "print('✅ double: passed')  # check_double never called"])
    before = snapshot(folder)
    code, shown = call(["check", str(forged)])
    row("`check` on a cell that prints \"✅ double: passed\" without calling the check", code, shown,
        snapshot(folder) == before, good=code == 1)
    real = notebook(folder / "day99_real.ipynb", [CHECK_SETUP, "check_double(lambda x: 2 * x)"])
    code, shown = call(["check", str(real)])
    row("`check` on a real passing check call", code, shown, good=code == 0)
    victim = ROOT / "victim.txt"
    victim.write_text("keep me")
    evil = notebook(folder / "day99_evil.ipynb",
                    [CHECK_SETUP, f"import os\nos.remove({str(victim)!r})", "check_double(lambda x: 2 * x)"])
    code, shown = call(["check", str(evil)])
    row("`check` on a cell `os.remove(<a file outside the temporary folder>)`", code,
        f"{shown} (file still there: {victim.exists()})", victim.exists(), good=victim.exists())
    for content in ("[]", '{"cells":"abc"}', "{}"):
        bad = folder / "day01_odd.ipynb"
        bad.write_text(content)
        for command in ("diff", "check"):
            code, shown = call([command, str(bad)])
            row(f"`{command}` on an `.ipynb` holding `{content}`", code, shown, bad.read_text() == content,
                good=one_line(code, shown) and str(bad) in shown)
    dies = notebook(folder / "day99_dies.ipynb", [CHECK_SETUP, "import os\nos._exit(3)", "check_double(1)"])
    code, shown = call(["check", str(dies)])
    row("`check` when the kernel dies (`os._exit`)", code, shown, good=one_line(code, shown, 1))
    slow = notebook(folder / "day99_slow.ipynb", ["open('started', 'w').close()\nimport time\ntime.sleep(60)"])
    code, shown = sub(["check", str(slow), "--timeout", "2"])
    row("`check --timeout 2` on a cell that sleeps (subprocess: the kernel's own stderr too)", code,
        shown, good=one_line(code, shown))
    code, shown = sub(["check", str(real)])
    row("`check` on a passing notebook (subprocess: any kernel warning on stderr)", code, shown,
        good=code == 0 and "TCP" not in shown and " / " not in shown)
    tmp = ROOT / "ctrlc"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "llmcourse", "check", str(slow)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TMPDIR=str(tmp)))
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not (
            list(tmp.glob("*/started")) or time.time() > deadline - 100 and not list(tmp.glob("*"))):
        time.sleep(0.2)
    if not list(tmp.glob("*/started")):
        time.sleep(8)  # an older `check` runs the notebook elsewhere: give its kernel time to start
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    code, shown = _shown(proc.returncode, out, err)
    row("Ctrl-C during `check`", code, shown, good=one_line(code, shown, 130))
    for value in ("0", "-1"):
        code, shown = call(["check", str(real), "--timeout", value])
        row(f"`check --timeout {value}`", code, shown, good=code == 2)
    binary = folder / "day01_binary.ipynb"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    code, shown = call(["diff", str(binary)])
    row("`diff` on binary bytes", code, shown, good=one_line(code, shown) and str(binary) in shown)
    lesson = Path(__file__).resolve().parents[1] / "lessons" / "day01_characters_to_numbers.ipynb"
    if lesson.is_file():
        renamed = folder / "day05_embeddings.ipynb"
        renamed.write_bytes(lesson.read_bytes())
        code, shown = call(["diff", str(renamed), "--color", "never"])
        row("`diff` on a day-01 notebook renamed day05", code, shown,
            renamed.read_bytes() == lesson.read_bytes(), good=one_line(code, shown) and "01" in shown)
    else:
        row("`diff` on a day-01 notebook renamed day05", "skipped", "lessons/ not built")


def probe_plot():
    section("plot")
    image = ROOT / "curves.png"
    image.write_bytes(b"an image of mine")
    code, shown = call(["plot", str(BASE), "--out", str(image)])
    row("`plot RUN --out curves.png` over an existing file", code, shown,
        image.read_bytes() == b"an image of mine", good=code == 2 and image.read_bytes() == b"an image of mine")
    for what, line in [("a metrics line `[1,2]`", "[1,2]"),
                       ("a train record without `iter`", '{"type": "train", "loss": 1.0}')]:
        out, _ = copy_run(f"plot{len(ROWS)}")
        with open(out / "metrics.jsonl", "a") as f:
            f.write(line + "\n")
        before = snapshot(out)
        code, shown = call(["plot", str(out), "--out", str(ROOT / f"p{len(ROWS)}.png")])
        row(f"`plot` with {what}", code, shown, snapshot(out) == before,
            good=code in (0, 2) and not shown.startswith("[traceback]"))
    code, shown = sub(["plot", str(BASE), "--out", str(ROOT / "big.png"), "--dpi", "20000"],
                      limit_as=8 << 30, timeout=300)
    row("`plot --dpi 20000` (under an 8 GiB address-space cap)", code, shown,
        good=one_line(code, shown, 2))
    disk = ROOT / "plotdisk"
    with small_tmpfs(disk, "size=64k") as mounted:
        if mounted:
            old = disk / "curves.png"
            old.write_bytes(b"\x89PNG old " * 5000)
            kept = old.read_bytes()
            for extra in ([], ["--force"]):
                code, shown = call(["plot", str(BASE), "--out", str(old), "--dpi", "300", *extra])
                row(f"`plot --out` an existing image on a full 64 KiB tmpfs{' --force' * bool(extra)}", code,
                    shown, old.read_bytes() == kept, good=code in (1, 2) and old.read_bytes() == kept)
        else:
            row("`plot --out` on a full disk", "skipped", "needs root to mount a tmpfs")


def sweep_args(out, *extra, grid=("model.n_embd=16",)):
    args = ["sweep", "--out-dir", str(out), "--seeds", "1", "--no-plot", "--no-progress"]
    for g in grid:
        args += ["--grid", g]
    return args + sets([t for t in TINY if not t.startswith("model.n_embd")]
                       + [f"data.dataset={TEXT_FILE}"]) + list(extra)


def probe_sweep():
    section("sweep")
    out = ROOT / "sweep"
    code, shown = call(sweep_args(out))
    assert code == 0, shown
    results = sorted(out.rglob("result.json"))
    for content in ('{"val_loss":1}', "[1]"):
        for r in results:
            r.write_text(content)
        before = snapshot(out)
        code, shown = call(sweep_args(out))
        row(f"`sweep` rerun with a `result.json` of `{content}`", code, shown, snapshot(out) == before,
            good=code in (0, 2) and not shown.startswith("[traceback]"))
    out2 = ROOT / "sweep2"
    call(sweep_args(out2))
    before = snapshot(out2)
    code, shown = call(sweep_args(out2, "--set", "learning_rate=0.01"))
    row("`sweep` rerun refused for a changed setting (does it name it?)", code, shown,
        snapshot(out2) == before, good=code == 2 and "learning_rate" in shown)
    code, shown = call(sweep_args(ROOT / "sweep3", "--variant", "a:model.n_embd=64",
                                  grid=("model.n_embd=16,32",)))
    row("`--grid model.n_embd=16,32 --variant a:model.n_embd=64`", code, shown, good=code == 2)
    longer = ROOT / "longer.txt"  # 200,000 characters: room for T = 100,000
    longer.write_text(TEXT * 20, encoding="utf-8")
    argv = [sys.executable, "-m", "llmcourse"] + sweep_args(
        ROOT / "sweep4", grid=("model.block_size=16,100000",)) + ["--set", f"data.dataset={longer}"]
    if shutil.which("prlimit"):  # never let the probe take the machine's memory
        argv = ["prlimit", f"--as={8 << 30}", "--"] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(15)
    start = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        out_text, err_text = proc.communicate(timeout=30)
        code, shown = _shown(proc.returncode, out_text, err_text)
        shown += f" (stopped {time.time() - start:.0f} s after Ctrl-C)"
        good = code in (2, 130) and time.time() - start < 30
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        code, shown, good = "killed", "still running 30 s after Ctrl-C", False
    row("`--grid model.block_size=16,100000` on 200,000 characters (8 GiB cap), Ctrl-C after 15 s",
        code, shown,
        good=good)
    disk = ROOT / "sweepdisk"
    with small_tmpfs(disk, "size=256k") as mounted:
        if mounted:
            code, shown = call(sweep_args(disk / "s", "--jobs", "2", grid=("model.n_embd=64,96",)))
            row("`sweep --jobs 2` on a full 256 KiB tmpfs", code, shown, good=one_line(code, shown, 1))
        else:
            row("`sweep --jobs 2` on a full disk", "skipped", "needs root to mount a tmpfs")


def probe_sample():
    section("sample, generate and edited checkpoints")
    ck = ["--checkpoint", str(BASE), "--device", "cpu", "--max-new-tokens", "5"]
    code, shown = call(["sample"] + ck + ["--top-p", "1e-6"])
    row("`sample --top-p 1e-6` (valid per the help)", code, shown, good=code == 0)
    from llmcourse.generate import generate
    api_good("`generate(..., top_p=1e-6)`",
             lambda: generate(tiny_gpt(1), [1, 2], 3, top_p=1e-6, seed=0).shape,
             lambda r: not isinstance(r, Exception))
    code, shown = call(["sample"] + ck + ["--stop-at-eos"])
    row("`sample --stop-at-eos` with the character tokenizer (no end-of-text token)", code, shown,
        good=code == 2 or "eos" in shown.lower() or "end-of-text" in shown)
    out, _ = copy_run("edited")
    for name in ("ckpt.pt", "best.pt"):  # sample and eval read best.pt first
        state = torch.load(out / name, weights_only=True)
        state["model_config"]["n_embd"] = 32
        torch.save(state, out / name)
    before = snapshot(out)
    for command in (["sample"] + ck[:1] + [str(out)] + ck[2:], ["eval", "--checkpoint", str(out),
                                                                "--device", "cpu"]):
        code, shown = call(command)
        row(f"`{command[0]}` on a checkpoint whose `model_config` no longer matches its weights", code,
            shown, snapshot(out) == before,
            good=one_line(code, shown) and "Error(s) in loading state_dict" not in shown)


def probe_tensorboard():
    section("train: TensorBoard and resume")
    out = ROOT / "tbfile"
    out.mkdir()
    (out / "tensorboard").write_text("a file of mine")
    code, shown = call(train_args(TEXT_FILE, out, "log=tensorboard"))
    row("`log=tensorboard` when `out_dir/tensorboard` is a file", code, shown,
        (out / "tensorboard").read_text() == "a file of mine",
        good=one_line(code, shown) and "Errno 17" not in shown)
    out = ROOT / "tb"
    args = train_args(TEXT_FILE, out, "log=tensorboard")
    call(args)
    events = len(list(out.rglob("events.*")))
    code, shown = call(args + ["--resume"])
    after = len(list(out.rglob("events.*")))
    row("`--resume` already at `max_iters` with TensorBoard", code,
        f"{shown} (event files: {events} before, {after} after)", good=after == events)


def tiny_gpt(layers):
    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=layers, n_head=2, n_embd=16, block_size=8, vocab_size=40))


def _advises_unsafe_load(exc):
    """torch's own advice to retry with ``weights_only=False`` (dangerous for an untrusted file)."""
    text = str(exc)
    return "will likely succeed" in text or "two options" in text


def probe_finetune():
    section("fine-tuning API")
    from llmcourse import finetune as lora_mod
    from llmcourse.finetune.distill import distillation_loss
    from llmcourse.finetune.dpo import dpo_loss
    one = lora_mod.apply_lora(tiny_gpt(1), r=2, alpha=4)
    path = ROOT / "one_layer_adapter.pt"
    lora_mod.save_lora(one, path)
    api_good("`load_lora` of a 1-layer adapter into a 2-layer model",
             lambda: lora_mod.load_lora(tiny_gpt(2), path), lambda r: isinstance(r, Exception))
    randomf = ROOT / "random_adapter.pt"
    randomf.write_bytes(os.urandom(2048))
    api_good("`load_lora` of a random file", lambda: lora_mod.load_lora(tiny_gpt(1), randomf),
             lambda r: isinstance(r, Exception) and not _advises_unsafe_load(r))

    class Payload:
        def __reduce__(self):
            return (print, ("a pickle ran",))
    pickled = ROOT / "pickled_adapter.pt"
    torch.save({"x": Payload()}, pickled)
    api_good("`load_lora` of a pickle with code", lambda: lora_mod.load_lora(tiny_gpt(1), pickled),
             lambda r: isinstance(r, Exception) and not _advises_unsafe_load(r))
    s, t = torch.randn(2, 3, 40), torch.randn(2, 3, 40)
    y = torch.randint(0, 40, (2, 3))
    nan_or_error = lambda r: isinstance(r, ValueError)  # noqa: E731 - refused, not a NaN
    api_good("`distillation_loss(T=inf)`", lambda: distillation_loss(s, t, y, T=float("inf")), nan_or_error)
    api_good("`distillation_loss(alpha=inf)`", lambda: distillation_loss(s, t, y, alpha=float("inf")),
             nan_or_error)
    api_good("`distillation_loss` with a target id >= V",
             lambda: distillation_loss(s, t, torch.full((2, 3), 40)), nan_or_error)
    lp = torch.randn(4)
    api_good("`dpo_loss(beta=inf)`", lambda: dpo_loss(lp, lp - 1, lp, lp, beta=float("inf")), nan_or_error)
    e = torch.zeros(0)
    api_good("`dpo_loss` on an empty batch", lambda: dpo_loss(e, e, e, e), nan_or_error)


def probe_tokenizers():
    section("tokenizers")
    from llmcourse.tokenizers import get_tokenizer
    from llmcourse.tokenizers.bpe import BPETokenizer
    api_good("`BPETokenizer.train` on text with a lone surrogate",
             lambda: BPETokenizer.train("ab\udc80 ab ab ab " * 20, 260),
             lambda r: isinstance(r, ValueError) and not isinstance(r, UnicodeError))
    folder = ROOT / "tokfolder"
    folder.mkdir()
    api_good("`get_tokenizer(<a folder>)`", lambda: get_tokenizer(str(folder)),
             lambda r: isinstance(r, Exception) and str(folder) in str(r)
             and "unknown tokenizer" not in str(r))
    for name, content in [("latin1.json", "{\"type\": \"bpe\", \"name\": \"caf\u00e9\"}".encode("latin-1")),
                          ("badmerges.json", b'{"type": "bpe", "merges": [[1]], "special_tokens": {}}'),
                          ("nomerges.json", b'{"type": "bpe"}')]:
        path = ROOT / name
        path.write_bytes(content)
        code, shown = call(["prepare", str(TEXT_FILE), "--tokenizer", str(path), "--out-dir",
                            str(ROOT / f"tok-{name}"), "--no-progress"])
        row(f"`prepare --tokenizer {name}`", code, shown, path.read_bytes() == content,
            good=one_line(code, shown) and str(path) in shown)
    code, shown = call(["prepare", str(TEXT_FILE), "--tokenizer", "bpe", "--no-progress"])
    row("`prepare --tokenizer bpe` (a tokenizer that needs training)", code, shown,
        good=one_line(code, shown) and "=..." not in shown)  # no Python call to copy


def probe_data():
    section("data: TinyStories placed by hand")
    from llmcourse.data import fetch
    cache = ROOT / "tscache"
    place = cache / "datasets" / "tinystories"
    place.mkdir(parents=True)
    (place / "TinyStories-valid.txt").write_text("Once upon a time there was a cut")
    env = {"LLMCOURSE_CACHE_DIR": str(cache), "LLMCOURSE_DATA_MIRROR": "http://127.0.0.1:9"}
    saved = {k: os.environ.get(k) for k in (*env, "LLMCOURSE_DATA_DIR")}
    os.environ.update(env)
    os.environ.pop("LLMCOURSE_DATA_DIR", None)
    try:
        api_good("`dataset_path('tinystories', 'val')` on a truncated file placed in the cache",
                 lambda: fetch.dataset_path("tinystories", "val", progress=False),
                 lambda r: isinstance(r, Exception))
        row("... and its hash recorded as the reference", "",
            f"{sorted(p.name for p in place.iterdir())}",
            good=not list(place.glob("*.sha256")))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


SECTIONS = {"base": probe_base, "check": probe_check, "plot": probe_plot, "sweep": probe_sweep,
            "sample": probe_sample, "tensorboard": probe_tensorboard, "finetune": probe_finetune,
            "tokenizers": probe_tokenizers, "data": probe_data}
ISSUE24 = [name for name in SECTIONS if name != "base"]


def totals():
    """The closing counts: exit statuses, tracebacks, files changed, issue 24's good answers."""
    graded = [r for r in RESULTS if r["good"] is not None]
    count = {
        "rows": len(RESULTS),
        "exit 0": sum(r["code"] == 0 for r in RESULTS),
        "exit 1/2/130": sum(r["code"] in (1, 2, 130) for r in RESULTS),
        "tracebacks": sum(r["traceback"] for r in RESULTS),
        "files changed": sum(r["kept"] is False for r in RESULTS),
        "skipped or failed probes": sum(str(r["code"]) in ("skipped", "probe failed") for r in RESULTS),
        "issue-24 cases good": f"{sum(r['good'] for r in graded)} of {len(graded)}",
    }
    print("\ntotals: " + "; ".join(f"{k}: {v}" for k, v in count.items()))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="all",
                        help=f"comma-separated: all, issue24, or of {', '.join(SECTIONS)}")
    names = parser.parse_args(argv).sections.split(",")
    chosen = [n for n in SECTIONS if "all" in names or n in names or ("issue24" in names and n in ISSUE24)]
    for name in chosen:
        if name == "base":
            probe_base()
        else:
            guard(f"(the {name} section)", SECTIONS[name])
    totals()


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
