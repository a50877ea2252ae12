"""``DataMapRecording``: a model records its training confidences only inside ``recording``.

:class:`~mtl_plugin.engine.hooks.DataMapHook` hands its recorder to the model around each
recorded training iteration::

    with model.recording(recorder):
        model.train_step(data, optim_wrapper)

and the model's ``loss()`` reads :attr:`DataMapRecording.data_map_recorder` (None outside
the block). Nothing is set on the class, and the recorder is gone when the block ends.
"""
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ['DataMapRecording']


class DataMapRecording:
    """Mixin of the models that report each gold label's confidence from ``loss()``."""

    @property
    def data_map_recorder(self) -> Optional[Any]:
        """DataMapRecorder | None: The recorder of the enclosing :meth:`recording` block."""
        return self.__dict__.get('_data_map_recorder')

    @contextmanager
    def recording(self, recorder: Any) -> Iterator[None]:
        """Within the block, ``loss()`` also reports its confidences to ``recorder``.

        Args:
            recorder (DataMapRecorder): Has ``record(samples, confidences, correct)`` (and
                ``predict_cfg(head_test_cfg)`` for detectors).
        """
        if recorder is None or not callable(getattr(recorder, 'record', None)):
            raise TypeError(f'{type(self).__name__}.recording needs a recorder with a '
                            f'record() method (a DataMapRecorder), but got {recorder!r}')
        previous = self.__dict__.get('_data_map_recorder')
        self.__dict__['_data_map_recorder'] = recorder
        try:
            yield
        finally:
            self.__dict__['_data_map_recorder'] = previous
