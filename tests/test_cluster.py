"""scan, check and dupes on a real Dask cluster: a scheduler and workers on 127.0.0.1.

Nothing is faked: ``dask scheduler`` and ``dask worker`` run from this
interpreter's bin directory, each in a session of its own, and are stopped
by process group. ``make test`` installs the ``dask`` extra, so these run
everywhere the suite runs: without ``distributed`` they fail, never skip.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import distributed  # no importorskip: a missing extra is a failure
import pytest
from conftest import ENV, PARHASH, Tree, no_traceback, records, run

import parhash

BIN = Path(sys.executable).parent
# Time for a scheduler and its workers to come up, with every core shared.
START_SECONDS = 30


class Cluster:
    """A ``dask scheduler`` and its workers, as processes of their own."""

    def __init__(self, directory: Path, *, env: dict[str, str] | None = None,
                 scheduler: Sequence[str] | None = None, tls: Sequence[str] = ()) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = str(directory / "scheduler.json")
        self.env = {**ENV, **(env or {})}
        self.tls = list(tls)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        command = scheduler or [str(BIN / "dask"), "scheduler"]
        self._start("scheduler", [*command, "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", self.file, *self.tls])

    def _start(self, name: str, command: Sequence[str], prefix: Sequence[str] = ()) -> None:
        log = self.logs[name] = self.dir / f"{name}.log"
        with open(log, "wb") as out:
            self.processes[name] = subprocess.Popen(
                [*prefix, *command], stdout=out, stderr=subprocess.STDOUT, env=self.env,
                cwd=self.dir, start_new_session=True,
            )

    def start_worker(self, name: str, prefix: Sequence[str] = ()) -> None:
        self._start(name, [str(BIN / "dask"), "worker", "--scheduler-file", self.file,
                           "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                           "--name", name, "--local-directory", str(self.dir / name),
                           *self.tls], prefix)

    def address(self) -> str:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                return str(json.loads(Path(self.file).read_text())["address"])
            self.fail_if_dead()
            time.sleep(0.05)
        self.fail("no scheduler file")

    def client(self, **kwargs: Any) -> distributed.Client:
        self.address()
        return distributed.Client(scheduler_file=self.file, timeout=START_SECONDS,
                                  set_as_default=False, **kwargs)

    def wait_for(self, workers: int, client: distributed.Client) -> None:
        deadline = time.monotonic() + START_SECONDS
        while len(client.nthreads()) != workers:
            self.fail_if_dead()
            if time.monotonic() > deadline:
                self.fail(f"{len(client.nthreads())} workers, not {workers}")
            time.sleep(0.05)

    def fail_if_dead(self) -> None:
        for name, p in self.processes.items():
            if p.poll() is not None:
                self.fail(f"{name} exited with status {p.returncode}")

    def fail(self, why: str) -> Any:
        logs = "\n".join(f"--- {name}\n{log.read_text(errors='replace')[-3000:]}"
                         for name, log in self.logs.items() if log.exists())
        pytest.fail(f"the test cluster did not start: {why}\n{logs}")

    def stop(self, name: str) -> None:
        p = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        # The group's other processes (the worker under a nanny) end with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in [n for n in self.processes if n != "scheduler"]:
            self.stop(name)
        if "scheduler" in self.processes:
            self.stop("scheduler")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_worker("w1")
        c.start_worker("w2")
        with c.client() as client:
            c.wait_for(2, client)
        yield c
    finally:
        c.stop_all()


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[distributed.Client]:
    import cloudpickle

    # The probes below run on the scheduler and workers, which can't import this module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with cluster.client() as c:
        yield c


def dask(cluster: Cluster) -> list[str]:
    return ["--executor", "dask", "--scheduler-file", cluster.file]


def _same_run(args: Sequence[str | bytes], cluster: Cluster, cwd: Path,
              input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``args`` on the local pool and on the cluster: the same stdout, the same
    stderr lines (which come in order of arrival), the same status."""
    local = run([*args, "-j", "2"], cwd=cwd, input=input)
    remote = run([*args, *dask(cluster)], cwd=cwd, input=input)
    no_traceback(remote.stderr)
    assert remote.stdout == local.stdout
    assert sorted(remote.stderr.splitlines()) == sorted(local.stderr.splitlines())
    assert remote.returncode == local.returncode
    return remote


