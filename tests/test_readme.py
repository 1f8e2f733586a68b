"""The README's Python examples run as written, and its excerpts match the example files."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
EXCERPT = re.compile(r"# from (examples/\S+)\n")
RUNNABLE = [block for block in BLOCKS if not EXCERPT.match(block) and not block.startswith("reg.")]
EXCERPTS = [block for block in BLOCKS if EXCERPT.match(block)]


@pytest.mark.parametrize("source", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_example_runs(source):
    exec(compile(source, str(ROOT / "README.md"), "exec"), {})


@pytest.mark.parametrize("block", EXCERPTS, ids=[EXCERPT.match(b)[1] for b in EXCERPTS])
def test_readme_excerpt_is_in_its_example_file(block):
    path, body = EXCERPT.match(block)[1], EXCERPT.sub("", block, count=1)
    assert body.strip() in (ROOT / path).read_text()


def test_readme_has_runnable_examples_and_excerpts():
    assert len(RUNNABLE) >= 2 and EXCERPTS
