"""Command line: parses arguments and forwards them to one verb module's `main(*, ...)`."""
import argparse
import importlib
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="verb", required=True)

    g = sub.add_parser("grade", help="grade one submission notebook")
    g.add_argument("notebook")
    g.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    g.add_argument("--assignment", default="gradient_backward")

    b = sub.add_parser("grade-all", help="grade a folder of submissions in parallel, resumably")
    b.add_argument("submissions", help="a folder of .ipynb files, or nbgrader's submitted/")
    b.add_argument("--out", default=".kit/results", help="where per-submission results go")
    b.add_argument("--jobs", type=int, default=0, help="parallel workers (default: one per core)")
    b.add_argument("--shard", default=None, help="K/N: grade only the K-th of N disjoint slices")
    b.add_argument("--assignment", default="gradient_backward")
    b.add_argument("--progress", choices=["auto", "on", "off"], default="auto")

    m = sub.add_parser("merge", help="fold shard result folders into one")
    m.add_argument("shards", nargs="+")
    m.add_argument("--out", required=True)

    a = sub.add_parser("autograde", help="nbgrader autograde, fed by the engine (resumable)")
    a.add_argument("assignment", nargs="?", default="gradient_backward")
    a.add_argument("--jobs", type=int, default=0)
    a.add_argument("--course", default=".", help="the course directory (has nbgrader_config.py)")

    c = sub.add_parser("collect", help="an LMS download (Canvas zip) -> submitted/, every skipped file listed")
    c.add_argument("archive")
    c.add_argument("assignment", nargs="?", default="gradient_backward")
    c.add_argument("--course", default=".")
    c.add_argument("--roster", default=None, help="Canvas gradebook export (CSV): students' names for the gradebook")

    k = sub.add_parser("check", help="run the public checks of your notebook (students)")
    k.add_argument("notebook")
    k.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell")

    r = sub.add_parser("report", help="cohort report (single HTML file)")
    r.add_argument("--course", default=".")
    r.add_argument("--assignment", default="gradient_backward")
    r.add_argument("--out", default="build/report.html")

    s = sub.add_parser("gradescope", help="build the Gradescope autograder.zip")
    s.add_argument("--out", default="build/autograder.zip")
    vis = ["visible", "after_due_date", "after_published", "hidden"]
    s.add_argument("--visibility", choices=vis, default=None, help="who sees the result (visible)")
    s.add_argument("--test-visibility", choices=vis, default=None, help="who sees each part (visible)")

    t = sub.add_parser("gradebook", help="print the gradebook table (students x parts)")
    t.add_argument("--course", default=".")
    t.add_argument("--assignment", default="gradient_backward")
    t.add_argument("--csv", dest="csv_out", default=None, help="also write the table to this CSV file")

    d = sub.add_parser("demo", help="the main job: collect, autograde, feedback, export, table")
    d.add_argument("--course", default=".")
    d.add_argument("--jobs", type=int, default=0, help="parallel grading workers (default: one per core)")
    return p


_VERBS = {
    "grade": "grade", "grade-all": "batch", "merge": "merge", "autograde": "autograde",
    "collect": "collect", "check": "check", "report": "report", "gradescope": "gradescope",
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
