"""The modules whose real objects the judge uses for a test's names (a module of its own: the programs'
child needs the list too, and must not import the planner's modules to get it)."""

# The test's own imports of these, and names the program binds to them or to their public attributes, are
# the judge's own copies. Large ones are imported by the judge zygote on a row's first need.
JUDGE_MODULES = frozenset(
    "math cmath string collections itertools functools operator decimal fractions statistics heapq bisect "
    "json re datetime copy typing numbers random array enum dataclasses textwrap unicodedata calendar "
    "pytest numpy".split()
)
# Used by name without an import, they resolve only when the program bound the name (as plain Python would
# let the test see the program's ``import math``).
IMPLICIT_MODULES = frozenset(
    "math cmath string collections itertools functools operator decimal fractions statistics heapq "
    "bisect json re datetime copy".split()
)
