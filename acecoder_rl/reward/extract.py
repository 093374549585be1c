"""Code extraction from chat completions (text only: nothing here compiles or runs the policy's code).

Extraction never edits code: tags are recognised in prose only. Rules, in order:
1. The completion is read left to right. A fence line (at the start of a line, optional blanks then ```) opens
   a fenced block, which the next fence line closes (an unclosed block runs to the end of the text). The
   opening line, the block and the closing fence's backticks are code, tags included; the rest (the closing
   line after its backticks too, where no fence can open) is prose. In prose:
   - ``<think>`` starts reasoning, dropped up to and with the next ``</think>`` (fences and tags in it
     included: drafts are reasoning); an unclosed ``<think>`` drops the rest; a stray ``</think>`` is dropped;
   - ``<answer>`` starts an answer section (R1-style prompts), up to the next ``</answer>`` (or the end)
     that is not in reasoning, even one in a fenced block, which it ends: the section holds the code, as an
     HTML script element ends at the first ``</script>``, so that a block the model left unclosed ends with
     its answer. Inside a section ``<answer>`` is text, as is ``</answer>`` outside one. When there are
     sections, only the last is searched.
   Dropped tags do not end a line: ``</think>```python`` opens a block; an answer section starts a line.
2. Text with no fence line in its prose is bare code (as AceCode-87K's recorded completions are): only the
   reasoning blocks at its very start (after whitespace; several in a row) are dropped, so that
   ``return "<think>x</think>"`` stays; then, if the rest has ``<answer>`` sections, the last one is the code
   (in bare text a tag cannot be told from code: R1's ``<answer>`` wrapper is taken to be one).
3. Fenced blocks (```python, ```py, ```python3 or bare ```): the block that defines the most of the names the
   tests call (ties: the first); when no block defines any, the first block, as the reference harnesses do.
   When no block is Python, the whole text searched is the code.
4. Code taken whole (rules 2 and 3's last case) that holds no Python statement is no code (``""``), so that a
   prose reply ("I cannot help with that.") scores ``no_code`` and its format penalty rather than
   ``syntax_error``. Decided without compiling, and only when both hold:
   - it cannot compile: a line begins with two words, neither a keyword (``I cannot``). Python never puts
     two names side by side, and the start of a line is outside any string when the text has no triple
     quote, backslash line continuation or ``{`` (else the rule does not apply);
   - it is not broken code: no line begins like a statement (a keyword, ``print``, a decorator, ``>>>``, a
     call, a subscript or an assignment), so ``def f(:`` stays a syntax error.
Broken code is not repaired here; ``RewardConfig.salvage_code`` does that inside the sandbox.

The host's other scans of policy or test text live here too (``imported_roots``, ``called_names``). Every
scan is linear in the length of the text, which is hostile: plain ``str.find`` calls, and regexes in which
each repeat is followed by something it cannot match (so a failing attempt gives back each character at most
once) and which are only tried where a match can start (a line start, a name's first character).
"""
from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable, Sequence

_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
_THINK, _THINK_END, _ANSWER, _ANSWER_END = "<think>", "</think>", "<answer>", "</answer>"
_FENCE_START = re.compile(r"^[ \t]*```", re.MULTILINE)
_FENCE_HERE = re.compile(r"[ \t]*```[ \t]*([A-Za-z0-9_+\-.]*)")  # a fence known to start here, and its tag
_PROSE_MARK = re.compile(r"</?(?:think|answer)>|^[ \t]*```", re.MULTILINE)  # the next thing prose reacts to
_BLANKS = re.compile(r"[ \t]*")
_SPACE = re.compile(r"\s*")


def _block(text: str, start: int, stop: int) -> tuple[str | None, int]:
    """The fenced block whose opening fence line starts at ``start``: its body (None unless the block is
    Python or untagged) and where the block ends: after the backticks of its closing fence (the next line
    that starts with one), or at ``stop`` (the end of the text or of the answer section) if that is first."""
    python = _FENCE_HERE.match(text, start, stop).group(1).lower() in _PYTHON_TAGS
    line_end = text.find("\n", start, stop)
    if line_end < 0:
        return ("" if python else None), stop
    closing = _FENCE_START.search(text, line_end + 1, stop)
    body_end, end = (closing.start(), closing.end()) if closing else (stop, stop)
    return (text[line_end + 1 : body_end] if python else None), end


