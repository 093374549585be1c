"""Row validation: every malformed-row case yields its named error, and real rows yield none."""

from __future__ import annotations

import pytest

from acecoder_rl.data.schema import ErrorKind, validate_row

MISSING = object()  # marks a field to delete from the row

# (case id, field to change, new value, expected error field, expected kind)
MALFORMED = [
    ("id-missing", "id", MISSING, "id", ErrorKind.MISSING_FIELD),
    ("id-null", "id", None, "id", ErrorKind.MISSING_FIELD),
    ("id-int", "id", 7, "id", ErrorKind.WRONG_TYPE),
    ("id-empty", "id", "  ", "id", ErrorKind.EMPTY),
    ("source-missing", "source", MISSING, "source", ErrorKind.MISSING_FIELD),
    ("question-missing", "question", MISSING, "question", ErrorKind.MISSING_FIELD),
    ("question-list", "question", ["q"], "question", ErrorKind.WRONG_TYPE),
    ("tests-missing", "test_cases", MISSING, "test_cases", ErrorKind.MISSING_FIELD),
    ("tests-str", "test_cases", "assert f(1) == 1", "test_cases", ErrorKind.WRONG_TYPE),
    ("tests-empty", "test_cases", [], "test_cases", ErrorKind.EMPTY),
    ("test-blank", "test_cases", ["assert f(1) == 1", "  "], "test_cases[1]", ErrorKind.EMPTY),
    ("test-int", "test_cases", [3], "test_cases[0]", ErrorKind.WRONG_TYPE),
    ("test-syntax", "test_cases", ["assert f(1) =="], "test_cases[0]", ErrorKind.TEST_SYNTAX),
    ("test-nul", "test_cases", ["assert f('\0') == 1\0"], "test_cases[0]", ErrorKind.TEST_SYNTAX),
    ("messages-missing", "context_messages", MISSING, "context_messages", ErrorKind.MISSING_FIELD),
    ("messages-str", "context_messages", "hi", "context_messages", ErrorKind.WRONG_TYPE),
    ("messages-empty", "context_messages", [], "context_messages", ErrorKind.EMPTY),
    (
        "messages-nested",
        "context_messages",
        [[{"role": "user", "content": "q"}]],
        "context_messages[0]",
        ErrorKind.WRONG_TYPE,
    ),
    (
        "role-bad",
        "context_messages",
        [{"role": "tool", "content": "q"}],
        "context_messages[0].role",
        ErrorKind.BAD_ROLE,
    ),
    (
        "role-missing",
        "context_messages",
        [{"content": "q"}],
        "context_messages[0].role",
        ErrorKind.MISSING_FIELD,
    ),
    (
        "content-int",
        "context_messages",
        [{"role": "user", "content": 5}],
        "context_messages[0].content",
        ErrorKind.WRONG_TYPE,
    ),
    ("inferences-str", "inferences", "none", "inferences", ErrorKind.WRONG_TYPE),
    ("inference-not-dict", "inferences", [0.5], "inferences[0]", ErrorKind.WRONG_TYPE),
]

INFERENCE = {
    "model_name": "qwen_coder_2.5",
    "completion_id": 0,
    "completion": "def f(x): return x",
    "pass_rate": 0.5,
}

# (case id, inference key, new value, expected kind)
BAD_INFERENCES = [
    ("pass-rate-missing", "pass_rate", MISSING, ErrorKind.MISSING_FIELD),
    ("pass-rate-high", "pass_rate", 1.5, ErrorKind.PASS_RATE_RANGE),
    ("pass-rate-negative", "pass_rate", -0.1, ErrorKind.PASS_RATE_RANGE),
    ("pass-rate-nan", "pass_rate", float("nan"), ErrorKind.PASS_RATE_RANGE),
    ("pass-rate-str", "pass_rate", "1.0", ErrorKind.WRONG_TYPE),
    ("pass-rate-bool", "pass_rate", True, ErrorKind.WRONG_TYPE),
    ("model-missing", "model_name", MISSING, ErrorKind.MISSING_FIELD),
    ("completion-id-str", "completion_id", "0", ErrorKind.WRONG_TYPE),
    ("completion-null", "completion", None, ErrorKind.MISSING_FIELD),
]


def _replace(row: dict, field: str, value: object) -> dict:
    row = dict(row)
    if value is MISSING:
        del row[field]
    else:
        row[field] = value
    return row


@pytest.mark.parametrize(
    ("field", "value", "error_field", "kind"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_row_gives_named_error(make_row, field, value, error_field, kind):
    errors = validate_row(_replace(make_row("bad_1"), field, value), index=3)
    assert [(e.field, e.kind) for e in errors] == [(error_field, kind)]
    where = "row #3" if field == "id" else "row 'bad_1'"
    assert str(errors[0]).startswith(f"{where}: field {error_field}: {kind.value}: ")


@pytest.mark.parametrize(
    ("key", "value", "kind"), [c[1:] for c in BAD_INFERENCES], ids=[c[0] for c in BAD_INFERENCES]
)
def test_malformed_inference_gives_named_error(make_row, key, value, kind):
    row = make_row("bad_2", inferences=[INFERENCE, _replace(INFERENCE, key, value)])
    errors = validate_row(row, index=0)
    assert [(e.field, e.kind, e.row_id) for e in errors] == [(f"inferences[1].{key}", kind, "bad_2")]


def test_every_error_kind_is_covered_by_a_case():
    covered = {c[-1] for c in MALFORMED} | {c[-1] for c in BAD_INFERENCES} | {ErrorKind.DUPLICATE_ID}
    assert covered == set(ErrorKind)


def test_duplicate_id_is_flagged_on_the_later_row(make_row):
    seen: set[str] = set()
    assert validate_row(make_row("a"), 0, seen) == []
    errors = validate_row(make_row("a"), 1, seen)
    assert [(e.field, e.kind, e.index) for e in errors] == [("id", ErrorKind.DUPLICATE_ID, 1)]


def test_all_problems_of_a_row_are_collected(make_row):
    row = make_row("multi", test_cases=["assert ("], context_messages=[{"role": "bot", "content": "q"}])
    assert [e.kind for e in validate_row(row, 0)] == [ErrorKind.TEST_SYNTAX, ErrorKind.BAD_ROLE]


@pytest.mark.parametrize(
    "change",
    [
        {"inferences": None},  # converted benchmark rows and user data may have no inferences
        {"inferences": []},
        {"test_cases": ["x = f(2); assert x == 4"]},  # parses: a test need not be a single assert
        {"test_cases": [r"assert f('\d') == 1"]},  # an invalid escape only warns: still valid code
        {"inferences": [dict(INFERENCE, pass_rate=1)]},  # an integer rate from JSON is a rate
        {"context_messages": [{"role": "system", "content": ""}, {"role": "user", "content": "q"}]},
    ],
)
def test_acceptable_variants_are_valid(make_row, change):
    assert validate_row(make_row(**change), 0) == []


def test_real_acecode_row_is_valid(sample_row):
    assert validate_row(sample_row, 0) == []
