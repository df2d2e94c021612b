#!/usr/bin/env python3
"""Checks an Apptainer/Singularity definition file without Apptainer: runs its sections in a
podman container made from the same base, the way ``apptainer build`` + ``apptainer test`` do.

    check_def.py containers/nesscan.def [--base IMAGE] [--build-arg KEY=VALUE ...]

1. ``{{ KEY }}`` placeholders are filled from ``%arguments`` and ``--build-arg`` (an unknown
   one is an error, as in Apptainer);
2. ``%files`` lines are copied like Apptainer does (paths relative to the repository root,
   parent folders made, ``cp -fLr``);
3. ``%post`` runs as root with ``/bin/sh -e -x`` (so one failing line fails the build);
4. ``%environment`` is written to ``/.singularity.d/env/90-environment.sh``, then ``%test``
   and ``%runscript --version`` run with ``/bin/sh`` after sourcing it, as an unprivileged user
   (uid 65534, $HOME not writable) like a user of a read-only SIF image.

``--base`` replaces the ``From:`` image (Bootstrap: docker) by a local one: here, the
debootstrapped Debian base (podman cannot pull from registries on this machine). The host CA
bundle is mounted at /run/secrets/extra_ca, where the .def's %post looks for it. Exit status:
0 when every step passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECTION = re.compile(r"^%(\w+)\s*(.*)$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def parse(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Header keywords and sections (repeated sections appended) of a definition file."""
    header: dict[str, str] = {}
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = SECTION.match(line)
        if m:
            current = m.group(1)
            sections.setdefault(current, "")
            continue
        if current is None:
            s = line.strip()
            if s and not s.startswith("#") and ":" in s:
                key, value = s.split(":", 1)
                header[key.strip()] = value.strip()
        else:
            sections[current] += line + "\n"
    return header, sections


def arguments(sections: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    values = {}
    for line in sections.get("arguments", "").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            key, _, value = s.partition("=")
            values[key.strip()] = value.strip()
    values.update(overrides)
    return values


def render(text: str, values: dict[str, str]) -> str:
    def sub(m):
        if m.group(1) not in values:
            raise SystemExit(f"check_def: {{{{ {m.group(1)} }}}} has no value (%arguments or --build-arg)")
        return values[m.group(1)]
    # %arguments itself is not rendered
    return PLACEHOLDER.sub(sub, text)


def files_script(body: str) -> str:
    lines = ["set -e", "cd /mnt/repo"]
    for raw in body.splitlines():
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        parts = shlex.split(s)
        src = parts[0]
        dst = parts[1] if len(parts) > 1 else src
        if not dst.startswith("/"):
            dst = "/" + dst
        make = dst.rstrip("/") if dst.endswith("/") else os.path.dirname(dst)
        # the source is globbed by the shell, as Apptainer does
        lines.append(f"mkdir -p {shlex.quote(make)}")
        lines.append(f"for f in {src}; do [ -e \"$f\" ] || {{ echo \"%files: no $f\" >&2; exit 1; }}; "
                     f"cp -fLr \"$f\" {shlex.quote(dst)}; done")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("deffile")
    ap.add_argument("--base", help="local image to use instead of the From: image")
    ap.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--ca", default=os.environ.get("NESSCAN_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
    ap.add_argument("--wheelhouse", help="host folder with every wheel %%post installs (wheelhouse.sh): "
                    "pip installs from it only, offline")
    ap.add_argument("--podman", default="podman")
    a = ap.parse_args(argv)

    with open(a.deffile) as fh:
        text = fh.read()
    header, raw_sections = parse(text)
    if header.get("Bootstrap") != "docker":
        raise SystemExit(f"check_def: {a.deffile}: Bootstrap must be docker (is {header.get('Bootstrap')!r})")
    overrides = dict(kv.split("=", 1) for kv in a.build_arg)
    values = arguments(raw_sections, overrides)
    _, sections = parse(render(text, values))
    for required in ("files", "post", "environment", "test", "labels"):
        if required not in sections:
            raise SystemExit(f"check_def: {a.deffile}: no %{required} section")
    base = a.base or header["From"]

    with tempfile.TemporaryDirectory(prefix="check-def-") as tmp:
        os.chmod(tmp, 0o755)  # %test runs as another user
        def write(name, content):
            with open(os.path.join(tmp, name), "w") as fh:
                fh.write(content)
        write("files.sh", files_script(sections["files"]))
        write("post.sh", sections["post"])
        write("environment.sh", sections["environment"])
        write("test.sh", sections["test"])
        write("runscript.sh", sections.get("runscript", 'exec "$@"\n'))
        as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent"
        write("run.sh", f"""set -e
echo '== %files'
sh -e /mnt/def/files.sh
echo '== %post'
(cd / && /bin/sh -e -x /mnt/def/post.sh)
mkdir -p /.singularity.d/env
cp /mnt/def/environment.sh /.singularity.d/env/90-environment.sh
echo '== %test (uid 65534)'
{as_user} /bin/sh -c '. /.singularity.d/env/90-environment.sh && exec /bin/sh /mnt/def/test.sh'
echo '== %runscript --version (uid 65534)'
{as_user} /bin/sh -c '. /.singularity.d/env/90-environment.sh && exec /bin/sh /mnt/def/runscript.sh --version'
echo '== check_def: OK'
""")
        cmd = [a.podman, "run", "--rm", "--network", "host",
               "-v", f"{REPO}:/mnt/repo:ro", "-v", f"{tmp}:/mnt/def:ro"]
        if a.ca and os.path.isfile(a.ca):
            cmd += ["-v", f"{a.ca}:/run/secrets/extra_ca:ro"]
        if a.wheelhouse:
            cmd += ["-v", f"{os.path.abspath(a.wheelhouse)}:/var/cache/nesscan-wheels:ro",
                    "-e", "PIP_FIND_LINKS=/var/cache/nesscan-wheels", "-e", "PIP_NO_INDEX=1"]
        cmd += [base, "/bin/sh", "/mnt/def/run.sh"]
        print("check_def:", " ".join(shlex.quote(c) for c in cmd), flush=True)
        return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
