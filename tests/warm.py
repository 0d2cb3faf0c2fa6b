"""``python -m ticker ...`` as real processes, started warm: a test worker keeps one
helper interpreter that has imported ticker's heavy third-party libraries (uvicorn,
Starlette, redis, pydantic, structlog, httpx) once, and forks a child per command.

Each child is a real process, as ``subprocess.Popen`` would give: its own pid, exit code,
signals, environment (replaced whole, as ``env=`` does), working directory and file
descriptors 0-2 (the caller's pipes or files, never a terminal). It imports ticker
itself, after its environment is set, and runs ``python -m ticker`` through ``runpy``.
What it saves: about two thirds of every command's start-up, the imports, which were
the suite's largest single cost on a two-core runner (about 0.4 s of CPU per CLI
command and 0.6 s per ``ticker serve``).

Left out of the warm set on purpose: prometheus-client (it reads
``PROMETHEUS_MULTIPROC_DIR`` when first imported, and ``ticker serve --workers`` sets
that first) and every ticker module that imports it, and Typer, Click and the CLI's
consoles (they read the environment when they are made). ``TICKER_TEST_COLD=1`` turns
the whole thing off (plain ``subprocess.Popen``).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

_PRELOAD = (
    "asyncio",
    "uvloop",
    "httptools",
    "uvicorn.config",
    "uvicorn.server",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.supervisors.multiprocess",
    "starlette.applications",
    "starlette.routing",
    "starlette.responses",
    "starlette.middleware",
    "redis.asyncio",
    "redis.asyncio.cluster",
    "redis.asyncio.sentinel",
    "hiredis",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "httpx",
    "anyio",
    # ticker's own modules that read nothing from the environment when imported and do
    # not bring prometheus-client in (checked in ``_serve``).
    "ticker.settings",
    "ticker.domain.models",
    "ticker.domain.events",
    "ticker.store",
    "ticker.newsroom.auth",
    "ticker.newsroom.archive",
)
_MAX_MESSAGE = 1 << 20


# -- the helper interpreter ------------------------------------------------------------


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def _serve(sock: socket.socket) -> None:
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    if "prometheus_client" in sys.modules or "typer" in sys.modules:
        raise SystemExit("tests/warm.py: a preloaded module imports prometheus-client or Typer")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 3)
                if not data:
                    return  # the test worker has gone
                request = json.loads(data)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request, fds, [sock.fileno(), wake_r, wake_w])
                for fd in fds:
                    os.close(fd)
                _send(sock, {"id": request["id"], "pid": pid})
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
        # Reap after every wake-up: signals coalesce.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stream(fd: int, *, write: bool, unbuffered: bool, template: Any) -> IO[str]:
    """A standard stream as Python makes one at start-up (not a terminal)."""
    encoding, errors = template.encoding, template.errors
    if not write:
        return io.TextIOWrapper(open(fd, "rb", closefd=False), encoding, errors)
    raw = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)  # noqa: SIM115
    return io.TextIOWrapper(
        raw,
        encoding,
        errors,
        line_buffering=fd == 2,
        write_through=unbuffered,
    )


def _child(request: dict[str, Any], fds: list[int], close: list[int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if request.get("new_session"):
            os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in {*fds, *close} - {0, 1, 2}:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()  # a fork shares its parent's generator state
        unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
        sys.stdin = _stream(0, write=False, unbuffered=False, template=sys.__stdin__ or sys.stdin)
        sys.stdout = _stream(1, write=True, unbuffered=unbuffered, template=sys.__stdout__)
        sys.stderr = _stream(2, write=True, unbuffered=unbuffered, template=sys.__stderr__)
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        sys.argv = ["-m", *request["args"]]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            _finish()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            traceback.print_exc()
            code = 1
        _finish()
    finally:
        os._exit(code)


def _finish() -> None:
    """What the interpreter does on the way out: non-daemon threads, atexit, flush."""
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


# -- the test worker's side ------------------------------------------------------------


class WarmProcess:
    """The parts of ``subprocess.Popen`` the tests use, for a child of the helper."""

    def __init__(
        self, pid: int, args: list[str], stdout: IO[Any] | None, stderr: IO[Any] | None
    ) -> None:
        self.pid = pid
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = None
        self.returncode: int | None = None
        self._exited = threading.Event()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        results: dict[str, Any] = {}

        def read(name: str, stream: IO[Any] | None) -> None:
            if stream is not None:
                results[name] = stream.read()
                stream.close()

        readers = [
            threading.Thread(target=read, args=(name, stream), daemon=True)
            for name, stream in (("out", self.stdout), ("err", self.stderr))
        ]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(timeout)
            if thread.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(timeout)
        return results.get("out"), results.get("err")

    def __enter__(self) -> WarmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


class _Helper:
    """One helper interpreter per test worker, started on first use."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = Path(__file__).resolve().parent.parent
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.warm", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=root,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()
        self._next = 0
        self._spawned: dict[int, int] = {}
        self._started = threading.Condition()
        self._children: dict[int, WarmProcess] = {}
        self._early: dict[int, int] = {}
        threading.Thread(target=self._listen, name="warm-helper", daemon=True).start()

    def _listen(self) -> None:
        while True:
            data = self._sock.recv(_MAX_MESSAGE)
            if not data:
                return
            message = json.loads(data)
            with self._started:
                if "pid" in message:
                    self._spawned[message["id"]] = message["pid"]
                    self._started.notify_all()
                    continue
                child = self._children.pop(message["exited"], None)
                if child is None:
                    self._early[message["exited"]] = message["code"]
                    continue
            child._set_exit(message["code"])

    def spawn(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        stdin: int | None,
        stdout: int | IO[Any] | None,
        stderr: int | IO[Any] | None,
        text: bool,
        new_session: bool,
    ) -> WarmProcess:
        opened: list[int] = []  # the child's ends we made: closed here once it has them
        parent_ends: dict[int, int] = {}  # the child's fd -> our end of its pipe

        def target(fd: int, spec: int | IO[Any] | None) -> int:
            """What the child gets as ``fd``, as Popen's stdin/stdout/stderr mean ``spec``."""
            if spec == subprocess.PIPE:
                r, w = os.pipe()
                ours, theirs = (r, w) if fd else (w, r)
                opened.append(theirs)
                parent_ends[fd] = ours
                return theirs
            if spec is None:
                return fd  # inherited, as Popen does
            if spec == subprocess.DEVNULL:
                opened.append(os.open(os.devnull, os.O_RDWR))
                return opened[-1]
            return spec if isinstance(spec, int) else spec.fileno()

        fds = [target(0, stdin), target(1, stdout), target(2, stderr)]
        with self._lock:
            self._next += 1
            ident = self._next
            _send(
                self._sock,
                {
                    "id": ident,
                    "module": "ticker",
                    "args": args,
                    "env": env,
                    "cwd": cwd,
                    "new_session": new_session,
                },
                fds,
            )
        for fd in opened:
            os.close(fd)
        with self._started:
            self._started.wait_for(lambda: ident in self._spawned, timeout=30)
            pid = self._spawned.pop(ident)

            def reader(fd: int) -> IO[Any] | None:
                end = parent_ends.get(fd)
                return None if end is None else open(end, "r" if text else "rb")

            child = WarmProcess(pid, [sys.executable, "-m", "ticker", *args], reader(1), reader(2))
            if pid in self._early:
                child._set_exit(self._early.pop(pid))
            else:
                self._children[pid] = child
        return child


def _startup_vars(env: Any) -> dict[str, str]:
    """The variables the interpreter reads as it starts (unbuffered output is redone)."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONUNBUFFERED"}


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def popen_ticker(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: str | Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    text: bool = False,
    start_new_session: bool = False,
) -> Any:
    """``subprocess.Popen([python, "-m", "ticker", *args], ...)``, warm when it can be."""
    global _helper
    workdir = str(cwd if cwd is not None else os.getcwd())
    if (
        os.environ.get("TICKER_TEST_COLD")
        or not hasattr(socket, "send_fds")
        or _startup_vars(env) != _startup_vars(os.environ)
    ):
        # PYTHONPATH and the like act when an interpreter starts: a fork has started.
        return subprocess.Popen(
            [sys.executable, "-m", "ticker", *args],
            env=env,
            cwd=workdir,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=text,
            start_new_session=start_new_session,
        )
    with _helper_lock:
        if _helper is None:
            _helper = _Helper()
        helper = _helper
    return helper.spawn(
        args,
        env=env,
        cwd=workdir,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=text,
        new_session=start_new_session,
    )


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])))