def _plant_duplicates(tree: Tree) -> None:
    for i in range(3):
        tree.add(b"copies/%d" % i, b"the same contents\n" * 100)
        tree.add(b"copies/new\nline %d" % i, tree.files[b"plain.txt"])


@pytest.mark.parametrize("fmt", [[], ["--tag"], ["--json"], ["--csv"], ["-z"]])
def test_scan_writes_the_local_pool_s_bytes_in_every_format(
        cluster: Cluster, tree: Tree, fmt: list[str]) -> None:
    done = _same_run(["scan", "--sort", "-a", "md5", *fmt, "tree"], cluster, tree.root.parent)
    for data in tree.files.values():
        assert hashlib.md5(data).hexdigest().encode() in done.stdout


def test_check_and_dupes_answer_as_the_local_pool(cluster: Cluster, tree: Tree) -> None:
    _plant_duplicates(tree)
    cwd = tree.root.parent
    manifest = run(["scan", "--sort", "-a", "sha256", "-o", "SUMS", "tree"], cwd=cwd)
    assert manifest.returncode == 0, manifest.stderr
    (tree.root / "plain.txt").write_bytes(b"changed")
    os.unlink(tree.root / "with space")
    done = _same_run(["check", "SUMS"], cluster, cwd)
    assert b"tree/plain.txt: FAILED\n" in done.stdout
    assert done.returncode == 1
    _same_run(["check", "--json", "SUMS"], cluster, cwd)
    done = _same_run(["dupes", "tree"], cluster, cwd)
    assert b"tree/copies/0\n" in done.stdout
    _same_run(["dupes", "--json", "-a", "md5", "tree"], cluster, cwd)


def test_standard_input_progress_bar_and_summary_as_locally(cluster: Cluster, tree: Tree) -> None:
    # '-' is read by the client; the bar and the summary count what the
    # cluster's tasks did, as they count the pool's.
    cwd = tree.root.parent
    done = run(["scan", "-a", "md5", "--progress", "--summary", "tree", "-", *dask(cluster)],
               cwd=cwd, input=b"from standard input")
    no_traceback(done.stderr)
    assert done.returncode == 0, done.stderr
    assert f"{hashlib.md5(b'from standard input').hexdigest()}  -\n".encode() in done.stdout
    files = len(tree.files) + 1
    assert b"hashing" in done.stderr
    assert f"parhash: hashed {files} files, ".encode() in done.stderr
    manifest = run(["scan", "--sort", "-a", "md5", "-o", "SUMS", "tree"], cwd=cwd)
    assert manifest.returncode == 0
    checked = run(["check", "--summary", "SUMS", *dask(cluster)], cwd=cwd)
    assert checked.returncode == 0, checked.stderr
    assert f": {len(tree.files)} OK, 0 FAILED\n".encode() in checked.stderr


def _holders(path: Path) -> list[int]:
    """The processes that have ``path`` open."""
    found = []
    target = str(path)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        found.append(int(pid))
                        break
    return found


