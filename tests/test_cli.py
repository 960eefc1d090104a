"""The command line only parses and forwards: every default is the verb's own (`main.__kwdefaults__`)."""
from __future__ import annotations

import importlib
import inspect

import pytest

from autograder import cli

REQUIRED = {"grade": ["nb.ipynb"], "grade-all": ["subs"], "merge": ["a", "--out", "o"],
            "autograde": [], "collect": ["x.zip"], "check": ["nb.ipynb"], "report": [],
            "gradescope": [], "gradebook": [], "demo": []}


def _forwarded(argv: list[str]) -> dict:
    args = vars(cli._parser().parse_args(argv))
    return {k: v for k, v in args.items() if k not in ("verb", "verbose")}


@pytest.mark.parametrize("verb", sorted(cli._VERBS))
def test_left_out_options_are_not_forwarded(verb):
    """Does a bare call forward only what was typed, so the verb's defaults apply?"""
    main = importlib.import_module(f"autograder.{cli._VERBS[verb]}").main
    params = inspect.signature(main).parameters
    forwarded = _forwarded([verb, *REQUIRED[verb]])
    assert set(forwarded) <= set(params)
    # everything not typed has a default in the verb, and only there
    missing = {n for n, p in params.items() if n not in forwarded and p.default is inspect.Parameter.empty}
    assert not missing, missing


def test_every_option_of_every_verb_is_a_parameter_of_its_main():
    """Does each option the parser knows reach a keyword of the verb's main?"""
    parser = cli._parser()
    subparsers = next(a for a in parser._actions if a.dest == "verb").choices
    for verb, sub in subparsers.items():
        params = inspect.signature(importlib.import_module(f"autograder.{cli._VERBS[verb]}").main).parameters
        dests = {a.dest for a in sub._actions if a.dest != "help"}
        assert dests <= set(params), (verb, dests - set(params))
        assert all(a.default is None or a.default == "==SUPPRESS==" for a in sub._actions
                   if a.dest != "help"), verb


def test_typed_options_are_forwarded_with_their_types():
    assert _forwarded(["grade-all", "subs", "--jobs", "3", "--shard", "1/2"]) == \
        {"submissions": "subs", "jobs": 3, "shard": "1/2"}
    assert _forwarded(["gradebook", "--csv", "g.csv"]) == {"csv_out": "g.csv"}
