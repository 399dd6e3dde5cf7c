"""Generation speed of this checkout against an older one, in one process, interleaved.

On a busy shared machine two separate benchmark runs differ by 10-30% from the neighbours
alone. This script imports an older ``llmcourse`` (renamed ``llmcourse_old`` in a temporary
folder) next to this one, gives both the same weights, checks that they decode the same tokens,
and times them alternately (CPU time of this process), so both see the same machine. The model
is ``bench_generate.py``'s (6 layers, 6 heads, 384 wide, block 256, vocabulary 65), decoding
greedily from a one-token prompt. By default the decode stays within the block (255 tokens),
where the cache and recomputing are exact; ``--keep K`` with ``--tokens`` past 255 times the
approximate ``keep_on_rebuild=K`` rule instead (labelled so: its tokens differ from
recomputation). Run::

    git archive <old-commit> llmcourse | tar -x -C /tmp/old
    python benchmarks/ab_generate.py /tmp/old/llmcourse --repeats 6
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch


def import_old(old: Path, into: Path):
    """Copy ``old`` to ``into/llmcourse_old`` with its own imports renamed; import it."""
    dst = into / "llmcourse_old"
    shutil.copytree(old, dst)
    for path in dst.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bllmcourse\b(?=[. ])", "llmcourse_old", text))
    sys.path.insert(0, str(into))
    import llmcourse_old.generate as gen
    import llmcourse_old.model as model

    return gen, model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path, help="the llmcourse/ folder of the older checkout")
    p.add_argument("--tokens", type=int, default=255,
                   help="new tokens (default 255: within the 256-token block, exact)")
    p.add_argument("--repeats", type=int, default=6, help="timed runs of each version per mode")
    p.add_argument("--keep", type=int, default=None,
                   help="keep_on_rebuild for the cached mode (default: the exact sliding window)")
    args = p.parse_args()
    torch.set_num_threads(1)
    import llmcourse.generate as new_gen
    import llmcourse.model as new_model

    with tempfile.TemporaryDirectory() as tmp:
        old_gen, old_model = import_old(args.old, Path(tmp))
        kw = dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.0)
        torch.manual_seed(0)
        m_old = old_model.GPT(old_model.GPTConfig(**kw)).eval()
        m_new = new_model.GPT(new_model.GPTConfig(**kw)).eval()
        m_new.load_state_dict(m_old.state_dict())
        prompt = torch.zeros(1, 1, dtype=torch.long)
        versions = {"old": (old_gen, m_old), "new": (new_gen, m_new)}
        print(f"{args.tokens} new tokens, batch 1, 1 thread, CPU time; old = {args.old}")
        cached = dict(use_cache=True, temperature=0)
        name = "kv-cache"
        if args.keep is not None:
            cached["keep_on_rebuild"] = args.keep
            name = f"kv-cache, keep_on_rebuild={args.keep}: approximate"
        for mode, extra in ((name, cached), ("recompute", dict(use_cache=False, temperature=0))):
            outs = [g.generate(m, prompt, args.tokens, seed=0, **extra) for g, m in versions.values()]
            times: dict[str, list[float]] = {"old": [], "new": []}
            for rep in range(args.repeats):
                order = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
                for name in order:
                    g, m = versions[name]
                    t0 = time.process_time()
                    g.generate(m, prompt, args.tokens, seed=0, **extra)
                    times[name].append(time.process_time() - t0)
            row = [f"{mode} same tokens {torch.equal(*outs)}"]
            for name, ts in times.items():
                ts.sort()
                row.append(f"{name}: best {1e3 * ts[0] / args.tokens:.2f}, median "
                           f"{1e3 * ts[len(ts) // 2] / args.tokens:.2f} ms/token")
            print("  ".join(row))


if __name__ == "__main__":
    main()
