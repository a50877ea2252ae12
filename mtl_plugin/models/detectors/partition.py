"""Partitioned heads: the heads share one set of towers, each keeps its own outputs.

The design UniDet uses for many datasets. With ``MultiHeadDetector(partition_heads=dict())``
one head, the *owner* (``owner=``, default: the first name in sorted order), keeps its
towers (``cls_convs``, ``reg_convs``; with ``share_box=True`` its box branch too:
``retina_reg``, ``conv_reg`` + ``conv_centerness`` + ``scales``, ...), with their stock
names, initialisation and checkpoint keys; in every other head those parts are replaced by
:class:`SharedPart` stand-ins without parameters that call the owner's.
Each head keeps its own classification output (and box branch unless shared). With
``shared_convs=k`` only the first ``k`` convs of each tower are shared and every head keeps
its own later ones (more capacity per head, at one own conv per tower and head in merged
inference).

- Training: a head still runs only on its own samples, so the towers run once per sample
  whatever the number of heads, and learn from every sample. An idle head's own
  parameters get no update (``HeadIsolationHook`` leaves the shared parts alone:
  :meth:`HeadPartition.shared_parameters`).
- Merged inference: inside :meth:`HeadPartition.sharing` the owner's parts record
  their output and the stand-ins of the other heads reuse it for the same input: the
  towers run once, then one small output conv per head. The memo keeps only each tower's
  final output per level (its stacked convs are a chain: the stand-ins pass that output
  along), and each shared box layer's output, not every layer's input and output.

Works with any mmdet dense head whose forward runs ``cls_convs`` / ``reg_convs`` and then
its output convs (RetinaHead, FCOSHead, ATSSHead, GFLHead, RTMDetHead and subclasses).
"""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from torch import nn

__all__ = ['HeadPartition', 'SharedPart', 'partition_heads']

TOWERS = ('cls_convs', 'reg_convs')
# the box branch per head class (looked up along the MRO); only the parts a head has
BOX_PARTS = dict(RetinaHead=('retina_reg', ), FCOSHead=('conv_reg', 'conv_centerness', 'scales'),
                 ATSSHead=('atss_reg', 'atss_centerness', 'scales'),
                 GFLHead=('gfl_reg', 'scales'), RTMDetHead=('rtm_reg', 'scales'))


