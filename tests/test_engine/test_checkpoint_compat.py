import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mtl_plugin  # noqa: F401  (installs the safe globals)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('iter', np.int64(3))
    ckpt = dict(meta=dict(seed=np.int64(0), arr=np.arange(3, dtype=np.float32)),
                message_hub=hub.state_dict(), state_dict=dict(w=torch.ones(2)))
    torch.save(ckpt, tmp_path / 'c.pth')
    with zipfile.ZipFile(tmp_path / 'c.pth') as zf:
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith('data.pkl')))
    assert b'getattr' in pkl and b'HistoryBuffer' in pkl  # really needs the allow-list
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.current() == 1.5 and buf.mean() == 1.5
    assert loaded['meta']['arr'].tolist() == [0, 1, 2]


class _Getattr:
    def __init__(self, obj, name):
        self.args = (obj, name)

    def __reduce__(self):
        return getattr, self.args


@pytest.mark.parametrize('obj, name', [(np.ndarray, 'tofile'), (HistoryBuffer, '__class__'),
                                       (HistoryBuffer, '_set_default_statistics')])
def test_other_getattr_calls_are_still_refused(tmp_path, obj, name):
    torch.save(dict(x=_Getattr(obj, name)), tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(tmp_path / 'evil.pth', weights_only=True)


def test_allowed_getattr_returns_history_buffer_method(tmp_path):
    torch.save(dict(x=_Getattr(HistoryBuffer, 'mean')), tmp_path / 'ok.pth')
    assert torch.load(tmp_path / 'ok.pth', weights_only=True)['x'] is HistoryBuffer.mean