def fenced_blocks(text: str) -> list[str]:
    """Python (or untagged) fenced blocks of ``text``, in order (tags are text here; see ``extract_code``)."""
    blocks: list[str] = []
    pos = 0
    while (opening := _FENCE_START.search(text, pos)) is not None:
        body, pos = _block(text, opening.start(), len(text))
        if body is not None:
            blocks.append(body)
    return blocks


def _line_stays_blank(text: str, start: int, end: int, blank: bool) -> bool:
    """Is the current line blank so far after the prose ``text[start:end]``, given whether it was before?"""
    line_break = text.rfind("\n", start, end)
    if line_break < 0:
        return blank and _BLANKS.fullmatch(text, start, end) is not None
    return _BLANKS.fullmatch(text, line_break + 1, end) is not None


def _read_prose(text: str) -> tuple[str, list[str]] | None:
    """Rule 1: the text searched (prose without reasoning nor tags, blocks whole) and its Python blocks; None
    when no fence line was met in prose (rule 2)."""
    kept: list[str] = []
    blocks: list[str] = []
    fenced = in_answer = False
    keeping = True  # false once the answer section read last is closed: only a later one can matter
    section_end = -1  # the open answer section's ``</answer>`` (or the text's end), once a block needs it
    blank = True  # the line is blank so far: a fence may open here
    pos = 0
    while True:
        mark = (_FENCE_HERE.match(text, pos) if blank else None) or _PROSE_MARK.search(text, pos)
        end = mark.start() if mark else len(text)
        if keeping:
            kept.append(text[pos:end])
        blank = _line_stays_blank(text, pos, end, blank)
        if mark is None:
            break
        tag, pos = mark.group(), mark.end()
        if not tag.startswith("<"):  # a fence line
            fenced = True
            if in_answer and section_end < end:  # looked for once per section: the scan stays linear
                found = text.find(_ANSWER_END, end)
                section_end = len(text) if found < 0 else found
            body, pos = _block(text, end, section_end if in_answer else len(text))
            if keeping:
                kept.append(text[end:pos])
                if body is not None:
                    blocks.append(body)
            blank = False
        elif tag == _THINK:
            close = text.find(_THINK_END, pos)
            if close < 0:
                break
            pos = close + len(_THINK_END)
        elif tag == _ANSWER and not in_answer:
            kept, blocks, keeping, in_answer, blank = [], [], True, True, True
        elif tag == _ANSWER_END and in_answer:
            keeping = in_answer = False
        elif tag != _THINK_END:  # an answer tag that opens or closes nothing
            if keeping:
                kept.append(tag)
            blank = False
    return ("".join(kept), blocks) if fenced else None


def _last_answer(text: str) -> str:
    """The last ``<answer>`` section of ``text`` (an unclosed one runs to the end), or all of it if none."""
    start = text.find(_ANSWER)
    if start < 0:
        return text
    while True:
        body = start + len(_ANSWER)
        close = text.find(_ANSWER_END, body)
        if close < 0:
            return text[body:]
        start = text.find(_ANSWER, close)
        if start < 0:
            return text[body:close]


def _read_bare(text: str) -> str:
    """Rule 2: bare code, without the reasoning blocks it starts with (whitespace around them is kept)."""
    kept: list[str] = []
    pos = 0
    while True:
        space = _SPACE.match(text, pos).end()
        if not text.startswith(_THINK, space):
            return _last_answer("".join(kept) + text[pos:])
        kept.append(text[pos:space])
        close = text.find(_THINK_END, space + len(_THINK))
        if close < 0:
            return "".join(kept)
        pos = close + len(_THINK_END)


def _read(completion: str) -> tuple[str, list[str]]:
    """The text searched for code and its Python fenced blocks (none for bare code)."""
    return _read_prose(completion) or (_read_bare(completion), [])


def strip_reasoning(text: str) -> str:
    """``text`` without its reasoning, reduced to its last answer section if it has one (rules 1 and 2)."""
    return _read(text)[0]


# ``def name``, ``class name`` or a top-level ``name = ...``: one pattern for every name (a pattern per
# entry name would be compiled afresh for each new task, ~0.5 ms each).
_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=",
                         re.MULTILINE)


def _definitions(code: str, names: frozenset[str]) -> int:
    """How many of ``names`` ``code`` defines (a set intersection: linear in the code however many names)."""
    return len(names.intersection({a or b for a, b in _DEFINITION.findall(code)}))


