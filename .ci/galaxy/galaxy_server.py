#!/usr/bin/env python3
"""Start and stop a throw-away Galaxy (26.1, pip-installed) that serves galaxy_tools/.

Used by tests/test_galaxy.py; also runnable by hand to click through the tools:

    .ci/galaxy/setup.sh                      # once: Galaxy into .ci/galaxy/venv
    python .ci/galaxy/galaxy_server.py serve # prints URL and API keys, Ctrl-C stops it

Standard library only, so it runs under the nesscan environment's Python. Environment variables:

NESSCAN_GALAXY_VENV      Galaxy's virtual environment (default .ci/galaxy/venv)
NESSCAN_GALAXY_JOB_VENV  the virtual environment with nesscan that jobs use (default: the
                         environment of the Python running this, i.e. sys.prefix; CI: .ci-venv)
                         When the nesscan package this Python imports is a source tree
                         (editable install, or PYTHONPATH=clone/src with another checkout's
                         environment), jobs get it first on PYTHONPATH: they run the code under
                         test.
NESSCAN_GALAXY_PORT      port on 127.0.0.1 (default: a free one)
NESSCAN_GALAXY_WORK      work directory (default: a new temporary directory)

The server runs as the current user (root in CI is fine: galaxy-web, unlike gravity, does not
refuse it), with sqlite, the local job runner (2 workers) and no conda. Jobs find `nesscan`
through Galaxy's galaxy_packages dependency resolver: <work>/deps/nesscan/<version>/env.sh puts the
job environment's bin/ first on PATH. GALAXY_VIRTUAL_ENV is Galaxy's own environment, which job
scripts activate for Galaxy's own steps (metadata, uploads).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shlex
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS_DIR = os.path.join(REPO, "galaxy_tools")
ADMIN_EMAIL = "admin@nesscan.test"
USER_EMAIL = "user@nesscan.test"


def galaxy_venv() -> str:
    return os.path.abspath(os.environ.get("NESSCAN_GALAXY_VENV") or os.path.join(HERE, "venv"))


def job_venv() -> str:
    return os.path.abspath(os.environ.get("NESSCAN_GALAXY_JOB_VENV") or sys.prefix)


def nesscan_package_dir() -> str | None:
    """The directory holding the `nesscan` package this Python imports (PYTHONPATH included)."""
    spec = importlib.util.find_spec("nesscan")
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))


def job_pythonpath() -> str | None:
    """PYTHONPATH for the jobs: the package under test, unless it is installed in the job
    environment itself (a source checkout or an editable install is put first on the path)."""
    pkg = nesscan_package_dir()
    if pkg is None or os.path.realpath(pkg).startswith(os.path.realpath(job_venv()) + os.sep):
        return None
    return pkg


def galaxy_missing() -> str | None:
    """Why Galaxy cannot be started here, or None."""
    venv = galaxy_venv()
    for exe in ("galaxy-web", "galaxy-tool-test"):
        if not os.access(os.path.join(venv, "bin", exe), os.X_OK):
            return f"{exe} not found in {venv} (run .ci/galaxy/setup.sh or set NESSCAN_GALAXY_VENV)"
    if not os.access(os.path.join(job_venv(), "bin", "nesscan"), os.X_OK):
        return f"no nesscan executable in the job environment {job_venv()} (set NESSCAN_GALAXY_JOB_VENV)"
    return None


def tool_files() -> list[str]:
    """The tool XML files of galaxy_tools/ (not macros or data-table files), sorted."""
    out = []
    for name in sorted(os.listdir(TOOLS_DIR)):
        if not name.endswith(".xml"):
            continue
        with open(os.path.join(TOOLS_DIR, name), encoding="utf-8") as fh:
            if "<tool " in fh.read(4000):
                out.append(name)
    return out


def tool_version_token() -> str:
    with open(os.path.join(TOOLS_DIR, "macros.xml"), encoding="utf-8") as fh:
        m = re.search(r'<token name="@TOOL_VERSION@">([^<]+)</token>', fh.read())
    if not m:
        raise RuntimeError("no @TOOL_VERSION@ token in galaxy_tools/macros.xml")
    return m.group(1).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GalaxyError(RuntimeError):
    pass


class GalaxyServer:
    def __init__(self, work_dir: str | None = None, port: int | None = None, extra_env: dict | None = None,
                 job_env: dict | None = None):
        self.work = os.path.abspath(work_dir or os.environ.get("NESSCAN_GALAXY_WORK")
                                    or tempfile.mkdtemp(prefix="nesscan-galaxy-"))
        self.port = int(port or os.environ.get("NESSCAN_GALAXY_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.venv = galaxy_venv()
        self.job_venv = job_venv()
        self.job_pythonpath = job_pythonpath()
        self.extra_env = dict(extra_env or {})
        self.job_env = dict(job_env or {})  # exported to the tool commands (through env.sh)
        self.bootstrap_key = secrets.token_hex(16)
        self.admin_key: str | None = None
        self.user_key: str | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(self.work, "galaxy.log")

    # ---- set-up --------------------------------------------------------------------------

    def _fill(self, template_path: str, out_path: str, **extra: str) -> None:
        with open(template_path, encoding="utf-8") as fh:
            text = fh.read()
        values = {"REPO": REPO, "WORK": self.work, "PORT": str(self.port), "ADMIN_EMAIL": ADMIN_EMAIL,
                  "ADMIN_KEY": self.bootstrap_key, "ID_SECRET": secrets.token_hex(16), **extra}
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write(string.Template(text).substitute(values))

    def prepare(self) -> None:
        for d in ("config", "data", "tool-data", "deps"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        self.config_file = os.path.join(self.work, "config", "galaxy.yml")
        self._fill(os.path.join(HERE, "galaxy.yml"), self.config_file)
        entries = "\n".join(f'        <tool file="{name}"/>' for name in tool_files())
        self._fill(os.path.join(HERE, "tool_conf.xml"), os.path.join(self.work, "config", "tool_conf.xml"),
                   TOOL_ENTRIES=entries)
        # galaxy_packages resolver: <tool_dependency_dir>/<name>/<version>/env.sh
        dep = os.path.join(self.work, "deps", "nesscan", tool_version_token())
        os.makedirs(dep, exist_ok=True)
        with open(os.path.join(dep, "env.sh"), "w") as fh:
            fh.write("# nesscan for Galaxy jobs: the virtual environment the tests run in\n"
                     f'PATH="{self.job_venv}/bin:$PATH"\nexport PATH\n')
            if self.job_pythonpath:
                fh.write("# the nesscan source tree under test\n"
                         f"PYTHONPATH={shlex.quote(self.job_pythonpath)}\nexport PYTHONPATH\n")
            for name, value in self.job_env.items():
                fh.write(f"{name}={shlex.quote(str(value))}\nexport {name}\n")

    def env(self) -> dict:
        env = dict(os.environ)
        for var in ("PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX"):
            env.pop(var, None)
        env.update({
            "VIRTUAL_ENV": self.venv,
            "GALAXY_VIRTUAL_ENV": self.venv,
            "PATH": os.path.join(self.venv, "bin") + os.pathsep + env.get("PATH", ""),
            "GALAXY_CONFIG_FILE": self.config_file,
            "TMPDIR": os.path.join(self.work, "data", "tmp"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        os.makedirs(env["TMPDIR"], exist_ok=True)
        return env

    # ---- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 600) -> "GalaxyServer":
        why = galaxy_missing()
        if why:
            raise GalaxyError(why)
        self.prepare()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.venv, "bin", "galaxy-web"), "-c", self.config_file, "-b", f"127.0.0.1:{self.port}"],
            cwd=self.work, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                raise GalaxyError(f"galaxy-web exited with status {self.proc.returncode}; log tail:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/api/version", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() - t0 > timeout:
                self.stop()
                raise GalaxyError(f"Galaxy did not answer within {timeout:.0f} s; log tail:\n{self.log_tail()}")
            time.sleep(2)
        self.startup_seconds = time.time() - t0
        try:
            self.admin_key = self._create_user(ADMIN_EMAIL, "admin")
            self.user_key = self._create_user(USER_EMAIL, "tester")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "GalaxyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = 60) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- API -----------------------------------------------------------------------------

    def api(self, method: str, path: str, key: str | None = None, payload: dict | None = None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url + "/api/" + path.lstrip("/"), data=data, method=method)
        req.add_header("x-api-key", key or self.admin_key or self.bootstrap_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise GalaxyError(f"{method} /api/{path}: HTTP {e.code}: {e.read()[:500]!r}") from None
        return json.loads(body) if body else None

    def _create_user(self, email: str, username: str) -> str:
        user = self.api("POST", "users", key=self.bootstrap_key,
                        payload={"username": username, "email": email, "password": secrets.token_hex(12)})
        key = self.api("POST", f"users/{user['id']}/api_key", key=self.bootstrap_key)
        if not isinstance(key, str) or not key:
            raise GalaxyError(f"no API key for {email}: {key!r}")
        return key

    # ---- tool tests ----------------------------------------------------------------------

    def tool_test_command(self) -> list[str]:
        """galaxy-tool-test, polling once a second (.ci/galaxy/tool_test.py)."""
        return [os.path.join(self.venv, "bin", "python"), os.path.join(HERE, "tool_test.py")]

    def tool_test(self, tool_id: str, output_json: str, index: int | None = None, parallel: int = 1,
                  output_dir: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
        cmd = self.tool_test_command() + ["-u", self.url, "-k", self.user_key,
               "-a", self.admin_key, "-t", tool_id, "-j", output_json, "--with-reference-data",
               "--history-per-test-case", "--parallel-tests", str(parallel)]
        if index is not None:
            cmd += ["-i", str(index)]
        if output_dir:
            cmd += ["-o", output_dir]
        return subprocess.run(cmd, cwd=self.work, env=self.env(), capture_output=True, text=True, timeout=timeout)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("serve",):
        print(__doc__)
        return 2
    job_env = {"NESSCAN_MODELS": os.environ["NESSCAN_MODELS"]} if os.environ.get("NESSCAN_MODELS") else {}
    server = GalaxyServer(job_env=job_env)

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    t0 = time.time()
    with server:
        print(f"Galaxy {server.url} up in {time.time() - t0:.0f} s (work dir {server.work})")
        print(f"admin key {server.admin_key}  user key {server.user_key}")
        print(f"log: {server.log_path}; Ctrl-C stops it")
        try:
            while server.proc and server.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
