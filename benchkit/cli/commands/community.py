"""`benchkit submit`, `benchkit validate` and `benchkit site`: the community data set.

Options are parsed here; the work is in benchkit.community (submit.py, validate.py) and
benchkit.community.site.
"""

from __future__ import annotations

import sys

import click

from benchkit.cli.output import say


def _print_problems(problems) -> None:  # noqa: ANN001 - list[community.Problem]
    """Every problem on stderr, one line each, in the file's order (Problem's text is
    already terminal-safe)."""
    for problem in problems:
        say(str(problem), err=True)


def _safe(text: object) -> str:
    """Text from a result file or a file name, printable: no escape sequences."""
    from benchkit.core.textsafe import terminal

    return terminal(text, one_line=True)


@click.command()
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--notes", default=None, metavar="TEXT",
              help="Free text shown with the result (what else ran, power mode...).")
@click.option("--root", default="results/community", show_default=True,
              type=click.Path(file_okay=False),
              help="The community data set to file the result into.")
@click.option("--suites", "suites_dir", default=None, type=click.Path(file_okay=False),
              help="Folder with the standard suites [default: ./suites].")
@click.option("--pr", "open_pr", is_flag=True,
              help="Open the pull request with gh (GitHub's command line) where it is "
                   "installed and logged in: a branch, a commit of the file, a push, "
                   "gh pr create. Otherwise the steps are printed.")
@click.option("--site-url", default=None, metavar="URL",
              help="The published site's address, for the link to the result's page "
                   "[default: GitHub Pages of the origin remote].")
def submit(result: str, notes: str | None, root: str, suites_dir: str | None, open_pr: bool,
           site_url: str | None) -> None:
    """Prepare RESULT for the community data set; print the pull-request steps, or with
    --pr open the pull request.

    \b
    Removes what must not be published (host names, home folders, serial numbers),
    checks the result as CI will, and writes results/community/<chip>/<model>/<id>.json,
    the id derived from the content: the same result submitted twice is the same file.
    Chip, GPU cores, memory and OS come from the result; nothing else is asked.
    """
    from benchkit.community import pullrequest
    from benchkit.community.submit import submit as do_submit

    sub = do_submit(result, notes=notes, root=root, suites_dir=suites_dir)
    _print_problems(sub.verdict.problems)
    if sub.status == "rejected":
        say(f"rejected: {sub.verdict.count('error')} problem(s) above; nothing written",
            err=True)
        sys.exit(2)
    say(f"{sub.status}: {sub.path}")
    if sub.removed:
        say(f"removed before publishing ({len(sub.removed)}, listed in the file's "
            "community.removed):")
        for item in sub.removed[:10]:
            say(f"  {_safe(item)}")
        if len(sub.removed) > 10:
            say(f"  ... and {len(sub.removed) - 10} more")
    warnings = sub.verdict.count("warning")
    say(f"checks: accepted{f', {warnings} warning(s) above' if warnings else ''}")
    page = pullrequest.site_url(sub.path, site_url)
    sys.exit(_share(sub, page, open_pr))


def _share(sub, site: str | None, open_pr: bool) -> int:  # noqa: ANN001 - Submission
    """Open the pull request (--pr, gh ready) or print the steps; the exit code."""
    import shutil
    from pathlib import Path

    from benchkit.community import pullrequest
    from benchkit.community.submit import next_steps, pr_body, pr_steps, pr_title, result_page

    page = result_page(sub, site)
    where = page if site else f"{page} of the site"
    ran: list[str] = []
    if open_pr:
        problem = pullrequest.gh_ready(Path(sub.path).parent)
        if problem is None:
            done = pullrequest.open_pull_request(sub.path, pr_steps(sub, absolute=True),
                                                 pr_title(sub), pr_body(sub, page if site else None))
            ran = done.done
            for command in ran:
                say(f"ran: {command}")
            if done.problem is None:
                say(f"pull request: {_safe(done.url)}")
                say(f"once it is merged and CI has rebuilt the site: {_safe(where)}")
                return 0
            problem = done.problem
        say(f"pull request not opened: {_safe(problem)}", err=True)
    elif shutil.which("gh"):
        say("gh is installed: `benchkit submit RESULT --pr` runs these steps itself")
    say("next steps:")
    for i, step in enumerate(next_steps(sub)[len(ran):], len(ran) + 1):
        say(f"  {i}. {step}")
    say(f"once merged and CI has rebuilt the site, the result's page: {_safe(where)}")
    return 1 if open_pr else 0


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--suites", "suites_dir", default=None, type=click.Path(file_okay=False),
              help="Folder with the standard suites [default: ./suites].")
@click.option("--strict", is_flag=True, help="Exit 1 when any file has warnings.")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no per-file verdicts.")
def validate(paths: tuple[str, ...], suites_dir: str | None, strict: bool, quiet: bool) -> None:
    """Check community result files (folders: every *.json under them), as CI does.

    \b
    One line per problem on stderr, naming the file and the field:
      error:   rejected (not a result, unknown schema version, missing field, too
               few iterations, model sha256 not the standard suite's, a decode figure
               above the chip's memory bandwidth, too large, path not matching the
               content, a duplicate, something not publishable)
      warning: accepted, but look (high spread, fewer iterations than the suite's)
      note:    what could not be checked (e.g. a chip not in the database)
    \b
    Exit codes: 0 every file accepted (warnings allowed), 1 warnings with --strict,
    2 at least one file rejected.
    """
    from benchkit.community.validate import ERROR, WARNING, exit_code, validate_paths

    verdicts = validate_paths(paths, suites_dir=suites_dir)
    for v in verdicts:
        _print_problems(v.problems)
        if not quiet:
            errors, warnings = v.count(ERROR), v.count(WARNING)
            state = "rejected" if errors else "accepted"
            extra = ", ".join(part for part in (
                f"{errors} error(s)" if errors else "",
                f"{warnings} warning(s)" if warnings else "") if part)
            say(f"{state}: {_safe(v.file)}{f' ({extra})' if extra else ''}")
    rejected = sum(1 for v in verdicts if not v.accepted)
    say(f"{len(verdicts)} file(s): {len(verdicts) - rejected} accepted, "
        f"{rejected} rejected")
    sys.exit(exit_code(verdicts, strict=strict))


@click.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "output", default="site", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write the site into.")
@click.option("--suites", "suites_dir", default=None, type=click.Path(file_okay=False),
              help="Folder with the standard suites [default: ./suites].")
@click.option("--presets", default=None, metavar="NAME,NAME,...",
              help="The model presets the projection explorer offers [default: every preset "
                   "of `benchkit models list`].")
def site(results_dir: str, output: str, suites_dir: str | None, presets: str | None) -> None:
    """Build the static site of the community results in RESULTS_DIR.

    \b
    Only files that `benchkit validate` accepts are shown; the others are listed on
    stderr. The output is deterministic (the same input gives the same bytes) and uses
    relative links only, so it works from file:// and from any static host.
    """
    from benchkit.community.site.build import build_site

    chosen = None if presets is None else [p.strip() for p in presets.split(",") if p.strip()]
    built = build_site(results_dir, output, suites_dir=suites_dir, presets=chosen)
    for problem in built.skipped:
        say(f"skipped: {_safe(problem)}", err=True)
    say(f"wrote {len(built.pages)} page(s) to {output}/ from {built.n_results} "
        f"accepted result(s) ({len(built.skipped)} file(s) skipped); "
        f"open {output}/index.html")
