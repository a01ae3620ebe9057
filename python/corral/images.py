"""corral's images from Python: an image store, as ``corral image ...`` uses it.

An :class:`ImageStore` is a directory (default ``$CORRAL_STORE``, else ``/var/lib/corral``)
holding images, their layers (each unpacked once, shared read-only by the containers made
from it) and a build cache::

    from corral.images import ImageStore

    store = ImageStore("/var/lib/corral")
    store.import_("rootfs.tar", "base:1")            # a root filesystem, docker save, OCI layout
    store.build("ctx/", tags=["app:1"], build_args={"V": "2"},
                progress=lambda ev: print(ev["line"]))
    store.tag("app:1", "app:latest")
    [i["reference"] for i in store.list()]          # ['app:1', 'app:latest', 'base:1']
    store.remove("app:latest")                      # {'untagged': ['app:latest'], 'deleted': []}
    store.prune()                                   # {'layers': 0, ..., 'bytes': 0}

    corral.run(["echo", "hi"], image="app:1", store=store)

The calls that take time (import, build, remove, prune) release the GIL. Errors are
:class:`corral.Error`\\ s: a missing image raises :class:`corral.NotFoundError`, a bad name,
archive or Dockerfile :class:`corral.ConfigError`, a failure of the store itself
:class:`corral.ImageError`; each has ``step == "image"``.
"""

from __future__ import annotations

import builtins
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

from . import _corral

__all__ = ["ImageStore", "default_store"]

_Path = Union[str, "os.PathLike[str]"]


def default_store() -> str:
    """corral's default image store: ``$CORRAL_STORE``, else ``/var/lib/corral``."""
    return str(_corral.default_store())


class ImageStore:
    """The image store in the directory ``path`` (default :func:`default_store`), made if
    it is not there. It must be owned by this user and writable by nobody else (what is in
    it is trusted); the checks run at each call."""

    def __init__(self, path: Optional[_Path] = None) -> None:
        self.path: str = default_store() if path is None else os.fspath(path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"ImageStore({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def import_(self, path: _Path, name: Optional[str] = None) -> "builtins.list[Dict[str, Any]]":
        """Imports ``path``: a root filesystem (a directory or a tarball, as ``docker
        import``), a ``docker save`` tarball or directory, or an OCI image layout (a
        directory or a tar). Returns one dict per image made: ``id`` (``sha256:...``) and
        ``names`` (the names it got). With ``name`` (``NAME[:TAG]``), the archive must hold
        one image and it gets that name only; without, each image gets the names the archive
        carries. A refused archive leaves nothing behind."""
        return builtins.list(_corral.image_import(self.path, path, name))

    def build(
        self,
        context: _Path,
        dockerfile: Optional[_Path] = None,
        *,
        tags: Iterable[str] = (),
        build_args: Optional[Mapping[str, str]] = None,
        target: Optional[str] = None,
        no_cache: bool = False,
        network: str = "none",
        root: Optional[_Path] = None,
        progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> Dict[str, Any]:
        """Builds the Dockerfile ``dockerfile`` (default ``CONTEXT/Dockerfile``) with the
        build context ``context``, as ``docker build``, and names the image ``tags``
        (``NAME[:TAG]`` each). ``build_args``: values of the Dockerfile's ``ARG``\\ s.
        ``target``: build up to the end of the stage ``FROM ... AS target``. ``no_cache``:
        run every step again. ``network``: ``"none"`` (RUN steps get a network namespace of
        their own, loopback only) or ``"host"``. ``root``: the state root of the RUN steps'
        containers (default :func:`corral.default_root`).

        ``progress`` is called with a dict per event: ``event`` (``"step"``, ``"base"``,
        ``"cached"``, ``"running"``, ``"step_done"``, ``"built"``, ``"tagged"``), its fields
        (``n``, ``total``, ``text``; ``id``; ``container``; ``layer``, ``seconds``;
        ``reference``) and ``line``, the line ``docker build`` prints for it. An exception it
        raises is raised when the build ends. RUN steps' output goes to this process's stdout
        and stderr.

        Returns ``{"id", "short_id", "tags"}``. A build with RUN steps needs this process to
        have one thread while it runs (each RUN step forks a guard that removes its container
        should this process die)."""
        if isinstance(tags, str):
            tags = [tags]
        return dict(
            _corral.image_build(
                self.path,
                context,
                dockerfile,
                builtins.list(tags),
                build_args,
                target,
                _flag("no_cache", no_cache),
                network,
                root,
                progress,
            )
        )

    def tag(self, source: str, target: str) -> None:
        """Gives the image ``source`` (a name or an image ID) the name ``target`` too (a name
        of another image moves)."""
        _corral.image_tag(self.path, source, target)

    def list(self) -> "builtins.list[Dict[str, Any]]":
        """Every name in the store, sorted, as dicts: ``reference`` (``name:tag``), ``name``,
        ``tag``, ``id`` (``sha256:...``), ``short_id``, ``created`` (RFC 3339, or None) and
        ``size`` (bytes of its layers, unpacked)."""
        return builtins.list(_corral.image_list(self.path))

    def remove(self, name: str) -> Dict[str, "builtins.list[str]"]:
        """Removes the name ``name`` (given an image ID: every name of that image). With its
        last name the image goes too, and the layers nothing else uses. An image a live
        container was made from keeps its last name (:class:`corral.ConfigError`). Returns
        ``{"untagged": [names], "deleted": [digests]}``."""
        return dict(_corral.image_remove(self.path, name))

    def prune(self) -> Dict[str, int]:
        """Removes what nothing uses: layers and blobs of no named image or live container,
        records of containers that are gone, build cache entries whose layer is gone, and
        what a command killed halfway left. Returns how many of each went (``layers``,
        ``blobs``, ``containers``, ``cache``, ``temp``) and ``bytes``."""
        return dict(_corral.image_prune(self.path))


def _flag(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{name}: expected a bool, got {type(v).__name__}")
    return v
