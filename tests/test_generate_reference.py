"""The two tiers of generation: the plain loop (``llmcourse.generate.reference``) and ``generate``.

What must hold: ``generate`` gives the reference loop's tokens for the same seed and settings
(recomputing, past ``block_size`` too; with the KV cache, within the block); the sampling
options are declared once (``Settings``) and keep working as keywords; the eager path needs
nothing of ``llmcourse.generate.compiled``; ``top_p`` as small as the help allows keeps the top
token; asking to stop at end-of-text with a tokenizer that has none is one clear error.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import llmcourse.generate as gen
from llmcourse.generate import Settings, generate, sample_next, stream, top_p_filter
from llmcourse.generate.reference import sample
from llmcourse.generate.settings import end_of_text_id
from llmcourse.model import GPT, GPTConfig
from llmcourse.tokenizers import CharTokenizer

BLOCK = 16
SETTINGS = [dict(), dict(temperature=0), dict(temperature=0.7, top_k=5), dict(top_p=0.8),
            dict(temperature=1.3, top_k=20, top_p=0.95)]


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=37, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32,
                    init_std=0.2)
    return GPT(cfg).eval()


def _reference(model, prompt, n, seed, **kw):
    return sample(model, prompt, n, generator=torch.Generator().manual_seed(seed), **kw)


@pytest.mark.parametrize("kw", SETTINGS)
def test_generate_recomputing_gives_the_reference_tokens_past_the_block(model, kw):
    prompt = torch.tensor([[1, 2], [3, 4]])
    n = 3 * BLOCK  # the window slides past block_size, as the reference crops
    expected = _reference(model, prompt, n, seed=3, **kw)
    assert torch.equal(generate(model, prompt, n, seed=3, use_cache=False, **kw), expected)


@pytest.mark.parametrize("kw", SETTINGS)
def test_generate_with_the_cache_gives_the_reference_tokens_within_the_block(model, kw):
    prompt = torch.tensor([[1, 2], [3, 4]])
    n = BLOCK - prompt.shape[1]  # the exact comparison: the cache never has to move
    expected = _reference(model, prompt, n, seed=5, **kw)
    assert torch.equal(generate(model, prompt, n, seed=5, **kw), expected)
    assert torch.equal(generate(model, prompt, n, Settings(**kw), seed=5), expected)
    streamed = [torch.tensor(list(stream(model, prompt[r], n, seed=5, **kw))) for r in range(2)]
    assert torch.equal(streamed[0], _reference(model, prompt[:1], n, seed=5, **kw)[0, 2:])


def test_the_reference_loop_is_short_and_has_shape_comments():
    source = pathlib.Path(gen.reference.__file__).read_text()
    body = source[source.index("def sample("):]
    code = [line for line in body.splitlines()[1:] if line.strip()
            and not line.strip().startswith(("#", '"""', "Put the model"))]
    assert len(code) <= 30
    assert "# (B, T, V)" in body and "# (B, 1)" in body


# ------------------------------------------------------------------ the settings, declared once
def test_settings_are_declared_once_and_keywords_keep_working(model):
    prompt = [1, 2]
    by_keywords = generate(model, prompt, 10, temperature=0.8, top_k=5, seed=1)
    settings = Settings(temperature=0.8, top_k=5)
    assert torch.equal(generate(model, prompt, 10, settings, seed=1), by_keywords)
    assert torch.equal(model.generate(torch.tensor([prompt]), 10, temperature=0.8, top_k=5,
                                      seed=1), by_keywords)
    # a keyword replaces the field of the settings given
    assert torch.equal(generate(model, prompt, 10, Settings(top_k=5, temperature=3.0),
                                temperature=0.8, seed=1), by_keywords)
    import inspect
    for entry in (generate, stream):
        params = inspect.signature(entry).parameters
        assert not {"temperature", "top_k", "top_p", "eos_id"} & set(params)


def test_an_unknown_setting_or_a_positional_temperature_is_one_clear_error(model):
    with pytest.raises(TypeError, match=r"^unknown generation setting 'topk'; the settings are "
                                        r"temperature, top_k, top_p, min_p, repetition_penalty, "
                                        r"eos_id, use_cache, keep_on_rebuild, compile$"):
        generate(model, [1], 5, topk=3)
    with pytest.raises(TypeError, match=r"^settings must be a Settings, got 0.8; give the "
                                        r"sampling options by keyword"):
        generate(model, [1], 5, 0.8)


