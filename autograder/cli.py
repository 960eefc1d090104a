"""Command line: parses arguments and forwards them to one verb module's `main(*, ...)`.

Defaults are stated once, in the verb's `main` signature (`main.__kwdefaults__`, as otter
takes them): an option left out is not forwarded, so the verb's own default applies."""
import argparse
import functools
import importlib
import logging
import sys

JOBS_HELP = ("cores to grade on (default: all); 1 grades one submission at a time, N >= 2 "
             "grade three at a time per core, in the sandbox lanes of one worker per two cores "
             "(docs/scaling.md)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="verb", required=True)
    verb = functools.partial(sub.add_parser, argument_default=argparse.SUPPRESS)

    g = verb("grade", help="grade one submission notebook")
    g.add_argument("notebook")
    g.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    g.add_argument("--assignment")

    b = verb("grade-all", help="grade a folder of submissions in parallel, resumably")
    b.add_argument("submissions", help="a folder of .ipynb files, or nbgrader's submitted/")
    b.add_argument("--out", help="where per-submission results go")
    b.add_argument("--jobs", type=int, help=JOBS_HELP)
    b.add_argument("--shard", help="K/N: grade only the K-th of N disjoint slices")
    b.add_argument("--assignment")
    b.add_argument("--progress", choices=["auto", "on", "off"])

    m = verb("merge", help="fold shard result folders into one")
    m.add_argument("shards", nargs="+")
    m.add_argument("--out", required=True)

    a = verb("autograde", help="nbgrader autograde, fed by the engine (resumable)")
    a.add_argument("assignment", nargs="?")
    a.add_argument("--jobs", type=int, help=JOBS_HELP)
    a.add_argument("--course", help="the course directory (has nbgrader_config.py)")

    c = verb("collect", help="an LMS download (Canvas zip) -> submitted/, every skipped file listed")
    c.add_argument("archive")
    c.add_argument("assignment", nargs="?")
    c.add_argument("--course")
    c.add_argument("--roster", help="Canvas gradebook export (CSV): students' names for the gradebook")

    k = verb("check", help="run the public checks of your notebook (students)")
    k.add_argument("notebook")
    k.add_argument("--timeout", type=int, help="seconds allowed per cell")

    r = verb("report", help="cohort report (single HTML file)")
    r.add_argument("--course")
    r.add_argument("--assignment")
    r.add_argument("--out")

    s = verb("gradescope", help="build the Gradescope autograder.zip")
    s.add_argument("--out")
    vis = ["visible", "after_due_date", "after_published", "hidden"]
    s.add_argument("--visibility", choices=vis, help="who sees the result (visible)")
    s.add_argument("--test-visibility", choices=vis, help="who sees each part (visible)")

    t = verb("gradebook", help="print the gradebook table (students x parts)")
    t.add_argument("--course")
    t.add_argument("--assignment")
    t.add_argument("--csv", dest="csv_out", help="also write the table to this CSV file")

    d = verb("demo", help="the main job: collect, autograde, feedback, export, table")
    d.add_argument("--course")
    d.add_argument("--jobs", type=int, help=JOBS_HELP)
    return p


_VERBS = {
    "grade": "grade", "grade-all": "batch", "merge": "merge", "autograde": "autograde",
    "collect": "collect", "check": "self_check", "report": "report", "gradescope": "gradescope_bundle",
    "gradebook": "gradebook_table", "demo": "demo",
}


def run(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("verb", "verbose")}
    module = importlib.import_module(f"autograder.{_VERBS[args.verb]}")
    return int(module.main(**kwargs) or 0)
