"""The exceptions of corral.

Every error corral raises is a :class:`corral.Error`, with three attributes that say what went
wrong and where:

``step``
    the step that failed, in a word: ``"config"`` (bad input), ``"id"``, ``"state"``,
    ``"cgroup"``, ``"rootfs"``, ``"hook"``, ``"spawn"``, or the container process's own set-up
    step (``"mount"``, ``"pivot_root"``, ``"exec"``...).
``errno``
    the errno that best says why (``errno.ENOENT`` for an executable that was not found,
    ``errno.EINVAL`` for bad input, ``errno.EBUSY`` for a wrong state...).
``path``
    the file, config field or argument it concerns, or None.

A wrong Python type raises the built-in ``TypeError``, naming the argument.
"""

from __future__ import annotations

import errno as _errno
from typing import Any, Optional, Sequence, Union

__all__ = [
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


class Error(Exception):
    """The base class of corral's errors: ``step``, ``errno`` and ``path`` say what failed,
    why and where (each may be None)."""

    step: Optional[str]
    errno: Optional[int]
    path: Optional[str]

    def __init__(
        self,
        message: str = "",
        *,
        step: Optional[str] = None,
        errno: Optional[int] = None,
        path: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.step = step
        self.errno = errno
        self.path = path

    def __str__(self) -> str:
        return self.message


class ConfigError(Error, ValueError):
    """Bad input: a value, a config field, a root filesystem or a bundle that cannot be used.
    ``path`` names the argument or the config field. Also a ``ValueError``."""


class NotFoundError(Error, LookupError):
    """No container has this id under this state root, or no image this name in the image
    store. Also a ``LookupError``."""


class StateError(Error):
    """The container's state does not allow the call (starting a running container, deleting
    a running one without ``force``, an id that is taken...)."""


class SpawnError(Error):
    """Making, starting or running the container failed: ``step`` says which step (a
    cgroup, a mount, the exec...), ``errno`` why and ``path`` on what."""


class ImageError(Error):
    """The image store failed (``step`` is ``"image"``): a file or a layer of the store could
    not be read or written (``path`` names it), a layer was refused. A missing image raises
    :class:`NotFoundError` and a bad name or archive :class:`ConfigError` instead."""


class CorralWarning(RuntimeWarning):
    """What the runtime warns of while it makes or starts a container (``warnings.warn``):
    a limit the host cannot enforce (a swap limit without swap accounting...), a
    ``startContainer`` hook that failed (the container's program did not run)."""


class TimeoutExpired(Error, TimeoutError):
    """The time given to ``wait``, ``run`` or ``exec`` ran out. As ``subprocess``'s: ``cmd``,
    ``timeout``, and what was read so far in ``stdout``/``output`` and ``stderr``. Also a
    ``TimeoutError``."""

    def __init__(
        self,
        cmd: Any,
        timeout: float,
        output: Union[bytes, str, None] = None,
        stderr: Union[bytes, str, None] = None,
        *,
        id: Optional[str] = None,
    ) -> None:
        super().__init__(
            f"container {id!r}: {_cmd(cmd)} timed out after {timeout} seconds"
            if id
            else f"{_cmd(cmd)} timed out after {timeout} seconds",
            step="wait",
            errno=_errno.ETIMEDOUT,
        )
        self.cmd = cmd
        self.timeout = timeout
        self.output = output
        self.stderr = stderr
        self.id = id

    @property
    def stdout(self) -> Union[bytes, str, None]:
        """What the process wrote on its stdout before the time ran out (same as output)."""
        return self.output

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (type(self), (self.cmd, self.timeout, self.output, self.stderr), {"id": self.id}),
        )


class CalledProcessError(Error):
    """``check=True`` and the process failed: ``returncode`` (the exit code, or ``-N`` for
    signal N), ``signal`` (N, or None), ``cmd``, ``stdout``/``output`` and ``stderr``."""

    def __init__(
        self,
        returncode: int,
        cmd: Any,
        output: Union[bytes, str, None] = None,
        stderr: Union[bytes, str, None] = None,
        *,
        signal: Optional[int] = None,
        id: Optional[str] = None,
    ) -> None:
        how = f"was killed by signal {signal}" if signal else f"exited with {returncode}"
        where = f"container {id!r}: " if id else ""
        super().__init__(f"{where}{_cmd(cmd)} {how}", step="exit")
        self.returncode = returncode
        self.cmd = cmd
        self.output = output
        self.stderr = stderr
        self.signal = signal
        self.id = id

    @property
    def stdout(self) -> Union[bytes, str, None]:
        """What the process wrote on its stdout (same as output)."""
        return self.output

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (
                type(self),
                (self.returncode, self.cmd, self.output, self.stderr),
                {"signal": self.signal, "id": self.id},
            ),
        )


def _rebuild(cls: Any, args: Sequence[Any], kwargs: Any) -> Any:
    return cls(*args, **kwargs)


def _cmd(cmd: Any) -> str:
    if isinstance(cmd, (list, tuple)):
        return " ".join(str(a) for a in cmd) or "the container"
    return "the container" if cmd is None else str(cmd)
