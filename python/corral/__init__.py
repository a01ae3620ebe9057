"""corral: Linux containers from Python, in the shape of ``subprocess``.

corral runs OCI containers (namespaces, cgroups, a root filesystem of their own) without a
daemon. This module drives its runtime in-process::

    import corral

    r = corral.run(["echo", "hello"], rootfs="/path/to/rootfs", capture_output=True)
    r.returncode, r.stdout          # 0, b'hello\\n'
    r.timings                       # {'check': 3.1e-05, ..., 'clone': 0.0011, ...}

    with corral.Container(["sleep", "60"], rootfs="/path/to/rootfs",
                          limits=corral.Limits(memory="64M", pids=64, cpus=0.5)) as c:
        c.exec(["ps"], capture_output=True).stdout
        c.kill()
        c.wait()                    # -9: killed by SIGKILL, as subprocess says it

What is here:

* :func:`run` -- create, start, wait for and delete a container, as ``subprocess.run``.
* :class:`Container` -- one container: ``create``, ``start``, ``wait``, ``kill``, ``pause``,
  ``resume``, ``update``, ``stats``, ``exec``, ``delete``; ``id``, ``pid``, ``state``; a
  context manager; ``await c.wait_async()`` for asyncio.
* :class:`Limits`, :class:`Mount` -- what a container may use, and what it sees.
* :func:`list` -- the containers under a state root.
* :class:`ImageStore` (module :mod:`corral.images`) -- images: ``import_``, ``build``,
  ``tag``, ``list``, ``remove``, ``prune``; ``Container(image=..., store=...)`` runs one.
* Networks (CNI): ``Container(networks=["bridge"], ports=["8080:80"],
  ingress_rate="10mbit")``, :attr:`Container.networks` (its addresses and published
  ports); :func:`network_create`, :func:`network_list`, :func:`network_remove` -- the named
  networks of a store.
* :class:`CorralWarning` -- what the runtime warns of (``warnings.warn``), e.g. a limit the
  host does not enforce.
* :class:`Error` and its subclasses (see :mod:`corral.errors`): every failure says its
  ``step``, ``errno`` and ``path``.

Every call that can block releases the GIL, so threads run containers in parallel; a
container is waited for on its pidfd (an event loop watches it: no thread per container).
Creating containers needs root.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import os
import selectors
import signal as _signal
import subprocess
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from . import _corral
from ._corral import Limits, Mount, default_root, parse_size
from .errors import (
    CalledProcessError,
    ConfigError,
    CorralWarning,
    Error,
    ImageError,
    NotFoundError,
    SpawnError,
    StateError,
    TimeoutExpired,
)
from .images import ImageStore, default_store

__all__ = [
    "run",
    "Container",
    "Pool",
    "ExecProcess",
    "CompletedProcess",
    "State",
    "Limits",
    "Mount",
    "list",
    "ImageStore",
    "default_root",
    "default_store",
    "parse_size",
    "network_create",
    "network_list",
    "network_remove",
    "PIPE",
    "STDOUT",
    "DEVNULL",
    "PHASES",
    "Error",
    "ConfigError",
    "NotFoundError",
    "StateError",
    "SpawnError",
    "ImageError",
    "CorralWarning",
    "TimeoutExpired",
    "CalledProcessError",
]

__version__: str = _corral.__version__

#: Make a pipe to the process (as ``subprocess.PIPE``).
PIPE = subprocess.PIPE
#: ``stderr=STDOUT``: stderr goes where stdout goes (as ``subprocess.STDOUT``).
STDOUT = subprocess.STDOUT
#: Connect the stream to ``/dev/null`` (as ``subprocess.DEVNULL``).
DEVNULL = subprocess.DEVNULL

#: The phases of a spawn, in the order they run, as they appear in ``timings``: ``check``
#: (the config), ``record`` (the state dir), ``rootfs``, ``cgroup`` (made and limited),
#: ``plan`` (the child's set-up prepared), ``clone``, ``setup`` (the child's set-up, until it
#: waits at its start gate), ``created`` (state written), then ``start`` (until ``execve``).
PHASES: Tuple[str, ...] = tuple(_corral.PHASES)

StdioArg = Union[None, int, Any]
Args = Sequence[Union[str, "os.PathLike[str]"]]

_counter = 0
_counter_lock = threading.Lock()


def _new_id() -> str:
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return f"py-{os.getpid()}-{n}-{uuid.uuid4().hex[:8]}"


# Containers made by this process and neither deleted nor detached: deleted at exit (the
# handle's own finaliser does the same when it is collected earlier).
_live: "weakref.WeakSet[Container]" = weakref.WeakSet()


@atexit.register
def _delete_live() -> None:
    for c in builtins.list(_live):
        if c._owner == os.getpid():
            try:
                c.delete(force=True)
            except Error:
                pass


class _Stdio:
    """The three fds a process gets, and this side's ends of the pipes made for it."""

    def __init__(self, stdin: StdioArg, stdout: StdioArg, stderr: StdioArg) -> None:
        self.child = [-1, -1, -1]
        self.ours: builtins.list[int] = []  # fds made here for the child: closed after spawn
        self.parent: builtins.list[Optional[int]] = [None, None, None]
        try:
            for i, (name, v) in enumerate((("stdin", stdin), ("stdout", stdout), ("stderr", stderr))):
                self._one(i, name, v)
        except BaseException:
            self.close_all()
            raise

    def _one(self, i: int, name: str, v: StdioArg) -> None:
        if v is None:
            return
        if isinstance(v, bool):
            raise TypeError(f"{name}: expected None, corral.PIPE, corral.DEVNULL, an fd or a file object, got bool")
        if isinstance(v, int):
            if v == PIPE:
                r, w = os.pipe()
                child, parent = (r, w) if i == 0 else (w, r)
                self.ours.append(child)
                self.parent[i] = parent
                self.child[i] = child
            elif v == DEVNULL:
                fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                self.ours.append(fd)
                self.child[i] = fd
            elif v == STDOUT:
                if i != 2:
                    raise ConfigError(f"{name}: STDOUT is only for stderr", step="config", path=name)
                self.child[2] = self.child[1] if self.child[1] >= 0 else 1
            elif v >= 0:
                self.child[i] = v
            else:
                raise ConfigError(f"{name}: {v}: not a file descriptor", step="config", path=name)
            return
        fileno = getattr(v, "fileno", None)
        if fileno is None:
            raise TypeError(
                f"{name}: expected None, corral.PIPE, corral.DEVNULL, an fd or a file object, "
                f"got {type(v).__name__}"
            )
        try:
            self.child[i] = fileno()
        except (OSError, ValueError) as e:  # io.UnsupportedOperation, a closed file
            raise TypeError(f"{name}: {type(v).__name__} has no usable file descriptor ({e})") from None

    def files(self) -> Tuple[Any, Any, Any]:
        """This side's pipe ends as file objects (None where there is no pipe)."""
        out = []
        for i, fd in enumerate(self.parent):
            out.append(None if fd is None else open(fd, "wb" if i == 0 else "rb", buffering=0))
            self.parent[i] = None
        return out[0], out[1], out[2]

    def close_ours(self) -> None:
        for fd in self.ours:
            try:
                os.close(fd)
            except OSError:
                pass
        self.ours = []

    def close_all(self) -> None:
        self.close_ours()
        for i, fd in enumerate(self.parent):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                self.parent[i] = None


