"""Atomic file writes shared by the tools (a reader never sees a half-written file)."""
import os
import os.path as osp
import tempfile

__all__ = ['atomic_write']


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace`` (creates the folder).

    Args:
        path (str): Destination file.
        data (bytes): Full content.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
