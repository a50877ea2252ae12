"""Per-head train / test configs of ``MultiHeadDetector``."""
import copy
from typing import Dict, Optional, Sequence, Union

from mmengine.config import ConfigDict

__all__ = ['CfgDict', 'per_head', 'config']

CfgDict = Union[dict, ConfigDict]


def per_head(cfg: Optional[CfgDict], heads: Sequence[str]) -> Dict[str, Optional[dict]]:
    """Split a train/test cfg into one cfg per head.

    ``cfg`` is either shared by every head, or keyed by head name (plus an optional
    ``default`` for the heads it does not name).
    """
    cfg = dict(cfg or {})
    if any(h in cfg for h in heads) or 'default' in cfg:
        default = cfg.get('default')
        unknown = set(cfg) - set(heads) - {'default'}
        if unknown:
            raise KeyError(f'per-head cfg names unknown heads {sorted(unknown)}; heads: '
                           f'{list(heads)}')
        return {h: config(cfg.get(h, default)) for h in heads}
    return {h: config(cfg) for h in heads}


def config(cfg: Optional[dict]) -> Optional[ConfigDict]:
    """Heads read their cfgs by attribute (``test_cfg.nms_pre``)."""
    return ConfigDict(copy.deepcopy(cfg)) if cfg else None
