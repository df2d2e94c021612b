"""The Galaxy tools (galaxy_tools/) in a real Galaxy 26.1.

One module-scoped Galaxy server (`galaxy-web`, sqlite, local job runner, no conda; see
.ci/galaxy/galaxy_server.py) serves galaxy_tools/; every <test> of every tool XML becomes one pytest
case, run by Galaxy's own `galaxy-tool-test`. Besides: Galaxy's linter at warning level, a headless
Chromium screenshot of the NES scan form (kept under ci-artifacts/galaxy/), a dataset whose name is
shell code, and the GPU/CPU choice of the tools' command lines.

Needs Galaxy in its own virtual environment (`.ci/galaxy/setup.sh`, or NESSCAN_GALAXY_VENV) and
Debian's `chromium`. Without them the tests are skipped, or fail when CI=true. The jobs run the
`nesscan` of NESSCAN_GALAXY_JOB_VENV (default: the environment running pytest).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS_DIR = os.path.join(ROOT, "galaxy_tools")
CI_GALAXY = os.path.join(ROOT, ".ci", "galaxy")
ARTIFACTS = os.path.join(ROOT, "ci-artifacts", "galaxy")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
TOOL_TEST_TIMEOUT = float(os.environ.get("NESSCAN_GALAXY_TEST_TIMEOUT", "2400"))

_spec = importlib.util.spec_from_file_location("nesscan_galaxy_server", os.path.join(CI_GALAXY, "galaxy_server.py"))
gs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gs)


def unavailable(reason: str):
    """Skip locally, fail in CI: the Galaxy tests are part of the acceptance there."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


# ------------------------------------------------------------------------------ the test cases

def tool_xmls() -> list[tuple[str, str, str]]:
    """(tool id, version expression, path) for every tool XML in galaxy_tools/."""
    out = []
    for name in gs.tool_files():
        path = os.path.join(TOOLS_DIR, name)
        root = ET.parse(path).getroot()
        out.append((root.get("id"), root.get("version"), path))
    return out


def tool_test_cases() -> list[tuple[str, int, str]]:
    """(tool id, test index, short description) for every <test> of every tool."""
    cases = []
    for tool_id, _, path in tool_xmls():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        tests_block = text[text.find("<tests>"):text.find("</tests>")]
        # the comment right before each <test> describes it ("<!-- 3: ESM-2 ... -->")
        comments = re.findall(r"(?:<!--\s*(.*?)-->\s*)?<test[\s>]", tests_block, flags=re.S)
        n = len(ET.parse(path).getroot().findall("./tests/test"))
        assert len(comments) == n, f"{path}: cannot pair <test> elements with their comments"
        for i, comment in enumerate(comments):
            words = re.sub(r"^\d+:\s*", "", " ".join(comment.split()))[:60]
            cases.append((tool_id, i, words))
    return cases


CASES = tool_test_cases()


def test_every_tool_has_tests():
    tools = tool_xmls()
    assert {t for t, _, _ in tools} >= {"nesscan_predict", "nesscan_embed", "nesscan_window_score", "nesscan_fuse",
                                        "nesscan_evaluate", "nesscan_explain"}
    for tool_id, _, _ in tools:
        assert any(c[0] == tool_id for c in CASES), f"{tool_id} has no <tests>"


def test_tool_version_matches_package():
    """@TOOL_VERSION@ is the nesscan version the tools require (package requirement, container tag)."""
    out = subprocess.run([os.path.join(gs.job_venv(), "bin", "nesscan"), "--version"], capture_output=True, text=True)
    if out.returncode != 0:
        unavailable(f"no nesscan in {gs.job_venv()}: {out.stderr.strip()}")
    assert out.stdout.split() == ["nesscan", gs.tool_version_token()], (
        f"galaxy_tools/macros.xml @TOOL_VERSION@ {gs.tool_version_token()} != `nesscan --version` {out.stdout.strip()}")


