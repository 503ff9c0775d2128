"""Where a job may read and write: paths and URIs resolved through pyarrow's file systems,
checked against the allowed roots, globbed and listed.

A local path is checked by its real path (every `..` and symlink resolved), each listed file
too, so a symlink inside an allowed directory cannot lead out of it. An `s3://` URI has no
symlinks; a `..` segment in one is refused outright.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow.fs as pafs

SUPPORTED_SUFFIXES: Final = (".json", ".jsonl", ".ndjson", ".csv", ".parquet")
_MAGIC: Final = re.compile(r"[*?\[]")


class StorageError(ValueError):
    """A request names something a job cannot use; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class InputFile:
    uri: str  # what the job reports as a record's `source`
    size: int


@dataclass(frozen=True, slots=True)
class StorageConfig:
    roots: tuple[str, ...] = ()
    s3_endpoint: str | None = None  # host:port or http(s)://host:port (S3-compatible servers)
    s3_region: str | None = None


def split_roots(text: str | None) -> tuple[str, ...]:
    """CLEANSERVE_JOB_ROOTS: colon-separated, where `s3://bucket/x` keeps its own colon."""
    if not text:
        return ()
    roots: list[str] = []
    for piece in text.split(":"):
        if piece.startswith("//") and roots and "/" not in roots[-1]:
            roots[-1] += ":" + piece
        elif piece:
            roots.append(piece)
    return tuple(roots)


def is_uri(target: str) -> bool:
    return "://" in target


