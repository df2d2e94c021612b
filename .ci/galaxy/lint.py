#!/usr/bin/env python3
"""Lint every Galaxy tool in galaxy_tools/ with Galaxy's own linter (galaxy-tool-util, with the
EDAM extra), offline, failing on warnings — what `planemo lint --fail_level warn` does with
galaxy-tool-util's linters, without planemo's network checks.

Run with the Galaxy virtual environment's Python:

    .ci/galaxy/venv/bin/python .ci/galaxy/lint.py [galaxy_tools]

Exit status 0 when every tool is clean at warning level; 1 otherwise.
"""

from __future__ import annotations

import glob
import os
import sys

from galaxy.tool_util.lint import LintContext, LintLevel, lint_tool_source_with
from galaxy.tool_util.parser import get_tool_source

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "galaxy_tools")


def tool_files(directory: str) -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        with open(path, encoding="utf-8") as fh:
            head = fh.read(2000)
        if "<tool " in head:
            out.append(path)
    return out


def lint(path: str) -> tuple[list[str], list[str], list[str]]:
    ctx = LintContext(level=LintLevel.SILENT, object_name=os.path.basename(path))
    try:
        tool_source = get_tool_source(path)
    except Exception as e:  # XML or macro errors: report them like lint errors
        return [f".. ERROR: cannot load the tool: {type(e).__name__}: {e}"], [], []
    lint_tool_source_with(ctx, tool_source)
    return ([str(m) for m in ctx.error_messages], [str(m) for m in ctx.warn_messages],
            [str(m) for m in ctx.info_messages])


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else TOOLS
    files = tool_files(directory)
    if not files:
        print(f"no Galaxy tools found in {directory}", file=sys.stderr)
        return 1
    failed = False
    for path in files:
        errors, warns, infos = lint(path)
        status = "FAIL" if errors or warns else "ok"
        print(f"{status}  {os.path.basename(path)}: {len(errors)} errors, {len(warns)} warnings, {len(infos)} infos")
        for msg in errors + warns:
            print(f"      {msg}")
        for msg in infos:
            print(f"      (info) {msg}")
        failed = failed or bool(errors or warns)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