def test_shed_yml_publishes_every_tool():
    """galaxy_tools/.shed.yml: one Tool Shed repository per tool (auto_tool_repositories) and a
    suite repository depending on them all; `planemo shed_lint --tools` reads the same keys."""
    import yaml

    with open(os.path.join(TOOLS_DIR, ".shed.yml"), encoding="utf-8") as fh:
        shed = yaml.safe_load(fh)
    for key in ("name", "owner", "description", "long_description", "homepage_url", "remote_repository_url",
                "categories"):
        assert shed.get(key), f".shed.yml: no {key}"
    assert shed.get("type", "unrestricted") == "unrestricted"
    assert set(shed["categories"]) <= {"Proteomics", "Sequence Analysis", "Machine Learning", "Visualization"}
    assert shed["auto_tool_repositories"]["name_template"] == "{{ tool_id }}"
    assert shed["suite"]["name"] == "suite_nesscan" and shed["suite"]["description"]
    # every tool XML sits beside .shed.yml (auto_tool_repositories takes each *.xml with a <tool>)
    # and every repository name the template yields is a valid Tool Shed name
    for tool_id, _, path in tool_xmls():
        assert os.path.dirname(path) == TOOLS_DIR
        assert re.fullmatch(r"[a-z0-9_]{3,80}", tool_id), tool_id
    # the data tables the tools use are declared for installation, with .loc samples
    with open(os.path.join(TOOLS_DIR, "tool_data_table_conf.xml.sample"), encoding="utf-8") as fh:
        tables = {t.get("name"): t.find("file").get("path") for t in ET.fromstring(fh.read()).findall("table")}
    used = set()
    for _, _, path in tool_xmls() + [(None, None, os.path.join(TOOLS_DIR, "macros.xml"))]:
        with open(path, encoding="utf-8") as fh:
            used.update(re.findall(r'from_data_table="([^"]+)"', fh.read()))
    assert used and used <= set(tables), (used, tables)
    for name in used:
        assert os.path.isfile(os.path.join(TOOLS_DIR, tables[name] + ".sample")), tables[name]


# ------------------------------------------------------------------------------ GPU / CPU choice

def _device_snippet() -> str:
    """The shell that @DEVICE@ renders for device=auto (Cheetah lines dropped, \\$ unescaped)."""
    with open(os.path.join(TOOLS_DIR, "macros.xml"), encoding="utf-8") as fh:
        macros = fh.read()
    token = re.search(r'<token name="@DEVICE@"><!\[CDATA\[(.*?)\]\]></token>', macros, re.S).group(1)
    auto = token.split("#if str($device_choice) == 'auto':", 1)[1].split("#else:", 1)[0]
    after = token.split("#end if", 1)[1]
    return (auto.strip() + "\n" + after.strip()).replace("\\$", "$")


@pytest.mark.parametrize("env, expected", [
    ({}, "cpu"),
    ({"GALAXY_GPU_ENABLED": "true"}, "cuda"),
    ({"GALAXY_GPU_ENABLED": "false"}, "cpu"),
    ({"CUDA_VISIBLE_DEVICES": "0"}, "cuda"),
    ({"CUDA_VISIBLE_DEVICES": "GPU-5f2c1a3e,1"}, "cuda"),
    ({"CUDA_VISIBLE_DEVICES": ""}, "cpu"),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, "cpu"),
    ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, "cpu"),
], ids=["nothing", "galaxy-gpu-enabled", "galaxy-gpu-disabled", "cuda-0", "cuda-uuid-list", "cuda-empty",
        "cuda-minus-1", "cuda-nodevfiles"])
