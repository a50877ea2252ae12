"""Let torch>=2.6's safe ``torch.load`` read MMEngine checkpoints (resume).

torch now loads with ``weights_only=True``; MMEngine 0.10.7 checkpoints hold numpy arrays
and scalars and the message hub's ``HistoryBuffer`` objects, whose pickled state names
their statistics methods through ``builtins.getattr``. Instead of switching safe loading
off for every file, we allow exactly these globals, and map ``builtins.getattr`` to a
getattr that resolves only ``HistoryBuffer``'s own methods: any other use of getattr in a
file still fails to load.
"""
import builtins
import pickle
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_installed = False


def _history_buffer_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and isinstance(name, str) and not name.startswith('_') \
            and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint with '
                                 'weights_only=True: only HistoryBuffer methods are allowed')


def _numpy_globals() -> List[Any]:
    dtypes = [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                          np.int32, np.int64, np.uint8, np.bool_)]
    return [np.core.multiarray._reconstruct, np.core.multiarray.scalar, np.ndarray, np.dtype,
            *dtypes]


def install_safe_checkpoint_globals() -> None:
    """Allow MMEngine checkpoints under ``torch.load(weights_only=True)`` (idempotent)."""
    global _installed
    if _installed or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    torch.serialization.add_safe_globals([
        *_numpy_globals(), HistoryBuffer,
        (_history_buffer_getattr, f'{builtins.__name__}.getattr'),
    ])
    _installed = True
