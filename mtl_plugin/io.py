"""The one atomic file writer (a reader never sees a half-written file).

Low in the package (imports nothing from it), so datasets, models, engine, evaluation,
analysis and tools may all use it.
"""
import os
import os.path as osp
import tempfile
from typing import Callable, Union

__all__ = ['atomic_write']


def atomic_write(path: str, data: Union[bytes, str, Callable[[str], None]]) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``.

    The folder is created. On any error the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path (str): Destination file.
        data (bytes | str | Callable[[str], None]): The full content (``str`` is written
            as UTF-8), or a function that writes the content to the temporary path it is
            given (e.g. ``lambda tmp: fig.savefig(tmp, format='png')``).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, 'wb') as f:
                f.write(data.encode('utf-8') if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