def test_device_choice_follows_the_job_environment(env, expected):
    """The GPU branch of the tools' command lines (asserted in Galaxy by <assert_command>), run."""
    snippet = _device_snippet()
    assert snippet.endswith("&&"), snippet
    base = {k: v for k, v in os.environ.items() if k not in ("GALAXY_GPU_ENABLED", "CUDA_VISIBLE_DEVICES")}
    out = subprocess.run(["bash", "-c", snippet + " true"], capture_output=True, text=True, env={**base, **env})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"nesscan: device {expected}"


# ------------------------------------------------------------------------------ lint

def test_galaxy_lint_clean_at_warning_level():
    why = gs.galaxy_missing()
    if why:
        unavailable(why)
    out = subprocess.run([os.path.join(gs.galaxy_venv(), "bin", "python"), os.path.join(CI_GALAXY, "lint.py")],
                         capture_output=True, text=True, timeout=600)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "lint.txt"), "w") as fh:
        fh.write(out.stdout + out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok  ") == len(tool_xmls()), out.stdout


# ------------------------------------------------------------------------------ the server

def _default_model_missing(job_venv: str) -> str | None:
    code = "from nesscan.predict import resolve_model; print(resolve_model(None))"
    out = subprocess.run([os.path.join(job_venv, "bin", "python"), "-c", code], capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stderr.strip().splitlines() or ["?"])[-1]


@pytest.fixture(scope="module")
def galaxy(request, tmp_path_factory):
    why = gs.galaxy_missing()
    if why:
        unavailable(why)
    job_env = {}
    missing = _default_model_missing(gs.job_venv())
    if missing:
        if IN_CI:
            pytest.fail(f"the shipped model is missing, so the one-click tool cannot run: {missing}", pytrace=False)
        # local runs while the shipped model is being retrained: a throw-away model on synthetic data
        models = tmp_path_factory.mktemp("galaxy-models")
        os.symlink(request.getfixturevalue("tiny_model"), models / "nesscan-builtin-v2")
        job_env["NESSCAN_MODELS"] = str(models)
    os.makedirs(ARTIFACTS, exist_ok=True)
    server = gs.GalaxyServer(work_dir=str(tmp_path_factory.mktemp("galaxy")), job_env=job_env)
    t0 = time.time()
    try:
        server.start()
    except gs.GalaxyError as e:
        server.stop()
        shutil.copyfile(server.log_path, os.path.join(ARTIFACTS, "galaxy.log")) if os.path.exists(server.log_path) else None
        pytest.fail(f"Galaxy did not start: {e}", pytrace=False)
    print(f"\nGalaxy {server.url} started in {time.time() - t0:.0f} s (work dir {server.work})")
    yield server
    server.stop()
    if os.path.exists(server.log_path):
        shutil.copyfile(server.log_path, os.path.join(ARTIFACTS, "galaxy.log"))


def test_jobs_run_the_package_under_test(galaxy):
    """The environment Galaxy's dependency resolver gives the jobs (deps/nesscan/VERSION/env.sh)
    imports the nesscan this test session tests, not another checkout's."""
    env_sh = os.path.join(galaxy.work, "deps", "nesscan", gs.tool_version_token(), "env.sh")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(["bash", "-c", f'. "{env_sh}" && command -v nesscan && python -c '
                          '"import nesscan, os; print(os.path.dirname(os.path.dirname(os.path.abspath(nesscan.__file__))))"'],
                         capture_output=True, text=True, env=clean)
    assert out.returncode == 0, out.stderr
    exe, pkg = out.stdout.split()
    assert exe == os.path.join(gs.job_venv(), "bin", "nesscan")
    assert os.path.realpath(pkg) == os.path.realpath(gs.nesscan_package_dir())


TESTS_PER_RUNNER = 4  # a tool with more <test>s runs on several runners (galaxy-tool-test --page-size)


class ToolTestRuns:
    """`galaxy-tool-test` runners (.ci/galaxy/tool_test.py: polling once a second), all started at
    once, one test case at a time each: one runner per tool, or per page of TESTS_PER_RUNNER tests
    for a tool with more, so that the queue's tail is not one tool's tests one after the other
    while a core idles. Galaxy's local runner works through the queue two jobs at a time, so more
    parallel cases only cost CPU. Each pytest case waits for its tool's reports."""

    def __init__(self, server, canary: str):
        self.server = server
        self.out_dir = os.path.join(ARTIFACTS, "tool-tests")
        shutil.rmtree(self.out_dir, ignore_errors=True)
        os.makedirs(self.out_dir)
        self.procs, self.logs, self.reports, self.started = {}, {}, {}, time.time()
        self.runners: dict[str, list[str]] = {}  # tool id -> its runners' names
        for tool_id, _, _ in tool_xmls():
            n = sum(1 for case in CASES if case[0] == tool_id)
            pages = -(-n // TESTS_PER_RUNNER) if n > TESTS_PER_RUNNER else 1
            for page in range(pages):
                name = tool_id if pages == 1 else f"{tool_id}.page{page}"
                cmd = server.tool_test_command() + [
                    "-u", server.url, "-k", server.user_key, "-a", server.admin_key, "-t", tool_id,
                    "-j", os.path.join(self.out_dir, f"{name}.json"), "-o", os.path.join(self.out_dir, name),
                    "--with-reference-data", "--history-per-test-case", "--parallel-tests", "1"]
                if pages > 1:
                    cmd += ["--page-size", str(TESTS_PER_RUNNER), "--page-number", str(page)]
                self.runners.setdefault(tool_id, []).append(name)
                self.logs[name] = open(os.path.join(self.out_dir, f"{name}.log"), "w")
                self.procs[name] = subprocess.Popen(cmd, cwd=server.work, env=server.env(), stdout=self.logs[name],
                                                    stderr=subprocess.STDOUT)
        # queued beside the tool tests, checked by test_dataset_name_and_sequence_id_with_shell_code
        try:
            self.hostile = submit_hostile_run(server, canary)
        except BaseException:
            self.stop()
            raise

    def report(self, tool_id: str) -> dict:
        """The tool's test results, its runners' reports merged (a test's id keeps its index)."""
        if tool_id not in self.reports:
            merged: dict = {"tests": []}
            for name in self.runners[tool_id]:
                proc = self.procs[name]
                try:
                    proc.wait(timeout=max(1.0, TOOL_TEST_TIMEOUT - (time.time() - self.started)))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                self.logs[name].close()
                try:
                    with open(os.path.join(self.out_dir, f"{name}.json")) as fh:
                        merged["tests"] += json.load(fh).get("tests", [])
                except (OSError, ValueError):
                    merged["error"] = merged.get("error", "") + self._tail(name)
            self.reports[tool_id] = merged
        return self.reports[tool_id]

    def _tail(self, name: str, n: int = 40) -> str:
        with open(os.path.join(self.out_dir, f"{name}.log"), errors="replace") as fh:
            return f"[{name}]\n" + "".join(fh.readlines()[-n:])

    def log_tail(self, tool_id: str, n: int = 40) -> str:
        return "".join(self._tail(name, n) for name in self.runners[tool_id])

    def stop(self):
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.logs[name].close()


@pytest.fixture(scope="module")
def workflow_run(galaxy) -> dict:
    """The shipped workflow imported and invoked on the example proteins at once, so that its jobs
    share Galaxy's queue with the tool tests' (test_workflow_runs_in_galaxy waits for them)."""
    return submit_workflow_run(galaxy)


@pytest.fixture(scope="module")
def tool_tests(galaxy, workflow_run, tmp_path_factory):
    # evaluate's test 2 passes `rm -rf /tmp/nesscan_canary_dir` as a run name: it must survive
    victim = "/tmp/nesscan_canary_dir"
    os.makedirs(victim, exist_ok=True)
    if os.path.exists("/tmp/nesscan_injected"):  # left by an earlier, broken run
        os.remove("/tmp/nesscan_injected")
    runs = ToolTestRuns(galaxy, canary=str(tmp_path_factory.mktemp("hostile") / "canary"))
    yield runs
    runs.stop()


def _describe_failure(result: dict) -> str:
    data = result.get("data", {})
    job = data.get("job") or {}
    parts = [f"status: {data.get('status')}"]
    for key in ("problem_log",):
        if data.get(key):
            parts.append(f"{key}:\n{data[key]}")
    for key in ("command_line", "tool_stdout", "tool_stderr", "exit_code"):
        if job.get(key) not in (None, ""):
            parts.append(f"{key}:\n{job[key]}")
    return "\n".join(parts)


@pytest.mark.parametrize("tool_id, index, about", CASES, ids=[f"{t}-{i}" for t, i, _ in CASES])
def test_tool_test_case(tool_tests, tool_id, index, about):
    """One <test> of one tool XML, run by galaxy-tool-test against the live server."""
    report = tool_tests.report(tool_id)
    results = [t for t in report.get("tests", []) if t.get("id", "").rsplit("-", 1)[-1] == str(index)]
    assert results, (f"no result for {tool_id} test {index} ({about}); galaxy-tool-test said:\n"
                     + report.get("error", tool_tests.log_tail(tool_id)))
    result = results[0]
    assert result["data"].get("status") == "success", f"{tool_id} test {index} ({about}):\n{_describe_failure(result)}"


def test_galaxy_sees_every_tool_test(galaxy):
    """The server parsed the same tests as the parametrisation above (macros included)."""
    for tool_id, _, _ in tool_xmls():
        tests = galaxy.api("GET", f"tools/{tool_id}/test_data")
        assert len(tests) == sum(1 for t, _, _ in CASES if t == tool_id), tool_id


def test_shell_code_in_tool_test_parameters_ran_nothing(tool_tests):
    """nesscan_predict test 5 names a structure `x'; ...; touch /tmp/nesscan_injected; ...`;
    nesscan_evaluate test 2 has the run name `demo'; rm -rf /tmp/nesscan_canary_dir; ...`;
    nesscan_explain test 3 reads a protein whose ID is `x';$(touch${IFS}/tmp/nesscan_injected)...`
    and whose title is `; rm -rf /tmp/nesscan_canary_dir; ...`."""
    for tool_id in ("nesscan_predict", "nesscan_evaluate", "nesscan_explain"):
        report = tool_tests.report(tool_id)
        assert report.get("tests"), f"{tool_id}: no tool-test results"
    assert not os.path.exists("/tmp/nesscan_injected")
    assert os.path.isdir("/tmp/nesscan_canary_dir")


# ------------------------------------------------------------------------------ hostile names

HOSTILE_SEQ = ("MSEQNNTEMTFQIQRIYTKDISFEAPNAPHVFQKDWLEVNLSELALKLAGLDINKTEAEKLPAQMKSVSGDGNKLAAAIRESEQ"
               "NRIDLLVESLRAQLEEKLGKE")


def submit_hostile_run(galaxy, canary: str) -> dict:
    """Upload a FASTA named like a shell command, holding a protein whose ID is one, and queue
    NES scan on it (Galaxy runs the job once the upload is done)."""
    evil = f"x'; touch {canary}; echo '$(touch {canary})`touch {canary}`"
    evil_id = f"id';$(touch${{IFS}}{canary})`touch${{IFS}}{canary}`|"  # no blanks: a FASTA ID is one word
    history = galaxy.api("POST", "histories", key=galaxy.user_key, payload={"name": "hostile names"})
    fetch = galaxy.api("POST", "tools/fetch", key=galaxy.user_key, payload={
        "history_id": history["id"],
        "targets": [{"destination": {"type": "hdas"}, "elements": [{
            "src": "pasted", "paste_content": f">{evil_id} {evil}\n{HOSTILE_SEQ}\n", "ext": "fasta",
            "name": evil + ".fasta"}]}]})
    run = galaxy.api("POST", "tools", key=galaxy.user_key, payload={
        "tool_id": "nesscan_predict", "history_id": history["id"],
        "inputs": {"input": {"src": "hda", "id": fetch["outputs"][0]["id"]}}})
    return {"evil": evil, "evil_id": evil_id, "canary": canary, "upload_job": fetch["jobs"][0]["id"],
            "job": run["jobs"][0]["id"],
            "outputs": run["outputs"]}


def _wait_job(galaxy, job_id: str, timeout: float = TOOL_TEST_TIMEOUT) -> dict:
    t0 = time.time()
    while True:
        job = galaxy.api("GET", f"jobs/{job_id}?full=true")
        if job["state"] in ("ok", "error", "failed", "deleted", "paused"):
            return job
        assert time.time() - t0 < timeout, f"job {job_id} still {job['state']} after {timeout:.0f} s"
        time.sleep(3)


def _download(galaxy, dataset_id: str) -> str:
    import urllib.request

    req = urllib.request.Request(f"{galaxy.url}/api/datasets/{dataset_id}/display?preview=false")
    req.add_header("x-api-key", galaxy.user_key)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def test_dataset_name_and_sequence_id_with_shell_code(galaxy, tool_tests):
    """A dataset named like a shell command, holding a protein whose ID is one, runs as data."""
    run = tool_tests.hostile
    upload = _wait_job(galaxy, run["upload_job"])
    assert upload["state"] == "ok", upload
    job = _wait_job(galaxy, run["job"])
    assert job["state"] == "ok", _describe_failure({"data": {"status": job["state"], "job": job}})
    assert run["evil"] not in (job.get("command_line") or "")
    assert not os.path.exists(run["canary"]), "shell code in a dataset name or sequence ID was executed"
    proteins = [o for o in run["outputs"] if o["output_name"] == "proteins"][0]
    assert f"\n{run['evil_id']}\t{len(HOSTILE_SEQ)}\t" in _download(galaxy, proteins["id"])


# ------------------------------------------------------------------------------ the workflow

WORKFLOW = os.path.join(TOOLS_DIR, "workflows", "nesscan-scan-and-evaluate.gxwf.yml")
WORKFLOW_STEPS = ["nesscan_embed", "nesscan_window_score", "nesscan_fuse", "nesscan_evaluate", "nesscan_predict"]


def test_workflow_is_shipped_and_listed():
    """The gxformat2 workflow chains embed -> window-score -> fuse -> evaluate (and NES scan), uses
    only tools of this suite, and the suite in .shed.yml names it."""
    import yaml

    with open(WORKFLOW, encoding="utf-8") as fh:
        wf = yaml.safe_load(fh)
    assert wf["class"] == "GalaxyWorkflow"
    assert [st["tool_id"] for st in wf["steps"].values()] == WORKFLOW_STEPS
    assert {st["tool_id"] for st in wf["steps"].values()} <= {t for t, _, _ in tool_xmls()}
    steps = wf["steps"]
    assert steps["window_score"]["in"]["embeddings"] == "embed/embeddings"
    assert steps["fuse"]["in"]["windows"] == "window_score/windows"
    assert steps["evaluate"]["in"]["proteins"] == "fuse/proteins"
    with open(os.path.join(TOOLS_DIR, ".shed.yml"), encoding="utf-8") as fh:
        shed = yaml.safe_load(fh)
    assert os.path.relpath(WORKFLOW, TOOLS_DIR) in shed["suite"]["long_description"]


def _upload(galaxy, history_id: str, path: str, ext: str) -> str:
    with open(path, encoding="utf-8") as fh:
        content = fh.read()
    fetch = galaxy.api("POST", "tools/fetch", key=galaxy.user_key, payload={
        "history_id": history_id,
        "targets": [{"destination": {"type": "hdas"}, "elements": [{
            "src": "pasted", "paste_content": content, "ext": ext, "name": os.path.basename(path)}]}]})
    return fetch["outputs"][0]["id"]


def _wait_invocation_outputs(galaxy, invocation_id: str, timeout: float = TOOL_TEST_TIMEOUT) -> dict:
    """label -> dataset id of every workflow output, once all are 'ok' (fails on an error state)."""
    t0 = time.time()
    while True:
        inv = galaxy.api("GET", f"invocations/{invocation_id}", key=galaxy.user_key)
        assert inv["state"] not in ("failed", "cancelled", "cancelling"), inv
        outputs = {label: o["id"] for label, o in (inv.get("outputs") or {}).items()}
        if inv["state"] in ("scheduled", "completed") and outputs:  # 26.x: completed once its jobs are done
            states = {label: galaxy.api("GET", f"datasets/{i}", key=galaxy.user_key)["state"]
                      for label, i in outputs.items()}
            bad = {k: v for k, v in states.items() if v in ("error", "failed_metadata", "paused", "deleted")}
            if bad:
                jobs = galaxy.api("GET", f"jobs?invocation_id={invocation_id}&view=admin_job_list",
                                  key=galaxy.admin_key)
                details = [galaxy.api("GET", f"jobs/{j['id']}?full=true") for j in jobs if j["state"] != "ok"]
                pytest.fail(f"workflow outputs failed: {bad}; jobs: "
                            + "; ".join(f"{d['tool_id']}: {(d.get('stderr') or '')[-800:]}" for d in details))
            if all(v == "ok" for v in states.values()):
                return outputs
        assert time.time() - t0 < timeout, f"invocation {invocation_id} not done after {timeout:.0f} s: {inv['state']}"
        time.sleep(3)


def submit_workflow_run(galaxy) -> dict:
    """Import the shipped workflow and invoke it on the example proteins with their labels and NES
    spans (the uploads are not waited for: the invocation waits for its inputs)."""
    import yaml

    with open(WORKFLOW, encoding="utf-8") as fh:
        wf = yaml.safe_load(fh)
    stored = galaxy.api("POST", "workflows", key=galaxy.user_key, payload={"workflow": wf})
    history = galaxy.api("POST", "histories", key=galaxy.user_key, payload={"name": "nesscan workflow"})
    data = os.path.join(TOOLS_DIR, "test-data")
    inputs = {
        "proteins": _upload(galaxy, history["id"], os.path.join(data, "example.fasta"), "fasta"),
        "labels": _upload(galaxy, history["id"], os.path.join(data, "example_labels.tsv"), "tabular"),
        "nes_spans": _upload(galaxy, history["id"], os.path.join(data, "example_nes.tsv"), "tabular"),
    }
    invocation = galaxy.api("POST", f"workflows/{stored['id']}/invocations", key=galaxy.user_key, payload={
        # the steps' tool_state lists only what differs from the tools' defaults: Galaxy fills in the rest
        "history_id": history["id"], "inputs_by": "name", "allow_tool_state_corrections": True,
        "inputs": {k: {"src": "hda", "id": v} for k, v in inputs.items()}})
    return {"workflow": wf, "invocation": invocation}


def test_workflow_runs_in_galaxy(galaxy, workflow_run):
    """The shipped workflow, imported into the real Galaxy and invoked on the example proteins with
    their labels and NES spans: every step runs; the step-by-step tables equal the one-click NES
    scan's; the evaluation finds the planted NESs."""
    wf, invocation = workflow_run["workflow"], workflow_run["invocation"]
    data = os.path.join(TOOLS_DIR, "test-data")
    outputs = _wait_invocation_outputs(galaxy, invocation["id"])
    assert set(outputs) == set(wf["outputs"])

    proteins = _download(galaxy, outputs["proteins_table"])
    candidates = _download(galaxy, outputs["candidates_table"])
    # step by step == one click, to the byte
    assert proteins == _download(galaxy, outputs["one_click_proteins"])
    assert candidates == _download(galaxy, outputs["one_click_candidates"])
    rows = [ln.split("\t") for ln in proteins.splitlines()]
    assert rows[0][:3] == ["id", "length", "score"]
    assert [r[0] for r in rows[1:]] == [ln[1:].split()[0] for ln in open(os.path.join(data, "example.fasta"))
                                       if ln.startswith(">")]
    assert "demo_PKIa_NES\t1\t" in candidates
    assert _download(galaxy, outputs["candidates_gff3"]).startswith("##gff-version 3")
    metrics = json.loads(_download(galaxy, outputs["metrics"]))
    auc = metrics["protein_level"]["all"]["scores"]["score"]["roc_auc"]
    assert 0.5 < auc <= 1.0, auc
    loc = metrics["localisation"]["overall"]
    assert loc["n_proteins"] >= 1 and 0.0 <= loc["hit@5"] <= 1.0


# ------------------------------------------------------------------------------ the form in a browser

PREDICT_FORM_LABELS = ["NES scan", "Protein sequences", "Embedder and classifier", "Classifier",
                       "Candidates per protein", "E-value cutoff for high-confidence calls", "Structure models",
                       "Advanced options"]


def _chromium() -> str | None:
    return os.environ.get("NESSCAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_cmd(exe: str, profile: str) -> list[str]:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1100",
            "--virtual-time-budget=30000", "--hide-scrollbars"]


def test_predict_form_in_chromium(galaxy, tmp_path):
    """Galaxy's own client renders the NES scan form; screenshot kept as a CI artifact."""
    exe = _chromium()
    if not exe:
        unavailable("chromium not found (apt-get install -y chromium, or set NESSCAN_CHROMIUM)")
    url = f"{galaxy.url}/?tool_id=nesscan_predict"
    png = os.path.join(ARTIFACTS, "nesscan_predict_form.png")
    dom_path = os.path.join(ARTIFACTS, "nesscan_predict_form.html")
    if os.path.exists(png):
        os.remove(png)
    # the API's form model: every parameter the page should show
    history = galaxy.api("POST", "histories", key=galaxy.user_key, payload={"name": "form"})
    form = galaxy.api("GET", f"tools/nesscan_predict/build?history_id={history['id']}", key=galaxy.user_key)
    labels_api = set()

    def walk(inputs):
        for i in inputs:
            labels_api.update(x for x in (i.get("label"), i.get("title"), (i.get("test_param") or {}).get("label")) if x)
            walk(i.get("inputs", []))
            for case in i.get("cases", []):
                walk(case.get("inputs", []))

    walk(form["inputs"])
    assert {"Protein sequences", "Embedder and classifier", "Candidates per protein"} <= labels_api, labels_api

    dom = ""
    for attempt in range(3):  # the client bundle can be slow to boot on a loaded machine
        out = subprocess.run(_chromium_cmd(exe, str(tmp_path / f"dom{attempt}")) + ["--dump-dom", url],
                             capture_output=True, text=True, timeout=180)
        dom = out.stdout
        if all(label in dom for label in PREDICT_FORM_LABELS):
            break
    with open(dom_path, "w") as fh:
        fh.write(dom)
    missing = [label for label in PREDICT_FORM_LABELS if label not in dom]
    assert not missing, f"not on the rendered page: {missing} (DOM saved to {dom_path})"

    out = subprocess.run(_chromium_cmd(exe, str(tmp_path / "shot")) + [f"--screenshot={png}", url],
                         capture_output=True, text=True, timeout=180)
    assert os.path.exists(png), out.stderr[-2000:]
    with open(png, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (width, height) == (1400, 1100)
    assert os.path.getsize(png) > 30_000, "the screenshot looks blank"
