"""Bad tokenizer input (issue 24): one clear line naming the file or the text, nothing changed.

Each case is tried through the library (a ``ValueError`` with the exact message) and, for
tokenizer files, through ``llmcourse prepare --tokenizer FILE`` (exit 2, that one line on
stderr, every file the user had byte-identical afterwards).
"""

from __future__ import annotations

import pytest

from llmcourse import cli
from llmcourse.tokenizers import BPETokenizer, CharTokenizer, get_tokenizer

from faults_helpers import snapshot

TEXT = "ROMEO: the quick brown fox jumps over the lazy dog.\n" * 20


# Each bad file: (name, bytes, the message after "<path> ").
BAD_FILES = [
    ("nomerges.json", b'{"type": "bpe"}',
     "is not a usable tokenizer file: the BPE tokenizer description has no 'merges' field; "
     "save the tokenizer again with tok.save(path)"),
    ("latin1.json", '{"type": "bpe", "name": "caf\xe9"}'.encode("latin-1"),
     "is not a tokenizer JSON file: byte 28 is not UTF-8 text; give the JSON file a "
     "tokenizer's save() wrote"),
    ("empty.json", b"",
     "is not a tokenizer JSON file (Expecting value: line 1 column 1 (char 0)); give the JSON "
     "file a tokenizer's save() wrote, or a tokenizer name (char, bpe, gpt2)"),
    ("triple.json", b'{"type": "bpe", "merges": [[97, 98, 99]]}',
     "is not a usable tokenizer file: merge #0 is [97, 98, 99]; each merge must be a pair of "
     "ids [a, b]"),
    ("word.json", b'{"type": "bpe", "merges": [["a", "b"]]}',
     "is not a usable tokenizer file: merge #0 is ['a', 'b']; each merge must be a pair of "
     "ids [a, b]"),
    ("future.json", b'{"type": "bpe", "merges": [[300, 1]]}',
     "is not a usable tokenizer file: merge #0 (300, 1) uses an id that does not exist yet "
     "(ids so far: 0..255); merges must be listed in rank order"),
    ("notalist.json", b'{"type": "bpe", "merges": 5}',
     "is not a usable tokenizer file: 'merges' is int, not a list of [a, b] id pairs"),
    ("nochars.json", b'{"type": "char"}',
     "is not a usable tokenizer file: the character tokenizer description has no 'chars' "
     "field; save the tokenizer again with tok.save(path)"),
    ("noname.json", b'{"type": "tiktoken"}',
     "is not a usable tokenizer file: the tiktoken tokenizer description has no 'name' field; "
     "save the tokenizer again with tok.save(path)"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_tokenizer_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    for load in (get_tokenizer, lambda p: get_tokenizer(str(p))):
        with pytest.raises(ValueError) as info:
            load(path)
        assert str(info.value) == f"{path} {message}"
    if name.startswith(("nomerges", "triple", "future", "notalist")):
        with pytest.raises(ValueError) as info:
            BPETokenizer.load(path)
        assert str(info.value) == f"{path} {message}"
    if name.startswith("nochars"):
        with pytest.raises(ValueError) as info:
            CharTokenizer.load(path)
        assert str(info.value) == f"{path} {message}"
    assert path.read_bytes() == content


def test_a_folder_is_not_a_tokenizer(tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    want = f"{folder} is a folder, not a tokenizer file; give the JSON file a tokenizer's save() wrote"
    for load in (get_tokenizer, lambda p: get_tokenizer(str(p)), BPETokenizer.load):
        with pytest.raises(ValueError) as info:
            load(folder)
        assert str(info.value) == want


@pytest.mark.parametrize("name, content, message", BAD_FILES[:3] + [
    ("folder", None, "is a folder, not a tokenizer file; give the JSON file a tokenizer's save() wrote"),
], ids=["nomerges", "latin1", "triple", "folder"])
def test_prepare_with_a_bad_tokenizer_is_one_line_and_changes_nothing(
        tmp_path, capsys, name, content, message):
    text = tmp_path / "tiny.txt"
    text.write_text(TEXT, encoding="utf-8")
    tok = tmp_path / name
    if content is None:
        tok.mkdir()
        (tok / "keep.json").write_text("{}", encoding="utf-8")
    else:
        tok.write_bytes(content)
    before = snapshot(tmp_path)
    code = cli.main(["prepare", str(text), "--tokenizer", str(tok),
                     "--out-dir", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"llmcourse prepare: error: {tok} {message}"]
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("docs, where", [
    ("abc\ud800def", "character 3"),
    (["fine text", "ab\udfffcd"], "character 2 of document 1"),
])
def test_lone_surrogate_in_training_text(docs, where):
    bad = "'\\ud800'" if isinstance(docs, str) else "'\\udfff'"
    with pytest.raises(ValueError) as info:
        BPETokenizer.train(docs, 260)
    assert str(info.value) == (
        f"the training text holds a lone surrogate {bad} at {where}, which is not a Unicode "
        "character and has no UTF-8 bytes; remove it, or read the file with "
        "open(path, encoding='utf-8', errors='replace')")


def test_lone_surrogate_in_text_to_encode_is_still_replaced():
    tok = BPETokenizer.train(TEXT, 270)
    assert tok.encode("a\ud800b") == tok.encode("a\ufffdb")  # like tiktoken, no error


@pytest.mark.parametrize("make", [
    lambda: CharTokenizer.from_text("abc"),
    lambda: BPETokenizer.train(TEXT, 260),
    lambda: get_tokenizer("gpt2"),
], ids=["char", "bpe", "tiktoken"])
def test_save_keeps_an_existing_file_unless_asked(tmp_path, make):
    tok = make()
    path = tmp_path / "tok.json"
    path.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError) as info:
        tok.save(path)
    assert str(info.value) == (f"{path} exists; a tokenizer's save() never replaces a file unless "
                               "asked: give a new path, or pass overwrite=True")
    assert path.read_bytes() == b"the user's file"
    tok.save(path, overwrite=True)
    assert get_tokenizer(path).encode("abc") == tok.encode("abc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok.json"]  # no temporary file left
