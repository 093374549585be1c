from acecoder_rl.reward.extract import extract_code, fenced_blocks, strip_reasoning


def test_bare_code_is_taken_whole():
    code = "def f(x):\n    return x + 1\n"
    assert extract_code(code, ["f"]) == code.strip("\n")


def test_think_is_stripped_and_fence_taken():
    text = "<think>maybe ```python\ndef f(): return 0\n``` no</think>Here:\n```python\ndef f():\n    return 1\n```\nDone."
    assert extract_code(text, ["f"]) == "def f():\n    return 1\n"


def test_unclosed_think_hides_everything_after_it():
    assert extract_code("<think>let me write def f(): pass", ["f"]) == ""
    assert strip_reasoning("a <think> b") == "a "


def test_answer_section_is_preferred():
    text = "<think>x</think><answer>\n```py\ndef g():\n    return 2\n```\n</answer>"
    assert extract_code(text, ["g"]) == "def g():\n    return 2\n"


def test_block_defining_the_tested_function_wins():
    text = ("Usage:\n```python\nprint(add(1, 2))\n```\nSolution:\n```python\ndef add(a, b):\n    return a + b\n```\n"
            "Shell:\n```bash\necho hi\n```")
    assert extract_code(text, ["add"]) == "def add(a, b):\n    return a + b\n"


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