@dataclass
class CompletedProcess:
    """What :func:`run` and :meth:`Container.exec` return, as ``subprocess.CompletedProcess``:
    ``args``; ``returncode`` (the exit code, or ``-N`` when signal N killed it); ``signal`` (N,
    or None); ``stdout`` and ``stderr`` (bytes, or str with ``text=True``; None when not
    captured); ``timings``: seconds per phase of the spawn (see :data:`PHASES`; empty for an
    exec); ``id``: the container's id."""

    args: Any
    returncode: int
    stdout: Union[bytes, str, None] = None
    stderr: Union[bytes, str, None] = None
    signal: Optional[int] = None
    timings: Dict[str, float] = field(default_factory=dict)
    id: Optional[str] = None

    def check_returncode(self) -> None:
        """Raises :class:`CalledProcessError` if the process failed."""
        if self.returncode:
            raise CalledProcessError(
                self.returncode, self.args, self.stdout, self.stderr, signal=self.signal, id=self.id
            )


@dataclass(frozen=True)
class State:
    """One container under a state root, as :func:`list` finds it: ``id``, ``status``
    (``creating``, ``created``, ``running``, ``paused``, ``stopped``), ``pid`` (0 when
    stopped), ``bundle`` (its bundle directory), ``created`` (seconds since the epoch) and
    ``annotations``."""

    id: str
    status: str
    pid: int
    bundle: str
    created: int
    annotations: Dict[str, str]


def list(root: Union[str, "os.PathLike[str]", None] = None) -> "builtins.list[State]":  # noqa: A001
    """The containers under the state ``root`` (default: :func:`default_root`), sorted by id,
    with their live status. Made by any process: this one, another program, or the ``corral``
    command."""
    return [State(**d) for d in _corral.list_states(root)]


