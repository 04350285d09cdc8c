"""The folder behind lesson 08's file servers: what GET may read and where PUT writes.

Shared by ``selectors_files`` and ``gevent_files``, so both servers differ only in how they
wait for sockets. Names are checked by ``labkit.protocol.check_name`` (no paths); here we also
refuse anything whose real path leaves the folder (a symbolic link out).

Every ``OSError`` (no descriptor left, a full disk) becomes a ``ProtocolError`` with its ERR
code, so a server answers it like any other refusal instead of dying of it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from labkit.protocol import ProtocolError, check_name, ok_header

__all__ = ["FileStore", "Upload", "add_arguments", "from_arguments", "setup", "refusing"]

# Our unfinished uploads: hidden (LIST and GET refuse names starting with "."), and marked with
# our process id, so that at stop we delete ours and nothing else.
PART_PREFIX = f".part-{os.getpid()}-"


@contextlib.contextmanager
def refusing(doing: str) -> Iterator[None]:
    """Turn an OSError into the refusal a client understands: 503 when the process is out of
    descriptors (try again later), 500 for anything else."""
    try:
        yield
    except OSError as err:
        code = 503 if err.errno in (errno.EMFILE, errno.ENFILE) else 500
        raise ProtocolError(code, f"could not {doing}: {err.strerror or err}") from None


class Upload:
    """One PUT in progress: bytes go to a temporary file, renamed into place when complete.
    On any disk error the temporary file is deleted and ProtocolError (500/503) is raised."""

    def __init__(self, folder: Path, name: str) -> None:
        self.final = folder / name
        with refusing("start the upload"):
            self.file = tempfile.NamedTemporaryFile(dir=folder, prefix=PART_PREFIX, delete=False)
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        with self._or_discard():
            self.file.write(data)  # a local disk write: fast enough not to matter here
        self.sha.update(data)

    def finish(self) -> bytes:
        """Make the file visible and return the OK reply confirming its hash."""
        with self._or_discard():
            self.file.close()
            os.replace(self.file.name, self.final)
        return ok_header(0, self.sha.hexdigest())

    def discard(self) -> None:
        """The client left mid-upload: an incomplete file must never become visible."""
        with contextlib.suppress(OSError):  # a full disk may fail the flush; unlink anyway
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file.name)

    @contextlib.contextmanager
    def _or_discard(self) -> Iterator[None]:
        try:
            with refusing(f"store {self.final.name}"):
                yield
        except ProtocolError:
            self.discard()
            raise


class FileStore:
    def __init__(self, root: Path, upload_dir: Path, own_upload_dir: bool = False) -> None:
        self.root, self.upload_dir = Path(root).resolve(), Path(upload_dir)
        self.own_upload_dir = own_upload_dir  # we made it, so we remove it at stop
        self._sha: dict[str, tuple[int, int, str]] = {}  # name -> (mtime, size, sha256)

    def open(self, name: str) -> tuple[bytes, io.BufferedReader]:
        """The OK header of file ``name`` and the file, open for reading. ProtocolError 404 if
        it is not ours to serve, 503 if no descriptor is left to open it."""
        path = self.root / check_name(name)
        with refusing(f"open {name}"):
            if not path.is_file() or path.resolve().parent != self.root:
                raise ProtocolError(404, f"no such file: {name}")
            file = open(path, "rb")
            try:
                return self._header(name, file), file
            except BaseException:
                file.close()
                raise

    def _header(self, name: str, file: io.BufferedReader) -> bytes:
        stat = os.fstat(file.fileno())  # of the file we send, not the path
        cached = self._sha.get(name)
        if not cached or cached[:2] != (stat.st_mtime_ns, stat.st_size):
            digest = hashlib.file_digest(file, "sha256").hexdigest()
            cached = (stat.st_mtime_ns, stat.st_size, digest)
            file.seek(0)
            self._sha[name] = cached  # hash each file once, not per GET
        return ok_header(stat.st_size, cached[2])

    def listing(self) -> bytes:
        """The whole LIST reply: header and one "name size" line per file GET would serve."""
        with refusing("list the folder"):
            files = sorted(p for p in self.root.iterdir() if _servable(p))
            body = "".join(f"{p.name} {p.stat().st_size}\n" for p in files).encode()
        return ok_header(len(body), hashlib.sha256(body).hexdigest()) + body

    def upload(self, name: str) -> Upload:
        return Upload(self.upload_dir, check_name(name))

    def close(self) -> None:
        """When the server stops: delete our unfinished uploads, and the upload folder if we
        made it. A folder the user gave keeps everything but our ``.part-`` files."""
        for part in self.upload_dir.glob(PART_PREFIX + "*"):
            part.unlink(missing_ok=True)
        if self.own_upload_dir:
            shutil.rmtree(self.upload_dir, ignore_errors=True)


def _servable(path: Path) -> bool:
    """A plain file whose name GET accepts (so never one of our hidden ``.part-`` files)."""
    try:
        check_name(path.name)
    except ProtocolError:
        return False
    return path.is_file() and not path.is_symlink()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command-line options both file servers share."""
    default_root = Path(__file__).resolve().parent.parent / "data"
    p.add_argument("--root", default=str(default_root), help="folder whose files GET serves")
    p.add_argument(
        "--upload-dir",
        default="",
        help="where PUT stores files (default: a new temporary folder, removed at stop)",
    )
    p.add_argument("--max-upload", type=int, default=64 << 20, help="largest PUT, in bytes")


def setup(args: argparse.Namespace) -> Callable[[], None]:
    """Both file servers' setup (``launch.run(..., setup=filestore.setup)``): before READY,
    check and make the folders (a bad --root stops the server with the reason), put the store
    on ``args.store``, and hand back its clean-up: no unfinished upload outlives the server."""
    args.store = from_arguments(args)
    return args.store.close


def from_arguments(args: argparse.Namespace) -> FileStore:
    """Check and make the folders; an OSError here says which option is wrong (the servers call
    this before READY, so ``labkit.serve`` fails with the reason)."""
    root = Path(args.root)
    if not root.is_dir():
        raise NotADirectoryError(f"--root {root}: no such folder")
    if args.upload_dir:
        upload_dir = Path(args.upload_dir)
        upload_dir.mkdir(parents=True, exist_ok=True)  # raises, naming the path, if it can't
        if not os.access(upload_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"--upload-dir {upload_dir}: not writable")
    else:
        upload_dir = Path(tempfile.mkdtemp(prefix="asynclab-uploads-"))
    print(f"serving {root}, uploads go to {upload_dir}", flush=True)
    return FileStore(root, upload_dir, own_upload_dir=not args.upload_dir)
