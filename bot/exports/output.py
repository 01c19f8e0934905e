"""Writing an export to `-o FILE`: the one way every command writes its file.

The target must be a regular file or absent: a device (`/dev/full`), a folder, a FIFO or a symlink
is refused rather than replaced. The content goes to a temporary file beside the target (same file
system) and is renamed into place only once fully written and flushed to disk, so a failure (disk
full, interrupted export) leaves the earlier file as it was. Callers record their export event only
after `write_file` returns, so no event claims a file that is not there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import click


class OutputRefused(click.ClickException):
    """The target cannot be written safely; nothing was written."""


def check_target(output: Path) -> None:
    """Refuse a target that is not a regular file or absent (checked before any work is done)."""
    try:
        info = os.lstat(output)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputRefused(f"Cannot write {output}: {exc.strerror or exc}") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise OutputRefused(f"Refusing to write {output}: it is a symbolic link; give the real file's path.")
        if not stat.S_ISREG(info.st_mode):
            raise OutputRefused(f"Refusing to write {output}: it exists and is not a regular file (a device, "
                                "folder or pipe); give a file path.")
    if not output.parent.is_dir():
        raise OutputRefused(f"Cannot write {output}: the folder {output.parent} does not exist.")


def checked_output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Click callback for -o FILE: refused up front (before any reading) unless a regular file or absent."""
    if value is not None:
        check_target(Path(value))
    return value


@contextlib.contextmanager
def replacing(output: Path) -> Iterator[Path]:
    """A temporary path beside `output` to write to; renamed over `output` when the block succeeds,
    deleted when it fails. Raises OutputRefused for a target that is not a regular file or absent."""
    output = Path(output)
    check_target(output)
    temporary = _temporary_beside(output)
    try:
        yield temporary
        with open(temporary, "rb+") as written:  # on disk before the rename makes it the file
            os.fsync(written.fileno())
        check_target(output)  # still not a link or device now the work is done
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_file(output: Path, data: bytes | Callable[[Path], None]) -> None:
    """Write `data` (bytes, or a function that writes the given path) to `output` safely.

    Raises OutputRefused (a ClickException) naming the problem; the earlier file stays intact."""
    try:
        with replacing(output) as temporary:
            if callable(data):
                data(temporary)
            else:
                with open(temporary, "wb") as handle:
                    handle.write(data)
    except OutputRefused:
        raise
    except OSError as exc:
        raise OutputRefused(f"Cannot write {output}: {exc.strerror or exc}; any earlier file was left as it "
                            "was.") from None


def _temporary_beside(output: Path) -> Path:
    """A new empty file next to `output` (same file system, so the final rename is atomic)."""
    while True:
        candidate = output.with_name(f".{output.name}.{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputRefused(f"Cannot write {output}: {exc.strerror or exc}") from None
