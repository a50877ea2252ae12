"""Feature alignment and fusion: make maps of different levels, backbones or sources fit.

- :class:`AdaptivePoolAlign`: every map to one spatial size.
- :class:`ChannelAlign`: every map to one channel count (a 1x1 ``ConvModule`` per level).
- :class:`ConcatFusion`: concatenate several sources along C, then a ``ConvModule``.
- :class:`AttentionFusion`: multi-head attention over the spatial tokens of the maps.

Calling convention (shared by the four modules, mmdet-neck style): ``module(feats)`` with a
tuple / list of (B, C, H, W) maps (e.g. backbone levels) returns a tuple;
``module(a, b, ...)`` with tensors returns a tensor, or a tuple when there are several
outputs. So each one drops in as a detector's ``neck`` (``forward(tuple) -> tuple``)::

    neck=dict(type='ChannelAlign', in_channels=[128, 256, 512], out_channels=256)
"""
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...validation import is_int

__all__ = ['AdaptivePoolAlign', 'ChannelAlign', 'ConcatFusion', 'AttentionFusion', 'resize_to']

Maps = Union[Tensor, Sequence[Tensor]]
OptCfg = Optional[Union[dict, List[dict]]]


def _check_positive_int(owner: str, name: str, value: Any) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f'{owner}: {name} must be a positive int, but got {value!r}')
    return int(value)


def _check_channel_list(owner: str, value: Any, min_len: int) -> List[int]:
    if not isinstance(value, (list, tuple)) or len(value) < min_len \
            or not all(is_int(c) and c >= 1 for c in value):
        raise ValueError(f'{owner}: in_channels must be a list of at least {min_len} positive '
                         f'ints (one per input), but got {value!r}')
    return [int(c) for c in value]


def _unpack(owner: str, inputs: tuple) -> Tuple[List[Tensor], bool]:
    """``forward(seq)`` or ``forward(t1, t2, ...)`` -> (list of (B, C, H, W), seq given)."""
    as_tuple = len(inputs) == 1 and isinstance(inputs[0], (list, tuple))
    maps = list(inputs[0]) if as_tuple else list(inputs)
    if not maps:
        raise ValueError(f'{owner}: got no feature maps; call it with a tuple of (B, C, H, W) '
                         'tensors or with tensors')
    for i, x in enumerate(maps):
        if not isinstance(x, Tensor) or x.dim() != 4:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f'{owner}: input {i} must be a (B, C, H, W) tensor, but got {got!r}')
    return maps, as_tuple


def _pack(outs: List[Tensor], as_tuple: bool) -> Maps:
    return tuple(outs) if as_tuple or len(outs) > 1 else outs[0]


def _check_batch(owner: str, maps: Sequence[Tensor]) -> None:
    sizes = [x.shape[0] for x in maps]
    if len(set(sizes)) > 1:
        raise ValueError(f'{owner}: the inputs must share the batch size to be fused, but got '
                         f'batch sizes {sizes}')


def _check_channels(owner: str, maps: Sequence[Tensor], expected: Sequence[int],
                    name: str = 'in_channels', indexed: bool = True) -> None:
    if len(maps) != len(expected):
        raise ValueError(f'{owner}: expects {len(expected)} inputs (in_channels={list(expected)})'
                         f', but got {len(maps)}')
    for i, (x, c) in enumerate(zip(maps, expected)):
        if x.shape[1] != c:
            where = f'{name}[{i}]' if indexed else name
            raise ValueError(f'{owner}: input {i} should have {c} channels ({where}), but got '
                             f'shape {tuple(x.shape)}')


def resize_to(x: Tensor, size: Tuple[int, int], mode: str = 'avg') -> Tensor:
    """Resize a map to ``size``: adaptive pooling where it shrinks, bilinear where it grows.

    Each spatial dimension is handled on its own: a dimension larger than the target is
    reduced by adaptive average (or max) pooling over bins, a smaller one is upsampled by
    bilinear interpolation (``align_corners=False``), an equal one is left untouched (so a
    map already of size ``size`` comes back unchanged).

    Args:
        x (Tensor): Map of shape (B, C, H, W).
        size (tuple[int, int]): Target (h, w).
        mode (str): ``'avg'`` or ``'max'`` pooling for shrinking. Defaults to ``'avg'``.

    Returns:
        Tensor: Map of shape (B, C, h, w).
    """
    (h, w), (H, W) = size, x.shape[-2:]
    if H > h or W > w:
        pool = F.adaptive_avg_pool2d if mode == 'avg' else F.adaptive_max_pool2d
        x = pool(x, (min(H, h), min(W, w)))
    if H < h or W < w:
        x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
    return x