def _wait_for_reader(fifo: Path, timeout: float = 20) -> int:
    """Open ``fifo`` for writing once a reader has it open; the descriptor."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
        time.sleep(0.01)
    pytest.fail(f"no one opened {fifo}")


def _read_line(p: subprocess.Popen[bytes], timeout: float = 20) -> bytes:
    assert p.stdout is not None
    ready = select.select([p.stdout], [], [], timeout)[0]
    assert ready, "no output"
    return os.read(p.stdout.fileno(), 1 << 16)


def _blocked_scan(cluster: Cluster, cwd: Path, fifo: Path, names: Sequence[str],
                  *args: str) -> tuple[subprocess.Popen[bytes], int]:
    """A scan of ``fifo`` first, alone in its task (the list of names that follows
    waits on a pipe), then of ``names``; and the FIFO's writing end: its task
    runs until that is closed."""
    p = subprocess.Popen([*PARHASH, "scan", "-a", "md5", str(fifo), "--files-from", "-",
                          *args, *dask(cluster)], cwd=cwd, env=ENV, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdin is not None
    fd = _wait_for_reader(fifo)  # its task is running: the rest comes next
    p.stdin.write(b"".join(os.fsencode(n) + b"\n" for n in names))
    p.stdin.close()
    p.stdin = None  # for communicate()
    return p, fd


def _wide_tree(root: Path, dirs: int = 40, files: int = 5) -> dict[str, bytes]:
    contents = {}
    for d in range(dirs):
        (root / f"d{d:02}").mkdir(parents=True)
        for f in range(files):
            path = root / f"d{d:02}" / f"f{f}"
            data = f"{d} {f}\n".encode() * (f + 1)
            path.write_bytes(data)
            contents[f"{path.relative_to(root.parent)}"] = data
    return contents


def test_results_stream_before_the_last_task_ends(cluster: Cluster, tmp_path: Path) -> None:
    files = _wide_tree(tmp_path / "wide")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    p, fd = _blocked_scan(cluster, tmp_path, fifo, ["wide"])
    try:
        first = _read_line(p)
        assert first.endswith(b"\n") and b"  wide/d" in first
        # The FIFO's task has not ended: it waits for the end of its data.
        assert p.poll() is None
        os.write(fd, b"at last")
        os.close(fd)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    lines = (first + out).splitlines()
    assert p.returncode == 0, err
    assert f"{hashlib.md5(b'at last').hexdigest()}  {fifo}".encode() in lines
    assert len(lines) == len(files) + 1 == len(set(lines))


def _our_tasks(dask_scheduler: Any) -> int:
    return sum(1 for key in dask_scheduler.tasks if "run_packed" in str(key))


def test_the_scheduler_never_holds_more_than_the_window(
        cluster: Cluster, client: distributed.Client, tmp_path: Path) -> None:
    files = _wide_tree(tmp_path / "wide", dirs=120, files=2)
    held: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            held.append(client.run_on_scheduler(_our_tasks))

    watcher = threading.Thread(target=watch)
    executor = parhash.DaskExecutor(client=client, window=4)
    watcher.start()
    try:
        # One directory a task, to have many.
        results = list(parhash.scan([str(tmp_path / "wide")], algos=("md5",),
                                    executor=executor))
    finally:
        stop.set()
        watcher.join()
    executor.close()
    assert sorted(r.path for r in results) == sorted(str(tmp_path / f) for f in files)
    assert all(r.digests["md5"] == hashlib.md5(files[str(Path(r.path).relative_to(tmp_path))]
                                               ).hexdigest() for r in results)
    assert len(held) > 3 and max(held) <= 4, held
    assert client.status == "running"  # a client given is left open
    _assert_idle(client)  # every future released


def _assert_idle(client: distributed.Client, seconds: float = 2) -> None:
    """The scheduler forgets our tasks within ``seconds`` (releases are messages)."""
    deadline = time.monotonic() + seconds
    while client.run_on_scheduler(_our_tasks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.run_on_scheduler(_our_tasks) == 0


def _worker_pids(client: distributed.Client) -> dict[str, int]:
    return {a: int(pid) for a, pid in client.run(os.getpid).items()}


def test_a_worker_killed_mid_run_costs_no_file_and_none_twice(
        cluster: Cluster, client: distributed.Client, tmp_path: Path) -> None:
    files = _wide_tree(tmp_path / "wide")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    p, fd = _blocked_scan(cluster, tmp_path, fifo, ["wide"])
    try:
        workers = set(_worker_pids(client).values())
        (victim,) = set(_holders(fifo)) & workers
        os.kill(victim, signal.SIGKILL)
        # Dask runs the FIFO's task again, on the other worker or a new one.
        deadline = time.monotonic() + 30
        while not set(_holders(fifo)) - {victim, os.getpid()}:
            assert time.monotonic() < deadline, "the FIFO's task was not run again"
            time.sleep(0.02)
        os.write(fd, b"again")
        os.close(fd)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    no_traceback(err)
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert f"{hashlib.md5(b'again').hexdigest()}  {fifo}".encode() in lines
    assert len(lines) == len(files) + 1 == len(set(lines))
    cluster.wait_for(2, client)  # the nanny's new worker


def _set_allowed_failures(n: int, dask_scheduler: Any = None) -> int:
    before = int(dask_scheduler.allowed_failures)
    dask_scheduler.allowed_failures = n
    return before


def test_a_file_that_keeps_killing_workers_is_an_error_and_the_rest_is_done(
        cluster: Cluster, client: distributed.Client, tmp_path: Path) -> None:
    files = _wide_tree(tmp_path / "wide", dirs=10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    stop = threading.Event()
    killed: list[int] = []

    def kill_its_readers() -> None:
        # Whoever opens the FIFO dies: the task that reads it kills its worker each time.
        # The writing end stays open once a reader came, so that no reader ever
        # sees the end of the FIFO (a retry opening it between a kill and a
        # close would read it as empty).
        fd = -1
        try:
            while not stop.is_set():
                if fd < 0:
                    try:
                        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    except OSError:
                        time.sleep(0.01)
                        continue
                for pid in set(_holders(fifo)) - {os.getpid()}:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                time.sleep(0.01)
        finally:
            if fd >= 0:
                os.close(fd)

    before = client.run_on_scheduler(_set_allowed_failures, 0)
    killer = threading.Thread(target=kill_its_readers)
    killer.start()
    try:
        done = run(["scan", "-a", "md5", "--sort", "wide", str(fifo), *dask(cluster)],
                   cwd=tmp_path)
    finally:
        stop.set()
        killer.join()
        client.run_on_scheduler(_set_allowed_failures, before)
    no_traceback(done.stderr)
    assert done.returncode == 1
    assert done.stderr == (f"parhash: {fifo}: worker process died while hashing this file\n"
                           .encode())
    assert len(set(killed)) == 2  # the task, then its item alone
    expected = [f"{hashlib.md5(files[name]).hexdigest()}  {name}\n".encode()
                for name in sorted(files)]
    assert records(done.stdout) == expected
    cluster.wait_for(2, client)


def test_ctrl_c_cancels_the_tasks_and_exits_130_quietly(
        cluster: Cluster, client: distributed.Client, tmp_path: Path) -> None:
    _wide_tree(tmp_path / "wide")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    p, fd = _blocked_scan(cluster, tmp_path, fifo, ["wide"], "-o", "OUT")
    try:
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        p.kill()
        os.close(fd)  # the FIFO's task still runs on its worker: this ends it
    assert p.returncode == 130, err
    assert err == b""
    assert not (tmp_path / "OUT").exists()
    assert [n for n in os.listdir(tmp_path) if "OUT" in n] == []
    _assert_idle(client)


def test_an_unreachable_scheduler_is_one_line_and_exit_2_within_the_timeout(
        tmp_path: Path) -> None:
    start = time.monotonic()
    done = run(["scan", ".", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1",
                "--connect-timeout", "1"], cwd=tmp_path)
    assert time.monotonic() - start < 8
    assert done.returncode == 2
    assert done.stderr.startswith(b"parhash: cannot reach the scheduler tcp://127.0.0.1:1 "
                                  b"within 1 s")
    assert done.stderr.count(b"\n") == 1 and done.stdout == b""


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "nonsense://x"], b"parhash: bad scheduler address nonsense://x"),
    (["--scheduler-file", "missing.json"], b"parhash: no scheduler file missing.json\n"),
    ([], b"parhash: --executor dask needs --scheduler ADDRESS, --scheduler-file FILE or "
         b"PARHASH_SCHEDULER\nTry 'parhash scan --help' for more information.\n"),
    (["--scheduler", "tcp://127.0.0.1:1", "-j", "2"],
     b"parhash: -j and --executor dask exclude each other\n"),
])
def test_bad_addresses_are_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                               message: bytes) -> None:
    done = run(["scan", ".", "--executor", "dask", *args], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    no_traceback(done.stderr)


def test_scheduler_options_without_the_dask_executor_are_a_usage_error(tmp_path: Path) -> None:
    done = run(["check", "--scheduler", "tcp://127.0.0.1:1"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (b"parhash: --scheduler needs --executor dask\n"
                           b"Try 'parhash check --help' for more information.\n")


def test_parhash_scheduler_is_the_default_address(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    env = {**ENV, "PARHASH_SCHEDULER": cluster.address()}
    done = subprocess.run([*PARHASH, "scan", "-a", "md5", "a", "--executor", "dask"],
                          cwd=tmp_path, env=env, capture_output=True, check=False)
    assert (done.returncode, done.stdout) == (0, f"{hashlib.md5(b'a').hexdigest()}  a\n"
                                              .encode()), done.stderr


def _venv_without_parhash(where: Path) -> Path:
    """A venv that sees this one's packages, distributed's included, but not parhash."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    own = where / "lib" / version / "site-packages"
    (own / "shared.pth").write_text(f"{purelib}\n")
    # parhash, installed there or editable, is shadowed: the venv's own
    # site-packages come first on sys.path, before what the .pth adds.
    (own / "parhash").mkdir()
    (own / "parhash" / "__init__.py").write_text(
        "raise ImportError('No module named parhash (not installed here)')\n")
    python = where / "bin" / "python"
    found = subprocess.run([python, "-c", "import parhash"], cwd=where, capture_output=True,
                           check=False)
    if found.returncode == 0:
        pytest.fail("the venv without parhash sees parhash")
    return python