class _Recorder:
    """Forward hook of a shared layer of the owner head: records (input, output) while
    the partition shares (a callable object, so that ``deepcopy`` of the model keeps it
    pointing at the copy's partition)."""

    def __init__(self, partition: 'HeadPartition', path: str) -> None:
        self.partition = partition
        self.path = path

    def __call__(self, module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        if self.partition.memo is not None and args:  # the input kept: its id stays valid
            self.partition.memo[self.path, id(args[0])] = (args[0], output)


class _ChainRecorder:
    """Forward hook of layer ``k`` of an owner's tower chain (``n`` layers at ``path``):
    links each layer's output to the chain's input and memoises only the last layer's
    output, keyed by the chain's input (an intermediate is held until the next layer
    consumes it)."""

    def __init__(self, partition: 'HeadPartition', path: str, k: int, n: int) -> None:
        self.partition, self.path, self.k, self.n = partition, path, k, n

    def __call__(self, module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        part = self.partition
        if part.memo is None or not args:
            return
        if self.k == 0:
            start = args[0]
        else:  # the chain's input, if this layer's input is the previous layer's output
            link = part.pending.pop((self.path, id(args[0])), None)
            if link is None or link[1] is not args[0]:
                return
            start = link[0]
        if self.k < self.n - 1:
            part.pending[self.path, id(output)] = (start, output)
        else:
            part.memo[self.path, id(start)] = (start, output)
            part.finals[self.path, id(output)] = output


class SharedPart(nn.Module):
    """Stands in a head for one layer of the owner's shared parts (no parameters).

    Args:
        partition (HeadPartition): The partition (not registered as a submodule).
        path (str): The layer's path in the owner, e.g. ``'cls_convs.0'``.
    """

    def __init__(self, partition: 'HeadPartition', path: str, layer: nn.Module,
                 chain: Optional[Tuple[str, int]] = None) -> None:
        super().__init__()
        # neither is a submodule: the layer's parameters belong to the owner head only
        object.__setattr__(self, 'partition', partition)
        object.__setattr__(self, 'layer', layer)
        self.path = path
        self.chain = chain  # (the tower chain's path, this layer's position) or None

    def forward(self, x: Any, *args: Any) -> Any:
        # a stand-in in eval mode runs the shared layer in eval mode too (no batch-norm
        # statistics move, e.g. when DDP's lockstep runs an idle head without gradient)
        return self.partition.call(self.path, self.layer, x, *args, training=self.training,
                                   chain=self.chain)

    def extra_repr(self) -> str:
        return f'-> {self.partition.owner_name}.{self.path}'


class HeadPartition:
    """What the heads share, and the memo of merged inference.

    Args:
        owner (nn.Module): The head that holds the shared parts.
        owner_name (str): Its name.
        parts (list[str]): The shared attributes (``cls_convs``, ...).
    """

    def __init__(self, owner: nn.Module, owner_name: str, parts: List[str],
                 shared_convs: Optional[int] = None) -> None:
        self.owner = owner
        self.owner_name = owner_name
        self.parts = list(parts)
        self.shared_convs = shared_convs
        # only inside sharing(): (path, id(input)) -> (input, output) of a box layer or a
        # whole tower chain; a chain's final outputs; chain links (see _ChainRecorder)
        self.memo: Optional[Dict[Tuple[str, int], Tuple[Any, Any]]] = None
        self.finals: Dict[Tuple[str, int], Any] = {}
        self.pending: Dict[Tuple[str, int], Tuple[Any, Any]] = {}

    def call(self, path: str, layer: nn.Module, x: Any, *args: Any, training: bool = True,
             chain: Optional[Tuple[str, int]] = None) -> Any:
        """Run the owner's ``layer`` (at ``path``), or reuse its recorded output for
        ``x``; with ``training=False`` in eval mode. In a tower chain the first layer
        returns the chain's final output for ``x`` and the next ones pass it on."""
        if self.memo is not None and not args:
            key = (path, id(x)) if chain is None else (chain[0], id(x))
            if chain is not None and chain[1] > 0:
                final = self.finals.get(key)
                if final is x:
                    return x
            else:
                hit = self.memo.get(key)
                if hit is not None and hit[0] is x:
                    return hit[1]
        if training or not layer.training:
            return layer(x, *args)
        layer.eval()
        try:
            return layer(x, *args)
        finally:
            layer.train()

    @contextmanager
    def sharing(self) -> Iterator[None]:
        """Reuse the owner's part outputs for the same input within the block."""
        self.memo = {}
        try:
            yield
        finally:
            self.memo = None
            self.finals, self.pending = {}, {}

    def shared_layers(self, part: str) -> List[nn.Module]:
        """The owner's layers of ``part`` that the heads share (of a tower: the first
        ``shared_convs`` convs of each chain)."""
        layer = getattr(self.owner, part)
        if part not in TOWERS:
            return [layer]
        return [conv for chain in _chains(layer) for conv in list(chain)[:self.shared_convs]]

    def shared_parameters(self) -> Set[int]:
        """Ids of the shared parts' parameters (trained by every head's samples)."""
        return {id(p) for part in self.parts for layer in self.shared_layers(part)
                for p in layer.parameters()}


def _box_parts(head: nn.Module) -> Tuple[str, ...]:
    for cls in type(head).__mro__:
        if cls.__name__ in BOX_PARTS:
            return BOX_PARTS[cls.__name__]
    raise TypeError(f'partition_heads(share_box=True): no known box branch for '
                    f'{type(head).__name__}; known: {sorted(BOX_PARTS)} (or share_box=False)')


def _is_list(layer: nn.Module) -> bool:
    return isinstance(layer, (nn.ModuleList, nn.Sequential))


def _is_chain(layer: nn.Module) -> bool:
    """A tower's innermost list of layers (``cls_convs``, or one level's list of them)."""
    return _is_list(layer) and len(layer) > 0 and not any(_is_list(c) for c in layer)


def _chains(tower: nn.Module) -> List[nn.Module]:
    """The chains of a tower, in order (one, or one per level)."""
    if _is_chain(tower):
        return [tower]
    if not _is_list(tower):
        return []
    return [chain for child in tower for chain in _chains(child)]


def _stand_in(layer: nn.Module, partition: HeadPartition, path: str, record: bool,
              mine: nn.Module) -> nn.Module:
    """Stand-ins mirroring the owner's ``layer`` (lists of layers stay lists); with
    ``record``, a recorder hook on each original layer (once per layer). A tower's chain
    gets stand-ins for its first ``partition.shared_convs`` layers, then the head's own
    (``mine``, the head's layer at ``path``)."""
    if not _is_list(layer):
        if record:
            layer.register_forward_hook(_Recorder(partition, path))
        return SharedPart(partition, path, layer)
    if path.split('.')[0] not in TOWERS or not _is_chain(layer):
        return type(layer)([_stand_in(child, partition, f'{path}.{i}', record, own)
                            for i, (child, own) in enumerate(zip(layer, mine))])
    shared = list(layer)[:partition.shared_convs]  # None: the whole chain
    if record:
        for k, child in enumerate(shared):
            child.register_forward_hook(_ChainRecorder(partition, path, k, len(shared)))
    return type(layer)([SharedPart(partition, f'{path}.{k}', child, chain=(path, k))
                        for k, child in enumerate(shared)] + list(mine)[len(shared):])


def _check_same(name: str, head: nn.Module, ref_name: str, ref: nn.Module, part: str) -> None:
    mine, theirs = getattr(head, part, None), getattr(ref, part, None)
    if mine is None or theirs is None:
        raise TypeError(f'partition_heads: heads["{name}"] ({type(head).__name__}) and '
                        f'heads["{ref_name}"] ({type(ref).__name__}) do not both have '
                        f'{part!r}; partitioned heads must be the same kind of dense head')
    shapes = [tuple(p.shape) for p in mine.parameters()]
    if shapes != [tuple(p.shape) for p in theirs.parameters()]:
        raise ValueError(f'partition_heads: {part!r} of heads["{name}"] and heads["{ref_name}"]'
                         ' differ in shape; give the heads the same in_channels, '
                         'feat_channels, stacked_convs (and norm) to share them')


def _check_shared_convs(shared_convs: Optional[int], ref_name: str, ref: nn.Module) -> None:
    if shared_convs is None:
        return
    if isinstance(shared_convs, bool) or not isinstance(shared_convs, int) or shared_convs < 1:
        raise ValueError(f'partition_heads: shared_convs must be an int >= 1 (the number of '
                         f'leading tower convs the heads share) or None (all), but got '
                         f'{shared_convs!r}')
    most = min((len(chain) for part in TOWERS for chain in _chains(getattr(ref, part))),
               default=0)
    if shared_convs > most:
        raise ValueError(f'partition_heads: shared_convs={shared_convs} but the towers of '
                         f'heads["{ref_name}"] ({type(ref).__name__}) have {most} convs '
                         f'(stacked_convs); give at most {most}')


def partition_heads(heads: nn.ModuleDict, share_box: bool = False,
                    owner: Optional[str] = None,
                    shared_convs: Optional[int] = None) -> HeadPartition:
    """Make every head but the owner use the owner's towers (and box branch).

    Args:
        heads (nn.ModuleDict): The built heads (modified in place).
        share_box (bool): Share the box branch too. Defaults to False.
        owner (str, optional): The head that holds the shared parts. Defaults to the
            first head name in sorted order (not the config's order: a dumped config
            sorts its keys, and the checkpoint must fit the config it is reloaded with).
        shared_convs (int, optional): Share only the first ``shared_convs`` convs of each
            tower; every head keeps its own later ones. Defaults to None (all shared).

    Returns:
        HeadPartition: The partition (the detector keeps it).

    Raises:
        TypeError / ValueError: Heads of another kind or shape, naming the head and part.
    """
    if not isinstance(share_box, bool):
        raise TypeError(f'partition_heads: share_box must be True or False, got {share_box!r}')
    if owner is not None and owner not in heads:
        raise KeyError(f'partition_heads: owner={owner!r} is not a head; heads: {list(heads)}')
    ref_name = sorted(heads)[0] if owner is None else owner
    names = [ref_name] + [n for n in heads if n != ref_name]
    ref = heads[ref_name]
    parts = list(TOWERS) + (list(_box_parts(ref)) if share_box else [])
    parts = [p for p in parts if p in TOWERS or hasattr(ref, p)]
    _check_shared_convs(shared_convs, ref_name, ref)
    partition = HeadPartition(ref, ref_name, parts, shared_convs)
    for name in names[1:]:
        for part in parts:
            _check_same(name, heads[name], ref_name, ref, part)
    for k, name in enumerate(names[1:]):
        for part in parts:
            setattr(heads[name], part, _stand_in(getattr(ref, part), partition, part, k == 0,
                                                 getattr(heads[name], part)))
    return partition
