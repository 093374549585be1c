import json
import re
import time
from pathlib import Path

import pytest

from acecoder_rl.reward.extract import (
    called_names,
    extract_code,
    fenced_blocks,
    imported_roots,
    strip_reasoning,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_bare_code_is_taken_whole():
    code = "def f(x):\n    return x + 1\n"
    assert extract_code(code, ["f"]) == code.strip("\n")


def test_think_is_stripped_and_fence_taken():
    text = "<think>maybe ```python\ndef f(): return 0\n``` no</think>Here:\n```python\ndef f():\n    return 1\n```\nDone."
    assert extract_code(text, ["f"]) == "def f():\n    return 1\n"


def test_unclosed_think_hides_everything_after_it():
    assert extract_code("<think>let me write def f(): pass", ["f"]) == ""
    fenced = "a\n```python\nx = 1\n```\nb "
    assert strip_reasoning(fenced + "<think> c\n```python\ny = 2\n```") == fenced
    assert extract_code("Sure.\n```python\nx = 1\n```\n<think> wait ```python\ny = 2\n```") == "x = 1\n"


def test_answer_section_is_preferred():
    text = "<think>x</think><answer>\n```py\ndef g():\n    return 2\n```\n</answer>"
    assert extract_code(text, ["g"]) == "def g():\n    return 2\n"


def test_last_answer_section_of_bare_code():
    text = ("<think>plan</think>\n<answer>\ndef g():\n    return 1\n</answer> no:"
            " <answer>\ndef g():\n    return 2")
    assert extract_code(text, ["g"]) == "def g():\n    return 2"


def test_answer_tags_in_code():
    """Code outside an answer section keeps its tags; a section ends at its ``</answer>``, even in a block."""
    assert extract_code("```python\nt = '<answer>x</answer>'\n```\nbye") == "t = '<answer>x</answer>'\n"
    text = "<answer>\n```python\nt = '<answer>'\n```\n</answer>\nbye"
    assert extract_code(text) == "t = '<answer>'\n"
    text = "<answer>\n```python\ndef f():\n    return 1\n</answer>\nTest:\n```python\nf()\n```"  # unclosed
    assert extract_code(text, ["f"]) == "def f():\n    return 1\n"


def test_think_literal_in_bare_code_is_kept():
    code = 'def f():\n    return "<think>x</think>"\n'
    assert extract_code(code, ["f"]) == code.strip("\n")
    assert extract_code('def f(): return "<think>x"', ["f"]) == 'def f(): return "<think>x"'
    assert extract_code('def f(): return "</think>"', ["f"]) == 'def f(): return "</think>"'


def test_think_literal_in_fenced_code_is_kept():
    code = 'def f():\n    return "<think>x</think>" + "<think>"\n'
    assert extract_code(f"Here it is:\n```python\n{code}```\nIt returns a tag.", ["f"]) == code
    assert extract_code(f"<think>easy</think>\n```python\n{code}```", ["f"]) == code


def test_reasoning_with_draft_fences_is_dropped():
    text = ("<think>Draft:\n```python\ndef f(): return 0\n```\nno, ```python\nstill</think>\n"
            "```python\ndef f():\n    return 1\n```")
    assert extract_code(text, ["f"]) == "def f():\n    return 1\n"
    assert strip_reasoning(text) == "\n```python\ndef f():\n    return 1\n```"
    # Only drafts in reasoning: the text is bare code.
    assert extract_code("<think>```python\ndef f(): return 0\n```</think>\ndef f(): return 1", ["f"]) == \
        "def f(): return 1"


def test_leading_reasoning_of_bare_code_is_dropped():
    text = '\n<think>a</think>\n<think>b\n</think>\ndef f():\n    return "<think>" + g("</think>")\n'
    assert extract_code(text, ["f"]) == 'def f():\n    return "<think>" + g("</think>")'
    assert strip_reasoning("x = 1\n<think>later</think>\n") == "x = 1\n<think>later</think>\n"


def test_reasoning_dropped_in_prose_only():
    text = "</think>Plan<think>hidden\n```python\nbad = 1\n```</think>:\n```python\nok = '</think>'\n```"
    assert strip_reasoning(text) == "Plan:\n```python\nok = '</think>'\n```"
    assert extract_code(text) == "ok = '</think>'\n"
    assert extract_code("<think>r</think>```python\nx = 1\n```") == "x = 1\n"  # a dropped tag ends no line
    assert extract_code("a\n  <think>r</think> ```py\nx = 1\n```") == "x = 1\n"


def test_unclosed_think_in_bare_code():
    assert extract_code("  <think>a</think> <think>b") == ""
    assert strip_reasoning("\n<think>a</think>\n<think>b") == "\n\n"


def test_block_defining_the_tested_function_wins():
    text = ("Usage:\n```python\nprint(add(1, 2))\n```\nSolution:\n```python\ndef add(a, b):\n    return a + b\n```\n"
            "Shell:\n```bash\necho hi\n```")
    assert extract_code(text, ["add"]) == "def add(a, b):\n    return a + b\n"
    lazy_names = iter(called_names(["assert add(1, 2) == 3"]))
    assert extract_code(text, lazy_names) == "def add(a, b):\n    return a + b\n"


def test_first_python_block_when_none_defines_the_names():
    text = "```\nx = 1\n```\n```python\ny = 2\n```"
    assert extract_code(text, ["f"]) == "x = 1\n"


def test_unclosed_fence_runs_to_the_end():
    assert fenced_blocks("```python\ndef f():\n    return 1") == ["def f():\n    return 1"]


def test_non_python_blocks_are_ignored():
    assert fenced_blocks("```bash\nls\n```\n```py3\nx = 1\n```") == ["x = 1\n"]


def test_no_code():
    assert extract_code("", ["f"]) == ""
    assert extract_code("   \n", ["f"]) == ""


@pytest.mark.parametrize("prose", [
    "I cannot help with that.",
    "Sorry, I can't help with that.",
    "The answer is 42.\n\nLet me know (if you need more).",
    "<think>hmm</think>\nI would rather not write this one.",
    "<answer>\nNo code from me today\n</answer>",
    "Shell, not Python:\n```bash\npip install numpy\n```",
])
def test_prose_is_no_code(prose):
    assert extract_code(prose, ["f"]) == ""


@pytest.mark.parametrize("code", [
    "def f(:",                                      # broken code stays code: a syntax error
    "Here is the code:\ndef f(x):\n    return x",   # prose, then code
    "I cannot\nx = 1",                              # an assignment
    "print x",                                      # Python 2
    "Note: this is hard",                           # an annotation: it compiles
    "Sure",                                         # one name: it compiles
    "if you want, I can help",                      # begins with a keyword
    'I cannot\n"""really"""',                       # the words may be in a string
    'f"{a\n} two words"',                           # Python 3.12: a field that spans lines
    "'a\\\nb c'",                                   # a string continued on the next line
    "I cannot\n>>> f(1)",                           # a doctest line
])
def test_code_or_maybe_code_is_kept(code):
    assert extract_code(code, ["f"]) == code


@pytest.mark.parametrize("code, roots", [
    ("import os, sys as s\nfrom pytest import raises\n", {"os", "sys", "pytest"}),
    ("def f():\n    import a.b.c  # note\n    from  x.y  import z\n", {"a", "x"}),
    ("from . import q\nfrom .m import r\nimport numpy as np, unittest.mock\n", {"numpy", "unittest"}),
    ("s = 'important'\nimportlib = 1\nfromage = 2\nfrom x importz\n", set()),
    ("from\ta.b.c\timport d; import e\nimport f; import g\n\timport  h,\n", {"a", "f", "h"}),
])
def test_imported_roots(code, roots):
    assert imported_roots(code) == roots


@pytest.mark.parametrize("tests, names", [
    (["assert add(1, 2) == 3", "assert sub (2, 1) == 1", "assert add(0, 0) == 0"], ["add", "sub"]),
    (["assert obj.method(1) == len([x])", "assert math.sqrt(4) == f(2)"], ["f"]),
    (["assert f('g(x)') == \"h(\\\"y\\\")\" and k(1)", "assert not(f(1)) if True else print(2)"], ["f", "k"]),
    (["assert abs(area(r) - 3.14) < 1e-2", "assert isinstance(Point(1, 2), tuple)", "assert 1e5(3)"],
     ["area", "Point"]),
    (["assert match(1) and _helper (2)\n", "assert f'{g(1)}' == 'x"], ["match", "_helper"]),  # f-strings too
])
def test_called_names(tests, names):
    assert called_names(tests) == names


MB = 1_000_000
ADVERSARIAL = {  # name: (scan, 1 MB of text); the quadratic versions of these scans take minutes to hours
    "think tags": (strip_reasoning, "<think>" * (MB // 7)),
    "think tags, closed at the end": (strip_reasoning, "<think>x" * (MB // 8) + "</think>"),
    "think pairs": (extract_code, "<think></think>" * (MB // 15)),
    "stray closes": (extract_code, "x</think>" * (MB // 9)),
    "think after a fence": (strip_reasoning, "```\n```\n" + "<think>" * (MB // 7)),
    "answer tags": (strip_reasoning, "<answer>" * (MB // 8)),
    "answer sections": (extract_code, "```\n```\n" + "<answer>x</answer>" * (MB // 18)),
    "answer closes": (extract_code, "</answer>" * (MB // 9)),
    "answer and think": (strip_reasoning, "<answer><think>" * (MB // 15)),
    "backticks": (extract_code, "`" * MB),
    "fence lines": (extract_code, "```\n" * (MB // 4)),
    "fence lines, names": (lambda t: extract_code(t, ["f", "g"]), "```python\ndef f\n" * (MB // 16)),
    "fenced blocks": (fenced_blocks, "  ```py\n" * (MB // 8)),
    "blanks": (extract_code, " " * MB + "```"),
    "line breaks": (extract_code, "\n" * MB),
    "blank lines and tags": (extract_code, "  <think></think>\n" * (MB // 18)),
    "def repeats": (lambda t: extract_code(t, ["f"]), "```\nx\n```\n```\n" + "def " * (MB // 4)),
    "def lines": (lambda t: extract_code(t, ["f"]), "```\nx\n```\n```\n" + "def \n" * (MB // 5)),
    "long name": (lambda t: extract_code(t, ["f"]), "```\nx\n```\n```\n" + "a" * MB),
    "annotation": (lambda t: extract_code(t, ["f"]), "```\nx\n```\n```\na" + ": " * (MB // 2)),
    "from name": (imported_roots, "from " + "a" * MB),
    "from dots": (imported_roots, "from a" + "." * MB),
    "from blanks": (imported_roots, "from" + " " * MB),
    "import list": (imported_roots, "import " + "a," * (MB // 2)),
    "import blanks": (imported_roots, "import" + " " * MB + "#"),
    "import lines": (imported_roots, "  from a import b\n" * (MB // 18)),
    "calls": (lambda t: called_names([t]), "f(" * (MB // 2)),
    "call parentheses": (lambda t: called_names([t]), "f" + "(" * MB),
    "name and blanks": (lambda t: called_names([t]), "f" + " " * MB),
    "long call name": (lambda t: called_names([t]), "a" * MB),
    "quotes": (lambda t: called_names([t]), "'" * MB),
    "escaped quotes": (lambda t: called_names([t]), "'\\" * (MB // 2)),
    "prose check, word and blanks": (extract_code, "a" + " " * MB),
    "prose check, attributes": (extract_code, "aaaa." * (MB // 5)),
    "prose check, dots and blanks": (extract_code, "a . " * (MB // 4)),
    "prose check, name lines": (extract_code, "x\n" * (MB // 2)),
    "prose check, keyword pairs": (extract_code, "I if " * (MB // 5)),
    "prose check, commas": (extract_code, "a, ==" * (MB // 5)),
    "unclosed strings": (lambda t: called_names([t]), "\"a'" * (MB // 3)),
    "attribute calls": (lambda t: called_names([t]), ".a(" * (MB // 3)),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_scans_are_linear(name):
    scan, text = ADVERSARIAL[name]
    start = time.perf_counter()
    scan(text)
    assert time.perf_counter() - start < 2.0


# The extraction this module replaced (quadratic on hostile text; fine on the fixture), to show that only
# think tags inside code changed: the fixture's completions have none, nor any other tag.
_OLD_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_OLD_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_OLD_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+\-.]*)[^\n]*$", re.MULTILINE)
_OLD_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=",
                             re.MULTILINE)


def _old_extract_code(completion: str, names: list[str]) -> str:
    text = _OLD_THINK.sub("", completion)
    text = (text[: text.index("<think>")] if "<think>" in text else text).replace("</think>", "")
    answers = _OLD_ANSWER.findall(text)
    text = answers[-1] if answers else text
    matches = list(_OLD_FENCE.finditer(text))
    blocks = []
    for opening, closing in zip(matches[::2], matches[1::2] + [None]):
        if opening.group(1).lower() in {"", "python", "py", "python3", "py3"}:
            body_end = closing.start() if closing else len(text)
            blocks.append(text[opening.end() + 1 : body_end] if opening.end() < len(text) else "")
    if not blocks:
        return text.strip("\n") if text.strip() else ""
    scores = [sum(name in {a or b for a, b in _OLD_DEFINITION.findall(block)} for name in names)
              for block in blocks]
    return blocks[scores.index(max(scores))] if len(blocks) > 1 and max(scores) > 0 else blocks[0]


def test_same_extraction_as_before_on_the_fixture():
    """Except for the fixture's prose answers (``note`` no_code), which are no code now (rule 4)."""
    rows = [json.loads(line) for line in (FIXTURES / "workload_small.jsonl").open()]
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    assert not any(tag in row["completion"] for row in rows for tag in tags)
    for row in rows:
        names = called_names(row["test_cases"])
        for completion in (row["completion"],  # and wrapped as R1-style models write (unclosed blocks too)
                           "<think>Draft:\n```python\npass\n```\n</think>\n" + row["completion"],
                           "<think>plan</think>\n<answer>\n" + row["completion"] + "\n</answer>\nbye"):
            for entry_names in ((), names):
                expected = "" if row["note"] == "no_code" else _old_extract_code(completion, list(entry_names))
                assert extract_code(completion, entry_names) == expected