def test_a_scheduler_without_parhash_is_named_and_exit_2(tmp_path: Path) -> None:
    python = _venv_without_parhash(tmp_path / "venv")
    skewed = Cluster(tmp_path / "skewed",
                     scheduler=[str(python), "-m", "distributed.cli.dask_scheduler"])
    try:
        address = skewed.address()
        done = run(["scan", ".", "--executor", "dask", "--scheduler", address], cwd=tmp_path)
    finally:
        skewed.stop_all()
    assert done.returncode == 2
    assert done.stderr.startswith(f"parhash: the scheduler at {address} can't run parhash "
                                  .encode()), done.stderr
    assert done.stderr.endswith(f"install parhash {parhash.__version__} beside it\n".encode())


def test_a_root_a_worker_cannot_see_is_named_and_exit_2(
        cluster: Cluster, client: distributed.Client, tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to hide a directory from a worker")
    hidden = tmp_path / "hidden"
    (hidden / "tree").mkdir(parents=True)
    (hidden / "tree" / "f").write_bytes(b"f")
    # Its own mount namespace, with an empty tmpfs over the directory.
    cluster.start_worker("blind", ["unshare", "--mount", "--propagation", "private", "sh",
                                   "-c", f'mount -t tmpfs none "{hidden}" && exec "$@"', "sh"])
    try:
        cluster.wait_for(3, client)
        done = run(["scan", "tree", *dask(cluster)], cwd=hidden)
    finally:
        cluster.stop("blind")
    assert done.returncode == 2
    assert done.stderr.startswith(b"parhash: worker blind (tcp://127.0.0.1:"), done.stderr
    assert b") can't see " in done.stderr and done.stderr.count(b"\n") == 1
    cluster.wait_for(2, client)


def _certificates(where: Path) -> dict[str, str]:
    """A throwaway CA, and a key and certificate it signed for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed for the TLS test")
    where.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=parhash test CA", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "node.key", "-out", "node.csr")
    (where / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "ext", "-out", "node.pem")
    return {name: str(where / name) for name in ("ca.pem", "node.pem", "node.key")}


def test_tls_with_a_throwaway_ca(tmp_path: Path) -> None:
    certs = _certificates(tmp_path / "certs")
    tls = ["--tls-ca-file", certs["ca.pem"], "--tls-cert", certs["node.pem"],
           "--tls-key", certs["node.key"]]
    secure = Cluster(tmp_path / "tls", tls=[*tls, "--protocol", "tls"])
    try:
        address = secure.address()
        assert address.startswith("tls://127.0.0.1:")
        secure.start_worker("w1")
        security = distributed.Security(
            tls_ca_file=certs["ca.pem"], tls_client_cert=certs["node.pem"],
            tls_client_key=certs["node.key"], require_encryption=True)
        with secure.client(security=security) as c:
            secure.wait_for(1, c)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "f").write_bytes(b"secret")
        done = run(["scan", "-a", "md5", "data", "--executor", "dask", "--scheduler", address,
                    *tls], cwd=tmp_path)
        plain = run(["scan", "-a", "md5", "data", "--executor", "dask", "--scheduler", address,
                     "--connect-timeout", "2"], cwd=tmp_path)
    finally:
        secure.stop_all()
    assert (done.returncode, done.stdout) == (
        0, f"{hashlib.md5(b'secret').hexdigest()}  data/f\n".encode()), done.stderr
    assert plain.returncode == 2  # no certificate: no way in
    assert plain.stderr.startswith(b"parhash: a tls:// scheduler needs --tls-cert and "
                                   b"--tls-key")


def test_import_parhash_does_not_import_distributed() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, parhash; parhash.scan; "
                           "parhash.DaskExecutor.__name__; import parhash.cli; "
                           "print('distributed' in sys.modules)"],
                          capture_output=True, check=True, env=ENV)
    # DaskExecutor is the one name that imports it, on first use.
    assert done.stdout == b"True\n"
    done = subprocess.run([sys.executable, "-c", "import sys, parhash, parhash.cli, "
                           "parhash.report; parhash.scan; print('distributed' in sys.modules)"],
                          capture_output=True, check=True, env=ENV)
    assert done.stdout == b"False\n"


@pytest.mark.parametrize("speaks", [False, True], ids=["silent", "speaks-first"])
def test_a_port_that_is_no_scheduler_is_one_line_and_exit_2_within_the_timeout(
        tmp_path: Path, speaks: bool) -> None:
    # Dask's handshake waits for an answer with no bound of its own.
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                if speaks:
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" * 100)

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    try:
        start = time.monotonic()
        done = run(["scan", ".", "--executor", "dask", "--scheduler",
                    f"tcp://127.0.0.1:{port}", "--connect-timeout", "1"], cwd=tmp_path)
        assert time.monotonic() - start < 15
    finally:
        server.close()
        for conn in held:
            conn.close()
    no_traceback(done.stderr)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(b"parhash: cannot ")
    assert done.stderr.count(b"\n") == 1 and done.stdout == b""


def test_tls_files_with_a_tcp_scheduler_are_a_usage_error(tmp_path: Path) -> None:
    done = run(["scan", ".", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1",
                "--tls-cert", "c.pem", "--tls-key", "k.pem"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(b"parhash: --tls-ca-file, --tls-cert and --tls-key are for "
                                  b"a tls:// scheduler\n")


def test_process_substitution_is_read_by_the_client(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    script = (f"exec {' '.join(PARHASH)} scan -a md5 a <(printf piped) --executor dask "
              f"--scheduler-file {cluster.file}")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=ENV, capture_output=True,
                          timeout=60, check=False)
    no_traceback(done.stderr)
    assert done.returncode == 0, done.stderr
    assert f"{hashlib.md5(b'piped').hexdigest()}  /dev/fd/".encode() in done.stdout


def test_losing_the_scheduler_mid_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    lone = Cluster(tmp_path / "lone")
    try:
        lone.start_worker("w")
        with lone.client() as client:
            lone.wait_for(1, client)
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        p, fd = _blocked_scan(lone, tmp_path, fifo, ["fifo"])
        lone.stop("scheduler")
        try:
            _, err = p.communicate(timeout=60)
        finally:
            os.close(fd)
    finally:
        lone.stop_all()
    no_traceback(err)
    assert p.returncode == 2, err
    assert err.startswith(b"parhash: ") and err.count(b"\n") == 1, err


def test_the_cache_belongs_to_the_client(cluster: Cluster, tmp_path: Path) -> None:
    # The workers never open the client's cache: the client sends each
    # directory's entries with its task, and writes what the workers read.
    contents = _wide_tree(tmp_path / "tree", dirs=12, files=4)
    cache = tmp_path / "client" / "hashes.sqlite"
    cache.parent.mkdir()
    time.sleep(0.3)  # past the racy-file margin of nanosecond times
    args = ["scan", "--json", "-a", "md5", "--cache-file", str(cache), "tree", *dask(cluster)]
    for expected in (False, True):
        done = run(args, cwd=tmp_path)
        no_traceback(done.stderr)
        assert done.returncode == 0, done.stderr
        got = {r["path"]: r for r in map(json.loads, records(done.stdout))}
        assert sorted(got) == sorted(contents)
        for path, data in contents.items():
            assert got[path]["md5"] == hashlib.md5(data).hexdigest()
            assert got[path]["cached"] is expected, (path, got[path])
    # A changed file is read again, on the cluster, and its new digest kept.
    changed = tmp_path / "tree" / "d03" / "f1"
    changed.write_bytes(b"new contents, new size")
    time.sleep(0.3)
    for expected in (False, True):
        again = run(args, cwd=tmp_path)
        got = {r["path"]: r for r in map(json.loads, records(again.stdout))}
        assert got["tree/d03/f1"]["md5"] == hashlib.md5(b"new contents, new size").hexdigest()
        assert got["tree/d03/f1"]["cached"] is expected
        assert got["tree/d00/f0"]["cached"] is True
