"""The folder behind lesson 08's file servers: what GET may read and where PUT writes.

Shared by ``selectors_files`` and ``gevent_files``, so both servers differ only in how they
wait for sockets. Names are checked by ``labkit.protocol.check_name`` (no paths); here we also
refuse anything whose real path leaves the folder (a symbolic link out).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from labkit.protocol import ProtocolError, check_name, ok_header

__all__ = ["FileStore", "Upload", "add_arguments", "from_arguments"]


class Upload:
    """One PUT in progress: bytes go to a temporary file, renamed into place when complete."""

    def __init__(self, folder: Path, name: str) -> None:
        self.final = folder / name
        self.file = tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False)
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)              # a local disk write: fast enough not to matter here
        self.sha.update(data)

    def finish(self) -> bytes:
        """Make the file visible and return the OK reply confirming its hash."""
        self.file.close()
        os.replace(self.file.name, self.final)
        return ok_header(0, self.sha.hexdigest())

    def discard(self) -> None:
        """The client left mid-upload: an incomplete file must never become visible."""
        self.file.close()
        os.unlink(self.file.name)


class FileStore:
    def __init__(self, root: Path, upload_dir: Path) -> None:
        self.root, self.upload_dir = Path(root).resolve(), Path(upload_dir)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self._sha: dict[str, tuple[int, int, str]] = {}   # name -> (mtime, size, sha256)

    def lookup(self, name: str) -> tuple[Path, bytes]:
        """The file's path and its OK header; ProtocolError 404 if it is not ours to serve."""
        path = self.root / check_name(name)
        if not path.is_file() or path.resolve().parent != self.root:
            raise ProtocolError(404, f"no such file: {name}")
        stat = path.stat()
        cached = self._sha.get(name)
        if not cached or cached[:2] != (stat.st_mtime_ns, stat.st_size):
            cached = (stat.st_mtime_ns, stat.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            self._sha[name] = cached                       # hash each file once, not per GET
        return path, ok_header(stat.st_size, cached[2])

    def listing(self) -> bytes:
        """The whole LIST reply: header and one "name size" line per file."""
        files = sorted(p for p in self.root.iterdir() if p.is_file() and not p.is_symlink())
        body = "".join(f"{p.name} {p.stat().st_size}\n" for p in files).encode()
        return ok_header(len(body), hashlib.sha256(body).hexdigest()) + body

    def upload(self, name: str) -> Upload:
        return Upload(self.upload_dir, check_name(name))


def add_arguments(p) -> None:
    """The command-line options both file servers share."""
    default_root = Path(__file__).resolve().parent.parent / "data"
    p.add_argument("--root", default=str(default_root), help="folder whose files GET serves")
    p.add_argument("--upload-dir", default="", help="where PUT stores files (default: a new "
                                                     "temporary folder)")
    p.add_argument("--max-upload", type=int, default=64 << 20, help="largest PUT, in bytes")


def from_arguments(args) -> FileStore:
    upload_dir = Path(args.upload_dir or tempfile.mkdtemp(prefix="asynclab-uploads-"))
    print(f"serving {args.root}, uploads go to {upload_dir}", flush=True)
    return FileStore(Path(args.root), upload_dir)