@MODELS.register_module()
class AdaptivePoolAlign(nn.Module):
    """Bring every map to one spatial size (no parameters).

    A map larger than ``output_size`` is reduced by adaptive pooling (each output cell
    pools its ``torch.nn.AdaptiveAvgPool2d`` bin); a smaller one is upsampled by bilinear
    interpolation; see :func:`resize_to`. Channels and batch sizes are kept.

    Note that a fixed size suits fixed-size inputs (classification, top-down pose crops,
    a detector fed with one image size); a detection head's anchor strides must match.

    Args:
        output_size (int | tuple[int, int]): Target (h, w); an int for a square.
        mode (str): ``'avg'`` or ``'max'`` adaptive pooling. Defaults to ``'avg'``.

    Shapes:
        ``forward(feats)``: tuple of (B_l, C_l, H_l, W_l) -> tuple of (B_l, C_l, h, w);
        ``forward(x)``: (B, C, H, W) -> (B, C, h, w).
    """

    def __init__(self, output_size: Union[int, Sequence[int]], mode: str = 'avg') -> None:
        super().__init__()
        if is_int(output_size):
            output_size = (output_size, output_size)
        if not isinstance(output_size, (list, tuple)) or len(output_size) != 2 \
                or not all(is_int(s) and s >= 1 for s in output_size):
            raise ValueError('AdaptivePoolAlign: output_size must be a positive int or a pair '
                             f'(h, w) of positive ints, but got {output_size!r}')
        if mode not in ('avg', 'max'):
            raise ValueError(f"AdaptivePoolAlign: mode must be 'avg' or 'max', but got {mode!r}")
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.mode = mode

    def forward(self, *inputs: Maps) -> Maps:
        """Resize each map (see the class docstring for shapes)."""
        maps, as_tuple = _unpack('AdaptivePoolAlign', inputs)
        return _pack([resize_to(x, self.output_size, self.mode) for x in maps], as_tuple)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}, mode={self.mode!r}'


