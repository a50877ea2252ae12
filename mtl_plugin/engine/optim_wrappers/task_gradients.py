"""Per-task gradient bookkeeping for :class:`GradSurgeryOptimWrapper`, without copies.

Each task's gradients stay the tensors :func:`torch.autograd.grad` returned (one per
parameter, ``None`` where the task did not reach it): accumulation adds in place, the
Gramian of the task gradients is a sum of per-parameter dot products (no ``(T, n)``
matrix is stacked), and the aggregated update is written in place into one task's
tensors, which become ``.grad``. A task's graph is freed by its own backward unless a
task still to run shares a node of it (:func:`backward_plan`).
"""
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor

__all__ = ['CHUNK_BYTES', 'OWN_BYTES', 'Grads', 'backward_plan', 'own_grads', 'add_grads_',
           'sum_', 'pack', 'gramian', 'combine']

CHUNK_BYTES = 16 * 2**20  # a packed (T, n_c) matrix of small parameters' task gradients
OWN_BYTES = 2**20  # a parameter this large keeps its task tensors (no copy)
DOT_BLOCK = 2**16  # elements per dot product of a large parameter's Gramian entries (CPU)

Grads = List[Optional[Tensor]]  # one entry per trainable parameter, None = no gradient


@lru_cache(maxsize=None)
def _accumulate_grad_type() -> type:
    """The class of autograd's parameter leaves (``AccumulateGrad``), found once."""
    leaf = torch.zeros(1, requires_grad=True)
    return type((leaf * 1).grad_fn.next_functions[0][0])


def _graph_nodes(loss: Tensor) -> Dict[int, object]:
    """The autograd nodes ``loss`` reaches that may hold saved tensors, by id (the nodes
    are kept, so that their ids stay theirs while the plan compares them).

    Parameters' ``AccumulateGrad`` leaves are left out: every task that uses a parameter
    reaches its leaf, and a leaf holds nothing a backward frees.
    """
    leaf = _accumulate_grad_type()
    seen: Dict[int, object] = {}
    stack = [] if loss.grad_fn is None else [loss.grad_fn]
    while stack:  # a plain loop: graphs have thousands of nodes, and it runs every step
        node = stack.pop()
        key = id(node)
        if key in seen or type(node) is leaf:
            continue
        seen[key] = node
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return seen


def backward_plan(losses: Sequence[Tensor]) -> List[Tuple[int, bool]]:
    """The order of the per-task backwards and whether each keeps its graph.

    A task whose graph overlaps another's (a whole-batch task such as the dataset head,
    or every task over a whole-batch trunk) runs first; a graph is retained only while a
    task still to run shares one of its nodes. With a trunk per head, each head's graph
    is disjoint from the other heads': each is freed by its own backward.

    Args:
        losses (Sequence[Tensor]): The tasks' () losses, each with a graph.

    Returns:
        list[tuple[int, bool]]: ``(index into losses, retain_graph)`` in backward order.
    """
    nodes = [_graph_nodes(loss).keys() for loss in losses]
    overlaps = [sum(1 for j, other in enumerate(nodes) if j != i and not mine.isdisjoint(other))
                for i, mine in enumerate(nodes)]
    order = sorted(range(len(losses)), key=lambda i: -overlaps[i])  # stable
    plan = []
    for k, i in enumerate(order):
        later = [nodes[j] for j in order[k + 1:]]
        plan.append((i, any(not nodes[i].isdisjoint(other) for other in later)))
    return plan


def own_grads(grads: Sequence[Optional[Tensor]]) -> Grads:
    """The gradients, each a tensor of its own that may be changed in place.

    :func:`torch.autograd.grad` may return an expanded view (stride 0) or one tensor for
    two parameters (the gradient passed through an addition); those are copied.
    """
    out: Grads = []
    storages: Set[int] = set()
    for g in grads:
        if g is not None:
            ptr = g.untyped_storage().data_ptr()
            if not g.is_contiguous() or ptr in storages:
                g = g.clone(memory_format=torch.contiguous_format)
                ptr = g.untyped_storage().data_ptr()
            storages.add(ptr)
        out.append(g)
    return out


def add_grads_(buf: Grads, grads: Sequence[Optional[Tensor]]) -> None:
    """``buf += grads`` in place, entry by entry (``None`` is zero)."""
    new = own_grads(grads)
    for i, g in enumerate(new):
        if g is not None:
            if buf[i] is None:
                buf[i] = g
            else:
                buf[i].add_(g)


def sum_(grads: Sequence[Optional[Tensor]]) -> Optional[Tensor]:
    """The sum of the present gradients, in place into the first; None if none."""
    present = [g for g in grads if g is not None]
    if not present:
        return None
    for g in present[1:]:
        present[0].add_(g)
    return present[0]


Chunk = Tuple[List[int], Tensor]  # (parameter indices, (T, n_c) matrix of their gradients)