def test_settings_are_frozen_and_checked_when_made():
    with pytest.raises(ValueError, match="^top_k must be >= 1"):
        Settings(top_k=0)
    with pytest.raises(ValueError, match="compile=True compiles the KV-cached decoding step"):
        Settings(compile=True, use_cache=False)
    with pytest.raises(Exception):
        Settings().top_k = 3  # frozen


def test_each_sampling_operation_exists_once():
    source = pathlib.Path(gen.sampling.__file__).read_text()
    for name in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty"):
        assert f"def _{name}(" not in source


def test_no_measured_speed_in_the_generation_docstrings():
    speed = re.compile(r"\d+(\.\d+)?\s*(ms\b|s\b.*compil|x faster|tokens/s)")
    for path in pathlib.Path(gen.__file__).parent.glob("*.py"):
        text = path.read_text()
        for doc in re.findall(r'"""(.*?)"""', text, flags=re.S):
            assert not speed.search(doc), f"{path.name}: a measured speed in a docstring: {doc[:80]}"


# ------------------------------------------------------------------ the compiled step, apart
def test_private_torch_internals_stay_in_the_compiled_module():
    folder = pathlib.Path(gen.__file__).parent
    for path in folder.glob("*.py"):
        text = path.read_text()
        if path.name != "compiled.py":
            assert "torch.fx.experimental" not in text and "skip_guard" not in text, path.name
            assert "torch._" not in text, path.name


def test_the_eager_path_works_when_the_compiled_module_cannot_be_imported():
    code = (
        "import sys\n"
        "sys.modules['llmcourse.generate.compiled'] = None\n"
        "import torch\n"
        "from llmcourse.generate import generate, stream, beam_search\n"
        "from llmcourse.model import GPT, GPTConfig\n"
        "m = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8))\n"
        "out = generate(m, [1, 2], 20, top_k=5, seed=0)\n"
        "assert out.shape == (1, 22)\n"
        "assert len(list(stream(m, [1], 5, seed=0))) == 5\n"
        "beam_search(m, [1, 2], beam_width=2, max_new_tokens=5)\n"
        "try:\n"
        "    generate(m, [1], 3, compile=True)\n"
        "except ImportError:\n"
        "    print('compile=True needs the compiled module')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "compile=True needs the compiled module"


# ------------------------------------------------------------------ issue 24: top_p, stop at eos
@pytest.mark.parametrize("p", [1e-6, 1e-12, 5e-7])
def test_a_tiny_top_p_keeps_exactly_the_top_token(p):
    logits = torch.tensor([[0.5, 2.0, 1.0, -1.0], [3.0, 3.0, 0.0, 1.0]])  # row 2: a tie at the top
    kept = torch.isfinite(top_p_filter(logits, p))
    assert kept.tolist() == [[False, True, False, False], [True, False, False, False]]
    draws = sample_next(logits, top_p=p, generator=torch.Generator().manual_seed(0))
    assert draws[:, 0].tolist() == [1, 0]  # the top token (the lower id of a tie)


def test_a_tiny_top_p_generates_the_greedy_tokens(model):
    greedy = generate(model, [1, 2], 30, temperature=0)
    assert torch.equal(generate(model, [1, 2], 30, top_p=1e-6, seed=0), greedy)
    assert list(stream(model, [1, 2], 30, top_p=1e-12, seed=0)) == greedy[0, 2:].tolist()


def test_a_tiny_top_p_with_equal_logits_keeps_the_lowest_id():
    assert torch.isfinite(top_p_filter(torch.zeros(2, 5), 1e-6)).tolist() == \
        [[True, False, False, False, False]] * 2


def test_stopping_at_end_of_text_needs_a_tokenizer_that_has_one():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError) as err:
        end_of_text_id(tok)
    assert str(err.value) == ("the tokenizer 'char' has no end-of-text token, so there is no id "
                              "to stop at; stop at a string instead, or use a tokenizer that "
                              "has <|endoftext|> (e.g. gpt2)")
    assert end_of_text_id(SimpleNamespace(eot_token=50256, name="gpt2")) == 50256