class _Process:
    """What a container's init and an exec'd process share: waiting, polling, the pipes."""

    _h: Any
    args: Any
    stdin: Any = None
    stdout: Any = None
    stderr: Any = None
    _id: Optional[str] = None

    @property
    def returncode(self) -> Optional[int]:
        """The exit code, or ``-N`` when signal N killed it; None while it runs (and for a
        container this process did not create, whose status it cannot know)."""
        e = self._exit()
        return None if e is None else e[0]

    @property
    def signal(self) -> Optional[int]:
        """The signal that killed it, or None."""
        e = self._exit()
        return None if e is None else e[1]

    def _exit(self) -> Optional[Tuple[Optional[int], Optional[int]]]:
        raise NotImplementedError

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Waits until it exits and returns :attr:`returncode`. With a ``timeout`` (seconds),
        raises :class:`TimeoutExpired` if it is still running then. Releases the GIL while it
        waits; Ctrl-C interrupts it."""
        r = self._h.wait(timeout)
        if r is None:
            raise TimeoutExpired(self.args, timeout or 0.0, id=self._id)
        return r[0]

    def poll(self) -> Optional[int]:
        """:attr:`returncode` if it has exited, else None; never blocks."""
        r = self._h.poll()
        return None if r is None else r[0]

    async def wait_async(self, timeout: Optional[float] = None) -> Optional[int]:
        """Awaits its exit and returns :attr:`returncode`: the event loop watches its pidfd
        (no thread is used). With a ``timeout``, raises :class:`TimeoutExpired` when it
        runs out."""
        fd = self._h.wait_fd()
        if fd is not None:
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            # A container's exec'd processes are watched too: one that exits is reaped at once
            # (the init of a pid namespace cannot finish exiting while one is unreaped).
            others = self._exec_wait_fds()

            def ready() -> None:
                if not done.done():
                    done.set_result(None)

            def reap(other: int) -> None:
                loop.remove_reader(other)
                self._h.reap_execs()

            try:
                loop.add_reader(fd, ready)
                for other in others:
                    loop.add_reader(other, reap, other)
                try:
                    if timeout is None:
                        await done
                    else:
                        await asyncio.wait_for(done, timeout)
                except asyncio.TimeoutError:
                    raise TimeoutExpired(self.args, timeout or 0.0, id=self._id) from None
                finally:
                    loop.remove_reader(fd)
                    for other in others:
                        loop.remove_reader(other)
            finally:
                for f in [fd, *others]:
                    os.close(f)
        return self.wait()

    def _exec_wait_fds(self) -> "builtins.list[int]":
        return []

    def communicate(
        self, input: Union[bytes, str, None] = None, timeout: Optional[float] = None
    ) -> Tuple[Any, Any]:
        """Sends ``input`` to its stdin (then closes it), reads its stdout and stderr to the
        end, and waits for it to exit, as ``subprocess.Popen.communicate``: returns
        ``(stdout, stderr)`` (None for a stream that is not a pipe). With a ``timeout``,
        raises :class:`TimeoutExpired` (carrying what was read) if it runs out."""
        deadline = None if timeout is None else monotonic() + timeout
        out, err = _communicate(self, input, deadline, timeout)
        left = None if deadline is None else max(0.0, deadline - monotonic())
        r = self._h.wait(left)
        if r is None:
            raise TimeoutExpired(self.args, timeout or 0.0, out, err, id=self._id)
        return out, err

    def _close_pipes(self) -> None:
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


def _communicate(
    p: _Process, input: Union[bytes, str, None], deadline: Optional[float], timeout: Optional[float]
) -> Tuple[Any, Any]:
    text = getattr(p, "_text", False)
    if isinstance(input, str):
        input = input.encode()
    if input is not None and not isinstance(input, (bytes, bytearray, memoryview)):
        raise TypeError(f"input: expected bytes or str, got {type(input).__name__}")
    if input is not None and p.stdin is None:
        raise ConfigError("input: given, but stdin is not a pipe", step="config", path="input")
    chunks: Dict[Any, builtins.list[bytes]] = {}
    view = memoryview(input or b"")
    offset = 0
    with selectors.DefaultSelector() as sel:
        if p.stdin is not None and not p.stdin.closed:
            if input:
                os.set_blocking(p.stdin.fileno(), False)
                sel.register(p.stdin, selectors.EVENT_WRITE)
            else:
                p.stdin.close()
        for f in (p.stdout, p.stderr):
            if f is not None and not f.closed:
                chunks[f] = []
                sel.register(f, selectors.EVENT_READ)

        def read_so_far() -> Tuple[Any, Any]:
            return _joined(chunks.get(p.stdout), text), _joined(chunks.get(p.stderr), text)

        while sel.get_map():
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                raise TimeoutExpired(p.args, timeout or 0.0, *read_so_far(), id=p._id)
            for key, _ in sel.select(left):
                f = key.fileobj
                if f is p.stdin:
                    try:
                        offset += os.write(key.fd, view[offset : offset + 65536])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        offset = len(view)
                    if offset >= len(view):
                        sel.unregister(f)
                        f.close()
                else:
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(f)
                        f.close()
                    else:
                        chunks[f].append(data)
    return read_so_far()


def _joined(parts: Optional[Sequence[bytes]], text: bool) -> Any:
    if parts is None:
        return None
    b = b"".join(parts)
    return b.decode() if text else b


class ExecProcess(_Process):
    """A process started in a running container by :meth:`Container.exec_process`, in the
    shape of ``subprocess.Popen``: ``pid``, ``stdin``/``stdout``/``stderr`` (binary file
    objects for the streams given as PIPE), ``wait``, ``poll``, ``communicate``, ``kill``,
    ``terminate``, ``await wait_async()``, ``returncode`` and ``signal``."""

    def __init__(self, handle: Any, args: Any, stdio: _Stdio, text: bool, id: str) -> None:
        self._h = handle
        self.args = args
        self._text = text
        self._id = id
        self.stdin, self.stdout, self.stderr = stdio.files()
        self._last: Optional[Tuple[Optional[int], Optional[int]]] = None

    @property
    def pid(self) -> int:
        """Its pid (in this process's pid namespace)."""
        return int(self._h.pid)

    def _exit(self) -> Optional[Tuple[Optional[int], Optional[int]]]:
        if self._last is None:
            self._last = self._h.poll()
        return self._last

    def kill(self, signal: int = _signal.SIGKILL) -> None:
        """Sends ``signal`` (default SIGKILL) to the process."""
        self._h.kill(signal)

    def terminate(self) -> None:
        """Sends SIGTERM."""
        self._h.kill(_signal.SIGTERM)

    def __enter__(self) -> "ExecProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close_pipes()
        try:
            self.wait()
        except Error:
            pass

    def __repr__(self) -> str:
        return f"<corral.ExecProcess pid={self.pid} returncode={self.returncode}>"


class Container(_Process):
    """One container, described by its arguments and made by :meth:`create`.

    From keyword arguments (over the defaults of ``corral spec``: new pid, network, ipc, uts,
    mount and cgroup namespaces, ``/proc``, ``/dev``, ``/sys``, a read-only root, the default
    capabilities)::

        Container(["sh", "-c", "echo hi"], rootfs="/path/rootfs", env={"A": "1"},
                  cwd="/tmp", hostname="box", user=(1000, 1000),
                  namespaces={"network": "host"},
                  mounts=[Mount.bind("/data", "/data", readonly=True), Mount.tmpfs("/tmp")],
                  limits=Limits(memory="64M", pids=64, cpus=0.5))

    or from an OCI bundle directory (its ``config.json`` and root filesystem)::

        Container(bundle="/path/bundle")

    or from an image of corral's image store (:class:`corral.images.ImageStore`, or ``corral
    image import``/``build``; ``store`` is an :class:`ImageStore` or its directory, default
    ``$CORRAL_STORE`` or ``/var/lib/corral``): its layers, shared and read-only, under a
    writable layer of the container's own, and its entrypoint, command, environment, working
    directory and user, with the other arguments on top (``args`` is the command)::

        Container(["echo", "hi"], image="debian:12", limits=Limits(memory="64M"))

    A container from an image gets what ``docker run`` gives by default: docker's seccomp
    profile, docker's default capabilities, only the standard devices, docker's masked and
    read-only paths. Opting out is explicit and named as docker's options: ``privileged=True``,
    ``cap_add=[...]`` / ``cap_drop=[...]`` (names, ``"ALL"``), ``seccomp=False`` or
    ``"unconfined"`` (no filter) or a profile's path (a ``linux.seccomp`` object in OCI form),
    ``security_opt=["no-new-privileges", "seccomp=..."]``, ``devices=["/dev/fuse",
    "HOST:CONTAINER:rwm"]``.

    Arguments: ``args`` (the program, looked up in the container's ``PATH``, and its
    arguments; default ``["/bin/sh"]``); ``rootfs`` or ``bundle``; ``id`` (default: a unique
    one); ``root`` (the state root, default :func:`default_root`); ``env`` (added to
    ``PATH``); ``cwd``; ``hostname``; ``user`` (a uid, ``(uid, gid)`` or ``(uid, gid,
    [gids])``); ``namespaces`` (name to ``"new"``, ``"host"`` or a namespace path to join);
    ``mounts``; ``limits``; ``seccomp`` (a default filter that refuses what containers have no
    business calling); ``readonly_root`` (default: read-only for ``rootfs``, writable for an
    image); ``annotations``; ``stdin``, ``stdout``, ``stderr``
    (None: this process's own; PIPE, DEVNULL, STDOUT, an fd or a file object, as
    ``subprocess``). Bad input raises ``TypeError`` or :class:`ConfigError` naming the
    argument, before anything is made.

    What the runtime warns of while it makes or starts the container (a limit the host does
    not enforce, a failed ``startContainer`` hook) is issued with ``warnings.warn`` as a
    :class:`CorralWarning` after :meth:`create` or :meth:`start`.

    Networks (CNI, made and joined at :meth:`create`, left at :meth:`delete`): ``networks``
    (names of networks of ``store``, joined in order as ``eth0``, ``eth1``...; ``"bridge"`` is
    the default network, made on first use; others are made with :func:`network_create`);
    ``network`` (``"private"``: a network namespace of its own, the default; ``"none"``:
    loopback only, whatever ``networks`` says; ``"host"``: this host's; the path of a
    network namespace to join; or a network's name, as ``networks=[name]``); ``ports``
    (published on the first network, as docker's ``-p``: ``"8080:80"``,
    ``"127.0.0.1:8080:80/udp"``, ``"80"`` or an int for a free host port);
    ``publish_all`` (every port the image exposes, on free host ports: docker's ``-P``);
    ``ingress_rate``, ``egress_rate`` (bits per second as an int, or a str such as
    ``"10mbit"``, ``"500kbit"``, ``"2mbps"``: a token bucket on the host side of each of its
    interfaces). A container joins no network unless asked (loopback only). ``store`` is
    where the networks, their leases and caches live, for a ``rootfs`` too. What the
    networks gave it (addresses, gateway, MAC, the host ports chosen) is
    :attr:`networks`.

    As a context manager it is created and started on entry (if it was not yet) and deleted,
    killed first if need be, on exit. A container neither deleted nor detached is deleted when
    its handle is garbage-collected, or when the interpreter exits.
    """

    def __init__(
        self,
        args: Optional[Args] = None,
        *,
        rootfs: Union[str, "os.PathLike[str]", None] = None,
        bundle: Union[str, "os.PathLike[str]", None] = None,
        id: Optional[str] = None,
        root: Union[str, "os.PathLike[str]", None] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        hostname: Optional[str] = None,
        user: Union[int, Tuple[int, int], Tuple[int, int, Iterable[int]], None] = None,
        namespaces: Optional[Mapping[str, str]] = None,
        mounts: Optional[Iterable[Mount]] = None,
        limits: Optional[Limits] = None,
        seccomp: Union[bool, str, "os.PathLike[str]", None] = None,
        readonly_root: Optional[bool] = None,
        annotations: Optional[Mapping[str, str]] = None,
        image: Optional[str] = None,
        store: Union[str, "os.PathLike[str]", ImageStore, None] = None,
        privileged: bool = False,
        cap_add: Optional[Iterable[str]] = None,
        cap_drop: Optional[Iterable[str]] = None,
        security_opt: Optional[Iterable[str]] = None,
        devices: Optional[Iterable[str]] = None,
        network: Optional[str] = None,
        networks: Optional[Iterable[str]] = None,
        ports: Optional[Iterable[Union[str, int]]] = None,
        publish_all: bool = False,
        ingress_rate: Union[int, str, None] = None,
        egress_rate: Union[int, str, None] = None,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
    ) -> None:
        self.args = args
        self._text = bool(text)
        self._owner = os.getpid()
        self._stdio = _Stdio(stdin, stdout, stderr)
        try:
            self._h = _corral.Core(
                _new_id() if id is None else id,
                root=root,
                stdio=tuple(self._stdio.child),
                rootfs=rootfs,
                bundle=bundle,
                args=args,
                env=env,
                cwd=cwd,
                hostname=hostname,
                user=user,
                namespaces=namespaces,
                mounts=mounts,
                limits=limits,
                seccomp=seccomp if image is not None or seccomp is None else _flag("seccomp", seccomp),
                readonly_root=None if readonly_root is None else _flag("readonly_root", readonly_root),
                annotations=annotations,
                image=image,
                store=store,
                privileged=_flag("privileged", privileged),
                cap_add=cap_add,
                cap_drop=cap_drop,
                security_opt=security_opt,
                devices=devices,
                network=network,
                networks=networks,
                ports=ports,
                publish_all=_flag("publish_all", publish_all),
                ingress_rate=ingress_rate,
                egress_rate=egress_rate,
            )
        except BaseException:
            self._stdio.close_all()
            raise
        self._id = self._h.id

    @classmethod
    def load(cls, id: str, root: Union[str, "os.PathLike[str]", None] = None) -> "Container":
        """A handle on the existing container ``id`` under ``root`` (made by any process).
        Raises :class:`NotFoundError` if there is none. Its state stays locked while the
        handle lives (until :meth:`delete` or :meth:`detach`); deleting it is up to you."""
        self = cls.__new__(cls)
        self.args = None
        self._text = False
        self._owner = os.getpid()
        self._stdio = _Stdio(None, None, None)
        self._h = _corral.Core.load(id, root)
        self._id = self._h.id
        return self

    # -- life --------------------------------------------------------------------------

    def create(self) -> None:
        """Creates the container: namespaces, cgroups, mounts, its process set up and waiting
        at its start gate. Raises :class:`SpawnError` (with ``step``, ``errno``, ``path``)
        when a step fails; nothing is left behind then."""
        try:
            self._h.create()
        except BaseException:
            self._stdio.close_all()
            raise
        self._stdio.close_ours()
        self.stdin, self.stdout, self.stderr = self._stdio.files()
        _live.add(self)

    def start(self) -> None:
        """Starts the created container's process (it ``execve``s its program)."""
        self._h.start()

    def kill(self, signal: int = _signal.SIGKILL, *, all: bool = False) -> None:
        """Sends ``signal`` (default SIGKILL) to the container's init, or with ``all=True`` to
        every process in it. (An init ignores the signals it has no handler for, except
        SIGKILL and SIGSTOP: that is how pid namespaces work.)"""
        self._h.kill(signal, all)

    def terminate(self) -> None:
        """Sends SIGTERM to the container's init."""
        self._h.kill(_signal.SIGTERM, False)

    def pause(self) -> None:
        """Freezes every process of the container (cgroup freezer)."""
        self._h.pause()

    def resume(self) -> None:
        """Thaws a paused container."""
        self._h.resume()

    def update(self, limits: Optional[Limits] = None, **kwargs: Any) -> None:
        """Changes the limits of a live container: ``update(Limits(memory="128M"))`` or
        ``update(memory="128M", pids=32)``. Limits not given stay as they are."""
        if limits is None:
            limits = Limits(**kwargs)
        elif kwargs:
            raise TypeError("update: give a Limits or keyword limits, not both")
        self._h.update(limits)

    def stats(self) -> Dict[str, Optional[int]]:
        """Resource usage from the container's cgroup: ``memory_usage``, ``memory_limit``,
        ``memory_max_usage``, ``swap_usage``, ``oom_kill_count``, ``pids_current``,
        ``pids_limit``, ``cpu_usage_ns`` (None where the host does not say)."""
        return dict(self._h.stats())

    def pids(self) -> "builtins.list[int]":
        """The pids of every process of the container (in this process's pid namespace)."""
        return builtins.list(self._h.pids())

    def exec_process(
        self,
        args: Args,
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        user: Union[int, Tuple[int, int], None] = None,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
    ) -> ExecProcess:
        """Starts ``args`` in the running container (its namespaces, cgroup, user,
        capabilities and environment, with ``env``, ``cwd`` and ``user`` on top) and returns
        it as an :class:`ExecProcess`, without waiting."""
        stdio = _Stdio(stdin, stdout, stderr)
        try:
            h = self._h.exec(args, env=env, cwd=cwd, user=user, stdio=tuple(stdio.child))
        except BaseException:
            stdio.close_all()
            raise
        stdio.close_ours()
        return ExecProcess(h, args, stdio, bool(text), self._id or "")

    def exec(
        self,
        args: Args,
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        user: Union[int, Tuple[int, int], None] = None,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        input: Union[bytes, str, None] = None,
        capture_output: bool = False,
        timeout: Optional[float] = None,
        check: bool = False,
        text: bool = False,
    ) -> CompletedProcess:
        """Runs ``args`` in the running container and waits for it, as :func:`run` runs a
        container: ``input``, ``capture_output``, ``timeout`` (the process is killed when it
        runs out), ``check``, ``text``. Returns a :class:`CompletedProcess`."""
        stdin, stdout, stderr = _run_streams(stdin, stdout, stderr, input, capture_output)
        with self.exec_process(
            args, env=env, cwd=cwd, user=user, stdin=stdin, stdout=stdout, stderr=stderr, text=text
        ) as p:
            try:
                out, err = p.communicate(input, timeout)
            except BaseException:
                p.kill()
                raise
        r = CompletedProcess(args, p.returncode or 0, out, err, p.signal, {}, self._id)
        if check:
            r.check_returncode()
        return r

    def delete(self, force: bool = False) -> None:
        """Removes the container and everything it made (processes, cgroups, mounts, state).
        A running or paused container is refused with :class:`StateError` unless ``force``
        (then it is killed first). Deleting twice, or a container never created, does
        nothing."""
        self._h.delete(force)
        _live.discard(self)
        self._close_pipes()

    def detach(self) -> None:
        """Lets the container outlive this handle (and this process): it stays under its state
        root, for ``corral delete`` or :meth:`Container.load`."""
        self._h.detach()
        _live.discard(self)

    # -- what it is ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The container's id."""
        return str(self._h.id)

    @property
    def root(self) -> str:
        """The state root it lives under."""
        return os.fspath(self._h.root)

    @property
    def pid(self) -> int:
        """The pid of its init process (in this process's pid namespace); 0 before create."""
        return int(self._h.pid)

    @property
    def state(self) -> str:
        """``"new"`` (not created yet), ``"created"``, ``"running"``, ``"paused"``,
        ``"stopped"``, ``"deleted"`` or ``"detached"``: read from the process itself."""
        return str(self._h.state)

    @property
    def timings(self) -> Dict[str, float]:
        """Seconds per phase of its create and start, in order (see :data:`PHASES`)."""
        return dict(self._h.timings)

    @property
    def networks(self) -> "builtins.list[Dict[str, Any]]":
        """What its networks gave it, one dict per interface in the order of its networks:
        ``network``, ``ifname`` (``"eth0"``...), ``ips`` (CIDR strs, ``"10.89.0.5/16"``),
        ``gateway``, ``mac`` (str or None), ``ports`` (dicts ``host_ip``, ``host_port``,
        ``container_port``, ``protocol``; a free host port asked for is the one chosen).
        Empty for a container on no network, or not created yet. A container from
        :meth:`load` is looked up in :func:`default_store`."""
        return builtins.list(self._h.networks())

    def oci_state(self) -> Dict[str, Any]:
        """Its OCI state as ``corral state`` prints it: ``id``, ``status``, ``pid``,
        ``bundle``, ``created``, ``annotations``."""
        return dict(self._h.oci_state())

    def _exec_wait_fds(self) -> "builtins.list[int]":
        return builtins.list(self._h.exec_wait_fds())

    def _exit(self) -> Optional[Tuple[Optional[int], Optional[int]]]:
        e = self._h.exit
        if e is None and self.state == "stopped":
            e = self._h.poll()
        return e

    def __enter__(self) -> "Container":
        if self.state == "new":
            self.create()
            try:
                self.start()
            except BaseException:
                self.delete(force=True)
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.delete(force=True)

    def __repr__(self) -> str:
        return f"<corral.Container id={self.id!r} state={self.state!r} pid={self.pid}>"


def _flag(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{name}: expected a bool, got {type(v).__name__}")
    return v


def _run_streams(
    stdin: StdioArg, stdout: StdioArg, stderr: StdioArg, input: Any, capture_output: bool
) -> Tuple[StdioArg, StdioArg, StdioArg]:
    if input is not None:
        if stdin is not None:
            raise ValueError("stdin and input arguments may not both be used")
        stdin = PIPE
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        stdout = stderr = PIPE
    return stdin, stdout, stderr


class Pool:
    """A warm pool: ``size`` containers set up ahead from one description (namespaces,
    cgroups with their limits, the root and its mounts), each waiting for the program that
    :meth:`take` gives it. A background thread keeps ``size`` ready::

        with corral.Pool(4, rootfs="/path/rootfs", limits=corral.Limits(pids=64)) as pool:
            c = pool.take(["echo", "hi"], stdout=corral.PIPE)
            c.stdout.read(), c.wait()     # (b'hi\\n', 0)
            c.delete()

    The description takes the keyword arguments of :class:`Container` (``rootfs`` or
    ``bundle``, ``env``, ``cwd``, ``hostname``, ``user``, ``namespaces``, ``mounts``,
    ``limits``, ``seccomp``, ``readonly_root``, ``annotations``, ``root``); its ``args`` are
    given at each take. Ids are ``ID_PREFIX-PID-N``; what a killed earlier pool with the same
    ``id_prefix`` and ``root`` left is removed when this one is made. The first container is
    made before the constructor returns, so a description that cannot run raises here.
    Closing the pool (or leaving its ``with``) removes every container still waiting in it;
    taken containers are the caller's, like any :class:`Container`.
    """

    def __init__(self, size: int = 4, *, id_prefix: Optional[str] = None, **description: Any) -> None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size: expected an int, got {type(size).__name__}")
        if "args" in description:
            raise TypeError("Pool: the program is given to take(), not to the pool")
        for k in ("stdin", "stdout", "stderr", "text", "id"):
            if k in description:
                raise TypeError(f"Pool: {k} is given to take(), not to the pool")
        description.setdefault("args", ["/bin/true"])
        template = Container(**description)
        self._h = _corral.PoolCore(template._h, size, id_prefix)
        self._root = template._h.root

    @property
    def ready(self) -> int:
        """The number of containers waiting now."""
        return self._h.ready

    def take(
        self,
        args: Args,
        *,
        env: Optional[Mapping[str, str]] = None,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
        wait: bool = False,
    ) -> "Container":
        """A container of the pool running ``args`` (looked up in the description's ``PATH``)
        with ``env`` on top of the description's environment and the given stdio (as
        :class:`Container`'s): running when this returns; wait for it and delete it as any
        container. When none is ready one is made here, unless ``wait`` (then this waits for
        the refill)."""
        stdio = _Stdio(stdin, stdout, stderr)
        try:
            core = self._h.take(args, env, tuple(stdio.child), _flag("wait", wait))
        except BaseException:
            stdio.close_all()
            raise
        stdio.close_ours()
        c = Container.__new__(Container)
        c.args = args
        c._text = bool(text)
        c._owner = os.getpid()
        c._stdio = stdio
        c._h = core
        c._id = core.id
        c.stdin, c.stdout, c.stderr = stdio.files()
        _live.add(c)
        return c

    def close(self) -> None:
        """Stops the refill and removes every container still waiting in the pool."""
        self._h.close()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def network_create(
    name: str,
    *,
    store: Union[str, "os.PathLike[str]", ImageStore, None] = None,
    subnet: Optional[str] = None,
    gateway: Optional[str] = None,
) -> Dict[str, Any]:
    """Makes the network ``name`` in ``store`` (default :func:`default_store`): a bridge
    with a subnet of its own (``subnet``, CIDR; default the next free ``/24`` of
    10.90.0.0/16) and its ``gateway`` (default the subnet's first address). Containers on it
    reach each other by name. Returns it as :func:`network_list` shows it."""
    return dict(_corral.network_create(name, store, subnet, gateway))


def network_list(store: Union[str, "os.PathLike[str]", ImageStore, None] = None) -> "builtins.list[Dict[str, Any]]":
    """The networks of ``store`` (default :func:`default_store`), ``bridge`` first, as dicts:
    ``name``, ``file``, ``cni_version``, ``plugins``, ``bridge``, ``subnets``, ``gateways``,
    ``containers`` (container id to its addresses)."""
    return builtins.list(_corral.network_list(store))


def network_remove(name: str, *, store: Union[str, "os.PathLike[str]", ImageStore, None] = None) -> None:
    """Removes the network ``name`` of ``store``; a network a container is on raises
    :class:`StateError`, and the default network ``bridge`` is not removed."""
    _corral.network_remove(name, store)


def run(
    args: Optional[Args] = None,
    *,
    rootfs: Union[str, "os.PathLike[str]", None] = None,
    bundle: Union[str, "os.PathLike[str]", None] = None,
    stdin: StdioArg = None,
    stdout: StdioArg = None,
    stderr: StdioArg = None,
    input: Union[bytes, str, None] = None,
    capture_output: bool = False,
    timeout: Optional[float] = None,
    check: bool = False,
    text: bool = False,
    **kwargs: Any,
) -> CompletedProcess:
    """Runs a container to its end and removes it, as ``subprocess.run`` runs a program.

    ``args``, ``rootfs`` or ``bundle`` and every other keyword of :class:`Container`
    (``env``, ``cwd``, ``hostname``, ``user``, ``namespaces``, ``mounts``, ``limits``, ``id``,
    ``root``...) describe it. ``stdin``/``stdout``/``stderr``: None (this process's own), PIPE,
    DEVNULL, STDOUT, an fd or a file object. ``input``: bytes (str with ``text``) fed to its
    stdin. ``capture_output``: stdout and stderr are read into the result. ``timeout``
    (seconds): when it runs out, every process of the container is killed, the container
    removed and :class:`TimeoutExpired` raised with what was read. ``check``: a non-zero
    return code raises :class:`CalledProcessError`. ``text``: output as str (UTF-8).

    Returns a :class:`CompletedProcess` with ``returncode`` (``-N`` if signal N killed it),
    ``signal``, ``stdout``, ``stderr`` and the spawn's ``timings`` per phase. A container
    that cannot be made raises :class:`SpawnError` (or :class:`ConfigError`), and nothing of it
    is left.
    """
    stdin, stdout, stderr = _run_streams(stdin, stdout, stderr, input, capture_output)
    c = Container(
        args, rootfs=rootfs, bundle=bundle, stdin=stdin, stdout=stdout, stderr=stderr, text=text, **kwargs
    )
    try:
        c.create()
        c.start()
        try:
            out, err = c.communicate(input, timeout)
        except BaseException:
            try:
                c.kill(_signal.SIGKILL, all=True)
            except Error:
                pass
            raise
        result = CompletedProcess(
            args, c.returncode or 0, out, err, c.signal, c.timings, c.id
        )
    finally:
        c.delete(force=True)
    if check:
        result.check_returncode()
    return result