def pack(rows: List[Grads], idx: Sequence[int], like: Sequence[Tensor],
         chunk_bytes: int = CHUNK_BYTES,
         own_bytes: int = OWN_BYTES) -> Tuple[List[Chunk], List[int]]:
    """Split the parameters ``idx`` into packed chunks and parameters left in place.

    A parameter of at least ``own_bytes`` keeps each task's tensor (no copy: its Gramian
    entries are dot products, its combination is written in place). The smaller ones are
    copied, in order, into (T, n_c) matrices of at most ``chunk_bytes`` (zeros where a task
    did not reach one): one matrix product instead of many tiny dot products. The packed
    gradients are dropped from ``rows`` as they are copied.

    Args:
        rows (list[Grads]): Each task's gradients (packed entries become None).
        idx (Sequence[int]): The parameters.
        like (Sequence[Tensor]): The parameters (shapes, dtype, device).
        chunk_bytes (int): Size of a packed matrix. Defaults to 16 MiB.
        own_bytes (int): Size from which a parameter is left in place. Defaults to 1 MiB.

    Returns:
        tuple: The chunks ``[(parameter indices, (T, n_c) matrix)]`` and the indices of
        the parameters left in place.
    """
    groups: List[List[int]] = []
    own: List[int] = []
    size = chunk_bytes
    for i in idx:
        n = like[i].numel() * like[i].element_size()
        if n >= own_bytes:
            own.append(i)
            continue
        if size + n * len(rows) > chunk_bytes:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += n * len(rows)
    chunks = []
    for group in groups:
        sizes = [like[i].numel() for i in group]
        matrix = like[group[0]].new_empty(len(rows), sum(sizes))
        for t, row in enumerate(rows):
            for i, piece in zip(group, matrix[t].split(sizes)):
                if row[i] is None:
                    piece.zero_()
                else:
                    piece.copy_(row[i].view(-1))
                    row[i] = None
        chunks.append((group, matrix))
    return chunks, own


def gramian(rows: Sequence[Grads], chunks: Sequence[Chunk], own: Sequence[int]) -> Tensor:
    """``M @ M.T`` of the (T, n) matrix of task gradients over the chunks' and the
    in-place parameters, summed block by block in float64.

    Args:
        rows (Sequence[Grads]): Each task's gradients (those of the in-place parameters).
        chunks (Sequence[Chunk]): From :func:`pack`.
        own (Sequence[int]): The in-place parameters.

    Returns:
        Tensor: (T, T), in the gradients' dtype. All in one chunk: exactly torchjd's
        ``compute_gramian`` of the stacked matrix.
    """
    blocks = [matrix @ matrix.T for _, matrix in chunks]
    if len(blocks) == 1 and not own:
        return blocks[0]
    like = blocks[0] if blocks else next(r[i] for r in rows for i in own if r[i] is not None)
    gram = torch.zeros(len(rows), len(rows), dtype=torch.float64, device=like.device)
    for block in blocks:
        gram += block.double()
    dots: Dict[Tuple[int, int], List[Tensor]] = {}  # the own parameters' block products
    for i in own:
        flat = [None if r[i] is None else r[i].view(-1) for r in rows]
        present = [f for f in flat if f is not None]
        if not present:  # a shared prefix's parameter no task reached
            continue
        # on CPU, blocks that stay in cache for the T (T + 1) / 2 products (~1/3 faster)
        step = DOT_BLOCK if present[0].device.type == 'cpu' else present[0].numel()
        pairs = [(a, b) for a in range(len(rows)) for b in range(a, len(rows))
                 if flat[a] is not None and flat[b] is not None]
        for start in range(0, present[0].numel(), step):
            block = [None if f is None else f[start:start + step] for f in flat]
            for a, b in pairs:  # no tensor indexing per product: one sum per pair below
                dots.setdefault((a, b), []).append(torch.dot(block[a], block[b]))
    for (a, b), parts in dots.items():
        gram[a, b] += torch.stack(parts).double().sum()
    gram = gram.triu() + gram.triu(1).T
    return gram.to(like.dtype)


def combine(rows: List[Grads], chunks: List[Chunk], own: Sequence[int], weights: Tensor,
            like: Sequence[Tensor]) -> Dict[int, Tensor]:
    """``sum_t weights[t] * g_t`` of every parameter of the chunks and of ``own``.

    A chunk's combination is a new vector (the chunk is then freed); an in-place
    parameter's is written into the first task's tensor that has it (the other tasks'
    are dropped from ``rows``; zeros where no task reached it).

    Args:
        rows (list[Grads]): Each task's gradients.
        chunks (list[Chunk]): From :func:`pack` (emptied).
        own (Sequence[int]): The in-place parameters.
        weights (Tensor): (T,) weights of the rows.
        like (Sequence[Tensor]): The parameters.

    Returns:
        dict[int, Tensor]: Parameter index -> its combined gradient.
    """
    w = [float(v) for v in weights]
    out: Dict[int, Tensor] = {}
    while chunks:
        group, matrix = chunks.pop(0)
        vector = torch.mul(matrix[0], w[0])
        for t in range(1, len(w)):
            vector.add_(matrix[t], alpha=w[t])
        del matrix
        for i, piece in zip(group, vector.split([like[i].numel() for i in group])):
            out[i] = piece.view_as(like[i])
    for i in own:
        present = [(t, r[i]) for t, r in enumerate(rows) if r[i] is not None]
        for r in rows:
            r[i] = None
        if not present:
            out[i] = torch.zeros_like(like[i])
            continue
        acc = present[0][1].mul_(w[present[0][0]])
        for t, g in present[1:]:
            acc.add_(g, alpha=w[t])
        out[i] = acc
    return out