_NAME = r"[^\W\d]\w*"
_KEYWORDS = "|".join(keyword.kwlist + keyword.softkwlist + ["type"])  # ``type X = ...`` from Python 3.12
# Rule 4: a line that begins like a statement (each ``(?:...)*`` repeat is followed by what it cannot match).
_STATEMENT = re.compile(rf"^[ \t]*(?:(?:{_KEYWORDS}|print)\b|@|>>>|{_NAME}(?:[ \t]*\.[ \t]*{_NAME})*[ \t]*"
                        r"(?:[(\[]|(?:[-+*/%&|^@]|//|\*\*|<<|>>)?=(?!=)|[:,][^=\n]*=(?!=)))", re.MULTILINE)
# Rule 4: a line that begins with two words, neither a keyword, before any quote or comment (the lookbehind
# lets a word start only at a word's first character, so a failing line is read once).
_WORD = rf"(?!(?:{_KEYWORDS})\b){_NAME}"
_TWO_WORDS = re.compile(rf"^[^'\"#\n]*?(?<![\w.]){_WORD}[ \t]+{_WORD}", re.MULTILINE)
# Where a line can start inside a string: a triple quote, a backslash line continuation, an f-string's
# replacement field (Python 3.12 lets one span lines).
_STRINGS_ACROSS_LINES = ('"""', "'''", "\\\n", "\\\r", "{")


def _is_prose(text: str) -> bool:
    """Rule 4: no line of ``text`` begins like a statement and one cannot be Python (nothing is compiled)."""
    return (
        _STATEMENT.search(text) is None
        and not any(mark in text for mark in _STRINGS_ACROSS_LINES)
        and _TWO_WORDS.search(text) is not None
    )


def extract_code(completion: str, entry_names: Iterable[str] = ()) -> str:
    """The code to run for ``completion``; an empty string means no code was found."""
    text, blocks = _read(completion)
    if not blocks:
        return text.strip("\n") if text.strip() and not _is_prose(text) else ""
    if len(blocks) == 1:
        return blocks[0]
    names = frozenset(entry_names)  # only consumed when there is a choice (callers may pass a lazy iterable)
    if names:
        scores = [_definitions(block, names) for block in blocks]
        best = max(scores)
        if best > 0:
            return blocks[scores.index(best)]
    return blocks[0]


# Import statements (top level or indented); relative imports name nothing. ``(\w+)`` is followed by a dot or
# a blank, ``[\w.]*`` by a blank, the blanks by a name: no repeat can take what follows it (the last group
# can, but it matches whatever is left, even nothing).
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\w+)(?:\.[\w.]*)?[ \t]+import\b|import[ \t]+([^\n#;]*))",
                     re.MULTILINE)


def imported_roots(code: str) -> set[str]:
    """Top-level names of the modules ``code`` imports with an import statement.

    Only chooses which zygote forks the program: an import missed here (``__import__``, ``exec``) is paid
    for in the child, an extra one costs a larger fork; neither changes a verdict."""
    roots = set()
    for m in _IMPORT.finditer(code):
        modules = [m.group(1)] if m.group(1) else [part.split(maxsplit=1)[0] for part in m.group(2).split(",")
                                                   if part.strip()]
        roots.update(module.split(".", 1)[0] for module in modules)
    roots.discard("")
    return roots


# A string literal (skipped whole, f-strings too: an unclosed one ends with its line, escapes are pairs) or a
# name that is not the tail of a longer name or an attribute, followed by ``(``.
_CALL = re.compile(r"""'(?:[^'\\\n]|\\.)*'?|"(?:[^"\\\n]|\\.)*"?|(?<![\w.])([^\W\d]\w*)\s*\(""")
_NOT_CALLED_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins))


def called_names(tests: Sequence[str]) -> list[str]:
    """Names the tests call (not keywords, builtins, attributes nor in string literals), in first-seen order.

    A heuristic for ``extract_code``'s choice among several blocks, from a scan of the text: tests are hostile
    input too, and are not parsed on the host for this. It never decides a verdict."""
    found: dict[str, None] = {}
    for source in tests:
        for m in _CALL.finditer(source):
            if m.group(1) and m.group(1) not in _NOT_CALLED_NAMES:
                found.setdefault(m.group(1))
    return list(found)
