"""Try every bad input and fault of ``book/faults.md`` and print its table rows.

    python tests/faults_probe.py > /tmp/rows.md        # about two minutes on 2 cores

Each probe runs the CLI (in this process, or as a subprocess for ``kill -9``) on tiny runs in a
temporary folder and records the exit status, the line the user sees, and whether the earlier
run's files and the prepared data are byte-identical afterwards. A full disk and a read-only
folder are real small tmpfs mounts when this runs as root (else those rows say "skipped").
The assertions live in ``tests/test_faults.py``; this script only reports.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
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

TEXT = "".join(f"{w} the quick brown fox, {i}; jumps over the lazy dog!\n"
               for i, w in enumerate(["ROMEO:", "JULIET:", "NURSE:"] * 60))
TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "batch_size=4", "max_iters=4", "eval_interval=2", "eval_iters=1", "log_interval=1",
        "warmup_iters=0", "lr_decay_iters=4"]
ROOT = Path(tempfile.mkdtemp(prefix="faults-"))
ROWS: list[str] = []
COUNT = [0]


def sets(items):
    return [a for item in items for a in ("--set", item)]


def snapshot(*folders):
    return {str(p): p.read_bytes() for d in folders if Path(d).exists()
            for p in sorted(Path(d).rglob("*")) if p.is_file()}


def call(argv):
    """Run the CLI in this process: (exit status, the line shown)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    lines = [x for x in err.getvalue().splitlines() if x.strip()]
    shown = lines[-1] if lines and (code or not out.getvalue().strip()) else \
        out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""
    if code == 0 and lines:  # a note on stderr next to a success
        shown = lines[-1] + " / " + shown if shown else lines[-1]
    return code, shown


def clean(text):
    text = text.replace(str(ROOT), "…").replace("|", "\\|")
    return text if len(text) < 400 else text[:397] + "..."


def row(probe, code, shown, same=None):
    kept = "" if same is None else ("yes" if same else "**no**")
    COUNT[0] += 1
    ROWS.append(f"| {COUNT[0]} | {probe} | {code} | {clean(shown)} | {kept} |")
    print(ROWS[-1], flush=True)


def base_run(name="base", extra=()):
    out = ROOT / name
    args = ["train", "--no-progress"] + sets(TINY + [f"data.dataset={TEXT_FILE}",
                                                     f"out_dir={out}", *extra])
    code, shown = call(args)
    assert code == 0, shown
    return out, args


def copy_run(name):
    out = ROOT / name
    shutil.copytree(BASE, out)
    args = ["train", "--no-progress"] + sets(TINY + [f"data.dataset={TEXT_FILE}",
                                                     f"out_dir={out}"])
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


def mount_tmpfs(where, options):
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


os.environ["LLMCOURSE_CACHE_DIR"] = str(ROOT / "cache")
TEXT_FILE = ROOT / "tiny.txt"
TEXT_FILE.write_text(TEXT, encoding="utf-8")
BASE, BASE_ARGS = base_run()
CKPT = BASE / "ckpt.pt"


def section(title):
    ROWS.append(f"| | **{title}** | | | |")
    print(ROWS[-1])


def main():  # noqa: C901 - one long list of probes
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
        *call(["train", "--no-progress"] + sets(TINY + [f"data.dataset={TEXT_FILE}",
              f"out_dir={out}", "learning_rate=1e30", "grad_clip=0"])))
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
        row(f"`--set {item}` ({what})", *call(["train", "--no-progress"] + sets(
            TINY + [f"data.dataset={TEXT_FILE}", f"out_dir={ROOT / 'values'}", item])))
    out = ROOT / "zero"
    row("`--set max_iters=0`", *call(["train", "--no-progress"] + sets(
        TINY + ["max_iters=0", f"data.dataset={TEXT_FILE}", f"out_dir={out}"])))
    out = ROOT / "b128"
    code, shown = call(["train", "--no-progress"] + sets(TINY + [
        "block_size=128", "max_iters=1", "lr_decay_iters=1", "eval_interval=1",
        f"data.dataset={TEXT_FILE}", f"out_dir={out}"]))
    size = torch.load(out / "ckpt.pt", weights_only=True)["model_config"]["block_size"]
    row("bare `--set block_size=128`", code, f"{shown} (checkpoint's block_size: {size})")
    out = ROOT / "bigblock"
    row("`--set model.block_size=100000` (longer than the data)", *call(
        ["train", "--no-progress"] + sets(TINY + ["model.block_size=100000",
                                                  f"data.dataset={TEXT_FILE}", f"out_dir={out}"])))
    row("`--preset nope`", *call(["train", "--preset", "nope"]))
    for name, item in [("no such dataset", "data.dataset=nosuch"),
                       ("a missing text file", "data.dataset=/no/such/file.txt"),
                       ("`val_fraction=1.5`", "data.val_fraction=1.5")]:
        row(f"train on {name}", *call(["train", "--no-progress"] + sets(
            TINY + [f"out_dir={ROOT / 'x'}", item])))
    out = ROOT / "v0"
    row("`data.val_fraction=0` (no validation tokens)", *call(["train", "--no-progress"] + sets(
        TINY + [f"data.dataset={TEXT_FILE}", "data.val_fraction=0", f"out_dir={out}"])))
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
        args = ["train", "--no-progress"] + sets(TINY + [f"data.dataset={TEXT_FILE}",
                                                         f"out_dir={out}", f"data.prepared_dir={prep}"])
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
    row("`--resume` on a `train.bin` holding id 999 (vocabulary 40)",
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
    if mount_tmpfs(disk, "size=256k"):
        try:
            row("train into a 256 KiB tmpfs (`n_embd=64`: the checkpoint does not fit)",
                *call(["train", "--no-progress"] + sets(TINY + ["model.n_embd=64",
                      f"data.dataset={TEXT_FILE}", f"out_dir={disk / 'run'}"])))
            big = ROOT / "big.txt"
            big.write_text(TEXT * 40)
            row("prepare a 400 kB text into it",
                *call(["prepare", str(big), "--out-dir", str(disk / "prep"), "--no-progress"]))
            row("what is left on the tmpfs afterwards", "",
                ", ".join(sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))) or "nothing")
        finally:
            subprocess.run(["umount", str(disk)])
    else:
        row("full disk", "skipped", "needs root to mount a tmpfs")
    ro = ROOT / "ro"
    if mount_tmpfs(ro, "ro,size=64k"):
        try:
            row("train into a read-only tmpfs", *call(BASE_ARGS[:-1] + [f"out_dir={ro / 'run'}"]))
            row("prepare into it",
                *call(["prepare", str(TEXT_FILE), "--out-dir", str(ro / "prep"), "--no-progress"]))
        finally:
            subprocess.run(["umount", str(ro)])
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
        resume_args = ["train", "--no-progress"] + sets(
            TINY + ["max_iters=400", "lr_decay_iters=400", "eval_interval=20",
                    "always_save_checkpoint=true", f"data.dataset={TEXT_FILE}", f"out_dir={out}"])
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


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