@MODELS.register_module()
class ChannelAlign(BaseModule):
    """Bring every map to ``out_channels`` with a 1x1 ``ConvModule`` per level.

    For different backbones or levels that must meet a common width (a shared head,
    a fusion module, a soft-shared neck). Spatial size is kept.

    Args:
        in_channels (int | list[int]): Channels of each input level (one conv per level;
            the number of inputs must match), or one int: a single conv shared by every
            input, whatever their number.
        out_channels (int): Output channels of every level.
        norm_cfg (dict, optional): Norm after the conv, e.g. ``dict(type='BN')``.
            Defaults to None (a plain conv with bias).
        act_cfg (dict, optional): Activation, e.g. ``dict(type='ReLU')``. Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None
            (``ConvModule``'s Kaiming initialisation).

    Shapes:
        ``forward(feats)``: tuple of (B, C_l, H_l, W_l) -> tuple of (B, out_channels, H_l,
        W_l); ``forward(x)``: (B, C, H, W) -> (B, out_channels, H, W).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: int,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels = _check_positive_int('ChannelAlign', 'out_channels', out_channels)
        self.shared = is_int(in_channels)
        if self.shared:
            _check_positive_int('ChannelAlign', 'in_channels', in_channels)
            channels = [int(in_channels)]
        else:
            channels = _check_channel_list('ChannelAlign', in_channels, 1)
        self.in_channels = channels
        self.convs = nn.ModuleList(
            ConvModule(c, self.out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for c in channels)

    def forward(self, *inputs: Maps) -> Maps:
        """Project each map (see the class docstring for shapes)."""
        maps, as_tuple = _unpack('ChannelAlign', inputs)
        convs = [self.convs[0]] * len(maps) if self.shared else list(self.convs)
        _check_channels('ChannelAlign', maps, [c.conv.in_channels for c in convs],
                        indexed=not self.shared)
        return _pack([conv(x) for conv, x in zip(convs, maps)], as_tuple)


@MODELS.register_module()
class ConcatFusion(BaseModule):
    """Concatenate the maps of several branches / sources along C, then a ``ConvModule``.

    Every map is first resized to the spatial size of the first one (:func:`resize_to`:
    adaptive average pooling to shrink, bilinear to grow), so sources of different
    resolution (two backbones, two levels) can be fused.

    Args:
        in_channels (list[int]): Channels of each source, in call order (>= 2 sources).
        out_channels (int): Channels of the fused map.
        kernel_size (int): 1 or 3 (padding keeps the size). Defaults to 1.
        norm_cfg (dict, optional): Norm after the conv. Defaults to None.
        act_cfg (dict, optional): Activation after the conv. Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.

    Shapes:
        ``forward(a, b, ...)`` with (B, C_i, H_i, W_i) -> (B, out_channels, H_0, W_0);
        ``forward((a, b, ...))`` -> a one-element tuple of it (neck convention).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 kernel_size: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = _check_channel_list('ConcatFusion', in_channels, 2)
        self.out_channels = _check_positive_int('ConcatFusion', 'out_channels', out_channels)
        if not is_int(kernel_size) or kernel_size not in (1, 3):
            raise ValueError(f'ConcatFusion: kernel_size must be 1 or 3, but got {kernel_size!r}')
        self.fuse = ConvModule(sum(self.in_channels), self.out_channels, kernel_size,
                               padding=kernel_size // 2, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, *inputs: Maps) -> Maps:
        """Fuse the sources (see the class docstring for shapes)."""
        maps, as_tuple = _unpack('ConcatFusion', inputs)
        _check_channels('ConcatFusion', maps, self.in_channels)
        _check_batch('ConcatFusion', maps)
        size = tuple(maps[0].shape[-2:])
        fused = self.fuse(torch.cat([resize_to(x, size) for x in maps], dim=1))
        return (fused, ) if as_tuple else fused


@MODELS.register_module()
class AttentionFusion(BaseModule):
    """Multi-head attention (``torch.nn.MultiheadAttention``) over spatial tokens.

    Each (B, C, H, W) map is flattened into H*W tokens of C channels (row-major).
    Pre-norm residual block, as in ViT: ``out = x + Attn(LN(x), LN(ctx), LN(ctx))``.
    With the output projection at zero (``zero_init=True``) the module starts as the
    exact identity, so it can be inserted into a pre-trained model without changing it.
    No positional encoding is added: tokens carry what their conv features encode.

    - ``mode='self'``: the tokens of all the inputs are concatenated and attend to each
      other (levels or sources exchange information); each map is returned with its own
      shape.
    - ``mode='cross'``: exactly two inputs (A, B); A's tokens are the queries, B's the
      keys / values; the result has A's shape.

    Cost is quadratic in the number of tokens: use it on small maps (e.g. after
    :class:`AdaptivePoolAlign`).

    Args:
        channels (int): Channels C of every input (the embedding size).
        num_heads (int): Attention heads; must divide ``channels``. Defaults to 4.
        mode (str): ``'self'`` or ``'cross'``. Defaults to ``'self'``.
        zero_init (bool): Initialise the output projection at zero (identity start).
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.

    Shapes:
        self: ``forward(x_1, ..., x_n)`` with (B, C, H_i, W_i) -> n maps of the same shapes
        (a tensor for n = 1); cross: ``forward(a, b)`` with a (B, C, H_a, W_a), b (B, C,
        H_b, W_b) -> (B, C, H_a, W_a). With one sequence argument a tuple is returned.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int = 4,
                 mode: str = 'self',
                 zero_init: bool = False,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.channels = _check_positive_int('AttentionFusion', 'channels', channels)
        num_heads = _check_positive_int('AttentionFusion', 'num_heads', num_heads)
        if channels % num_heads:
            raise ValueError(f'AttentionFusion: num_heads must divide channels={channels}, '
                             f'but got num_heads={num_heads!r}')
        if mode not in ('self', 'cross'):
            raise ValueError(f"AttentionFusion: mode must be 'self' or 'cross', but got {mode!r}")
        if not isinstance(zero_init, bool):
            raise TypeError(f'AttentionFusion: zero_init must be True or False, but got '
                            f'{zero_init!r}')
        self.mode, self.zero_init = mode, zero_init
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm_q = nn.LayerNorm(channels)
        # cross mode normalises the context branch separately (self mode has none)
        self.norm_kv = nn.LayerNorm(channels) if mode == 'cross' else None
        self._zero_out_proj()

    def _zero_out_proj(self) -> None:
        if self.zero_init:
            nn.init.zeros_(self.attn.out_proj.weight)
            nn.init.zeros_(self.attn.out_proj.bias)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then keep the identity start of ``zero_init``."""
        super().init_weights()
        self._zero_out_proj()

    def forward(self, *inputs: Maps) -> Maps:
        """Attend over spatial tokens (see the class docstring for shapes)."""
        maps, as_tuple = _unpack('AttentionFusion', inputs)
        _check_channels('AttentionFusion', maps, [self.channels] * len(maps), 'channels',
                        indexed=False)
        _check_batch('AttentionFusion', maps)
        if self.mode == 'cross':
            if len(maps) != 2:
                raise ValueError("AttentionFusion: mode='cross' takes exactly two inputs "
                                 f'(queries A, context B), but got {len(maps)}')
            query, context = (x.flatten(2).transpose(1, 2) for x in maps)  # (B, N, C)
            kv = self.norm_kv(context)
            out = query + self.attn(self.norm_q(query), kv, kv, need_weights=False)[0]
            return _pack([out.transpose(1, 2).reshape(maps[0].shape)], as_tuple)
        tokens = torch.cat([x.flatten(2).transpose(1, 2) for x in maps], dim=1)  # (B, ΣN, C)
        normed = self.norm_q(tokens)
        tokens = tokens + self.attn(normed, normed, normed, need_weights=False)[0]
        parts = tokens.split([x.shape[2] * x.shape[3] for x in maps], dim=1)
        return _pack([p.transpose(1, 2).reshape(x.shape) for p, x in zip(parts, maps)],
                     as_tuple)