def supported(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(SUPPORTED_SUFFIXES)


class Storage:
    """Resolves, checks and lists job paths; picklable (file systems are made on demand)."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._roots = [self._normal_root(root) for root in config.roots]

    # -- file systems ---------------------------------------------------------------------------

    def filesystem(self, uri: str) -> tuple[Any, str]:
        """(pyarrow file system, path inside it) for a local path or an s3:// URI."""
        if not is_uri(uri):
            return pafs.LocalFileSystem(), uri
        scheme, _, rest = uri.partition("://")
        if scheme != "s3":
            raise StorageError(f"{uri}: unsupported scheme {scheme!r} (use a path or s3://)")
        options: dict[str, Any] = {}
        if endpoint := self.config.s3_endpoint:
            if "://" in endpoint:
                options["scheme"], _, endpoint = endpoint.partition("://")
            options["endpoint_override"] = endpoint
        if self.config.s3_region:
            options["region"] = self.config.s3_region
        return pafs.S3FileSystem(**options), rest

    # -- checks ---------------------------------------------------------------------------------

    def _normal_root(self, root: str) -> str:
        if is_uri(root):
            return self._normal_uri(root).rstrip("/")
        return os.path.realpath(root)

    @staticmethod
    def _normal_uri(uri: str) -> str:
        scheme, _, rest = uri.partition("://")
        if ".." in rest.split("/"):
            raise StorageError(f"{uri}: '..' is not allowed in a URI", 403)
        return f"{scheme}://{posixpath.normpath(rest) if rest else rest}"

    def check(self, target: str) -> str:
        """The target in normal form (a real path, or a URI), if it lies under an allowed root;
        else a StorageError (403) that names it."""
        if not self._roots:
            raise StorageError(
                "jobs are disabled: no allowed roots (set job_roots / CLEANSERVE_JOB_ROOTS)", 403
            )
        if is_uri(target):
            normal = self._normal_uri(target)
            self.filesystem(normal)  # an unsupported scheme is a 400, not a 403
        elif not os.path.isabs(target):
            raise StorageError(f"{target}: use an absolute path (or an s3:// URI)", 400)
        else:
            normal = os.path.realpath(target)
        for root in self._roots:
            if normal == root or normal.startswith(root.rstrip("/") + "/"):
                return normal
        raise StorageError(f"{target}: outside the allowed roots", 403)

    # -- listing --------------------------------------------------------------------------------

    def expand(self, inputs: Sequence[str], *, exclude: str | None = None) -> list[InputFile]:
        """Every file the inputs name: files as given, directories' supported files
        (recursively), globs (`*`, `?`, `[...]` within a name, `**` across directories).
        Sorted per input, in input order, each file once."""
        files: dict[str, InputFile] = {}
        for target in inputs:
            matched = self._expand_one(target, exclude)
            if not matched:
                raise StorageError(f"{target}: no file matches", 400)
            for item in matched:
                files.setdefault(item.uri, item)
        return list(files.values())

    def _expand_one(self, target: str, exclude: str | None) -> list[InputFile]:
        magic = _MAGIC.search(target)
        if magic is None:
            normal = self.check(target)
            fs, path = self.filesystem(normal)
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.File:
                if not supported(normal):
                    raise StorageError(
                        f"{target}: unsupported file type (use {', '.join(SUPPORTED_SUFFIXES)}, "
                        "each optionally .gz)",
                        400,
                    )
                return [InputFile(normal, info.size)]
            if info.type == pafs.FileType.Directory:
                return self._walk(normal, None, exclude)
            raise StorageError(f"{target}: no such file or directory", 404)
        base = target[: magic.start()].rpartition("/")[0] or (
            "/" if target.startswith("/") else "."
        )
        normal_base = self.check(base)
        # The pattern is matched against the resolved base plus the rest, so `..` and symlinks
        # in the base cannot make a match land elsewhere.
        rest = target[len(base) :].lstrip("/")
        pattern = glob_regex(normal_base.rstrip("/") + "/" + rest)
        return self._walk(normal_base, pattern, exclude)

    def _walk(
        self, normal_dir: str, pattern: re.Pattern[str] | None, exclude: str | None
    ) -> list[InputFile]:
        fs, path = self.filesystem(normal_dir)
        prefix = normal_dir[: len(normal_dir) - len(path)] if is_uri(normal_dir) else ""
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        out: list[InputFile] = []
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != pafs.FileType.File:
                continue
            uri = prefix + info.path
            if exclude and (uri == exclude or uri.startswith(exclude.rstrip("/") + "/")):
                continue
            if pattern is not None:
                if not pattern.fullmatch(uri):
                    continue
            elif not supported(uri):
                continue
            if not is_uri(uri):
                self.check(uri)  # a symlink inside the directory may point anywhere
            out.append(InputFile(uri, info.size))
        return out

    # -- output ---------------------------------------------------------------------------------

    def output_entries(self, normal_dir: str) -> list[str]:
        fs, path = self.filesystem(normal_dir)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return []
        if info.type != pafs.FileType.Directory:
            raise StorageError(f"{normal_dir}: exists and is not a directory", 409)
        selector = pafs.FileSelector(path, recursive=False, allow_not_found=True)
        return sorted(posixpath.basename(i.path) for i in fs.get_file_info(selector))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A shell-style glob as an anchored regex: `*`, `?` and `[...]` stay within one path
    segment, `**/` spans any number of them."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out))


class AtomicOutput:
    """A file written whole or not at all: readers see the old one or the new one, never a
    part. Local: a temporary name beside it, renamed at the end. S3: one upload, which S3 makes
    visible only when it completes (and aborts on error)."""

    def __init__(self, fs: Any, path: str, *, local: bool) -> None:
        self._fs = fs
        self._path = path
        self._local = local
        self._tmp = f"{posixpath.dirname(path)}/.tmp-{posixpath.basename(path)}-{uuid.uuid4().hex}"
        self.stream: Any = None

    def __enter__(self) -> AtomicOutput:
        path = self._tmp if self._local else self._path
        self.stream = self._fs.open_output_stream(path, compression=None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if self.stream is None:  # it never opened
            return
        if exc is None:
            self.stream.close()
            if self._local:
                os.replace(self._tmp, self._path)
            return
        if self._local:
            self.stream.close()
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
        else:
            with contextlib.suppress(Exception):
                self.stream.abort()


def atomic_output(fs: Any, path: str, *, local: bool) -> AtomicOutput:
    return AtomicOutput(fs, path, local=local)
