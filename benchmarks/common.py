"""Shared helpers for benchmarks: machine note, alternating timing, seeds (mean ± std over
seeds, "no difference" inside 2 std), results table + JSON."""
import contextlib
import io
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch


def machine() -> dict:
    """What the numbers were measured on."""
    try:
        cpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        model = next((l.split(':', 1)[1].strip() for l in cpu.splitlines()
                      if l.startswith('Model name')), platform.processor())
    except OSError:
        model = platform.processor()
    return dict(cpu=model, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__,
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def time_alternating(fns: Dict[str, Callable[[], None]], repeats: int = 7,
                     warmup: int = 2, clock: Callable[[], float] = time.perf_counter
                     ) -> Dict[str, float]:
    """Median seconds of each function, run in turn A, B, C, A, B, C, ... in one process.

    ``clock=time.process_time`` counts the CPU time this process spent (robust to other
    processes on a shared machine; compute time with one thread)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def print_table(title: str, rows: List[dict], cols: List[str]) -> None:
    """Print rows as a fixed-width table."""
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    print(f'\n{title}')
    print('  '.join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print('  '.join(_fmt(r.get(c)).ljust(w) for c, w in zip(cols, widths)))


def _fmt(v: Any) -> str:
    if is_stat(v):  # fractions (recall, mAP in [0, 1]) with 3 decimals, the rest with 1
        return fmt_pm(v, 3 if abs(v['mean']) < 1 else 1)
    if isinstance(v, float):
        return f'{v:.3f}'
    return '' if v is None else str(v)


def save(path: str, payload: dict) -> None:
    """Write results JSON (with the machine noted)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = dict(machine=machine(), date=time.strftime('%Y-%m-%d'), **payload)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'\nsaved {path}')


# ---------------------------------------------------------------------------- seeds
# A study is a function ``study(seed) -> dict`` whose leaves are numbers (AP, mAP, ...) and
# whose other leaves (strings, ...) are the same for every seed. Over seeds each number
# becomes a *stat*: ``dict(mean=, std=, n=, values=[...])`` (sample std, ddof=1; ``None``
# with one seed).
def mean_std(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof=1) and count of per-seed values, values kept.

    Args:
        values (Sequence[float]): One value per seed.

    Returns:
        dict: ``mean``, ``std`` (``None`` for one value), ``n``, ``values``.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f'mean_std: needs at least one value but got {values!r}')
    std = statistics.stdev(values) if len(values) > 1 else None
    return dict(mean=round(statistics.fmean(values), 4),
                std=None if std is None else round(std, 4), n=len(values), values=values)


def is_stat(v: Any) -> bool:
    """Whether ``v`` is a stat made by :func:`mean_std`."""
    return isinstance(v, dict) and {'mean', 'std', 'n', 'values'} <= set(v)


def aggregate(per_seed: Sequence[Any]) -> Any:
    """Turn the studies of several seeds (same structure) into one of stats.

    Args:
        per_seed (Sequence): One study result per seed: nested dicts / lists whose number
            leaves become stats; any other leaf must be the same for every seed.

    Returns:
        The same structure, each number leaf replaced by :func:`mean_std` of its values.
    """
    first = per_seed[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict, list, tuple)):
        if any(p != first for p in per_seed):
            raise ValueError(f'aggregate: a non-number leaf differs between seeds: '
                             f'{list(per_seed)!r}; make it the same or a number')
        return first
    if isinstance(first, (int, float)):
        return mean_std(per_seed)
    if isinstance(first, dict):
        keys = list(first)
        for p in per_seed:
            if not isinstance(p, dict) or list(p) != keys:
                raise ValueError(f'aggregate: seeds give different keys: {keys} vs '
                                 f'{list(p) if isinstance(p, dict) else p!r}')
        return {k: aggregate([p[k] for p in per_seed]) for k in keys}
    if any(len(p) != len(first) for p in per_seed):
        raise ValueError(f'aggregate: seeds give lists of different lengths: '
                         f'{[len(p) for p in per_seed]}')
    return [aggregate([p[i] for p in per_seed]) for i in range(len(first))]


def run_seeds(study: Callable[[int], Any], seeds: Sequence[int],
              on_seed: Optional[Callable[[dict], None]] = None) -> dict:
    """Run ``study(seed)`` for every seed and aggregate.

    Args:
        study (Callable[[int], Any]): One run of the study for one seed.
        seeds (Sequence[int]): The seeds, e.g. ``[0, 1, 2]``.
        on_seed (Callable, optional): Called with the partial result after every seed
            (e.g. to save what is done so far). Defaults to None.

    Returns:
        dict: ``seeds``, ``per_seed`` (the raw results, in seed order) and ``stats`` (the
        :func:`aggregate` of them).
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f'run_seeds: seeds must be distinct ints, at least one, '
                         f'but got {seeds!r}')
    per_seed = []
    for seed in seeds:
        per_seed.append(study(seed))
        result = dict(seeds=seeds[:len(per_seed)], per_seed=per_seed,
                      stats=aggregate(per_seed))
        if on_seed is not None:
            on_seed(result)
    return result


def settings_mismatch(paths: Sequence[str], settings: Sequence[Mapping[str, Any]],
                      may_differ: Iterable[str]) -> Optional[str]:
    """``--combine``'s check that partial runs of one study ran with the same settings.

    Args:
        paths (Sequence[str]): The parts' results files (named in the message).
        settings (Sequence[Mapping]): Each part's settings, in the same order.
        may_differ (Iterable[str]): Keys that may differ (``seeds``, ``out``, ...).

    Returns:
        str | None: The first mismatch (the part, the differing keys), or None.
    """
    free = set(may_differ)
    for path, other in zip(paths[1:], settings[1:]):
        diff = sorted(k for k in {*other, *settings[0]} - free
                      if other.get(k) != settings[0].get(k))
        if diff:
            return f'{path} ran with other settings than {paths[0]}: {diff}'
    return None


def merge_seed_parts(paths: Sequence[str]) -> Tuple[List[int], List[Any]]:
    """The seeds and per-seed results of several partial runs of one study, in seed order.

    Args:
        paths (Sequence[str]): Results JSON files with ``seeds`` and ``per_seed``.

    Returns:
        tuple: ``(seeds, per_seed)``.

    Raises:
        ValueError: No seed in the files, or a seed found in two files.
    """
    found: Dict[int, Any] = {}
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        for seed, result in zip(run['seeds'], run['per_seed']):
            if seed in found:
                raise ValueError(f'combine_seed_runs: seed {seed} is in two files (the '
                                 f'second: {path}); give each seed once')
            found[seed] = result
    if not found:
        raise ValueError('combine_seed_runs: no seed in the files; give at least one run')
    seeds = sorted(found)
    return seeds, [found[s] for s in seeds]


def combine_seed_runs(paths: Sequence[str]) -> dict:
    """Merge the seeds of several partial runs of one study into one :func:`run_seeds`
    result (e.g. one process per core, each run with its own ``--seeds``).

    Args:
        paths (Sequence[str]): Results JSON files with ``seeds`` and ``per_seed`` (as
            :func:`report_study` writes them).

    Returns:
        dict: ``seeds`` (sorted), ``per_seed`` (in that order) and ``stats``.

    Raises:
        ValueError: No file, or a seed found in two files.
    """
    seeds, per_seed = merge_seed_parts(paths)
    return dict(seeds=seeds, per_seed=per_seed, stats=aggregate(per_seed))


def replace_rows(path: str, res: dict) -> dict:
    """Put the rows of a new :func:`run_seeds` result into an earlier run's results JSON
    (e.g. one scheme retrained after a config fix): the other rows are kept, every row's
    stats recomputed.

    Args:
        path (str): The earlier results JSON (``seeds``, ``per_seed``).
        res (dict): The new result; its rows (the keys of each seed's dict) replace those
            rows, or are added after them.

    Returns:
        dict: ``seeds``, ``per_seed`` and ``stats`` of the merged study.

    Raises:
        ValueError: The two runs have different seeds.
    """
    with open(path) as f:
        old = json.load(f)
    if old['seeds'] != res['seeds']:
        raise ValueError(f'replace_rows: {path} has seeds {old["seeds"]}, the new rows '
                         f'{res["seeds"]}; run the new rows with the same --seeds')
    per_seed = [{**o, **n} for o, n in zip(old['per_seed'], res['per_seed'])]
    return dict(seeds=res['seeds'], per_seed=per_seed, stats=aggregate(per_seed))


def fmt_pm(stat: dict, digits: int = 1) -> str:
    """A stat as a table cell, ``'m ± s'`` (``'m'`` alone for one seed)."""
    if not is_stat(stat):
        raise TypeError(f'fmt_pm: expects a stat from mean_std but got {stat!r}')
    if stat['std'] is None:
        return f'{stat["mean"]:.{digits}f}'
    return f'{stat["mean"]:.{digits}f} ± {stat["std"]:.{digits}f}'


def compare(a: dict, b: dict, paired: bool = True, k: float = 2.0) -> dict:
    """Compare two stats; a difference inside ``k`` std is "no difference".

    The noise level ``s`` is, with ``paired=True`` (the default, for two methods measured
    with the same seeds on the same data), the sample std (ddof=1) of the per-seed
    differences ``b_i - a_i``; with ``paired=False``, the larger of the two stds.

    Args:
        a (dict): The reference stat (:func:`mean_std`).
        b (dict): The compared stat.
        paired (bool): Use the std of the paired differences. Defaults to True.
        k (float): How many std count as noise. Defaults to 2.0.

    Returns:
        dict: ``diff`` (mean of b minus mean of a), ``noise`` (``k * s``), ``basis``
        (``'paired'`` / ``'larger std'``), ``verdict``: ``'no difference'``, ``'higher'``
        or ``'lower'`` (b vs a), or ``'one seed: untested'``.
    """
    if not (is_stat(a) and is_stat(b)):
        raise TypeError(f'compare: expects two stats from mean_std but got {a!r}, {b!r}')
    if paired and a['n'] != b['n']:
        raise ValueError(f'compare(paired=True): both need the same seeds, but got n={a["n"]} '
                         f'and n={b["n"]}; pass paired=False')
    diff = statistics.fmean(b['values']) - statistics.fmean(a['values'])
    if paired:
        d = [y - x for x, y in zip(a['values'], b['values'])]
        s = statistics.stdev(d) if len(d) > 1 else None
    else:
        s = None if None in (a['std'], b['std']) else max(a['std'], b['std'])
    out = dict(diff=round(diff, 4), noise=None if s is None else round(k * s, 4),
               basis='paired' if paired else 'larger std')
    if s is None:
        out['verdict'] = 'one seed: untested'
    else:
        out['verdict'] = ('no difference' if abs(diff) <= k * s else
                          'higher' if diff > 0 else 'lower')
    return out


def save_sections(path: str, sections: Dict[str, dict]) -> dict:
    """Write ``sections`` into the results JSON at ``path``, keeping its other sections.

    Each written section gets its own ``date`` and ``machine``, so a file can hold a speed
    section and an accuracy section measured on different days.

    Args:
        path (str): The results JSON (read if it exists).
        sections (Dict[str, dict]): Section name -> content.

    Returns:
        dict: The whole payload written.
    """
    payload = {}
    if osp.exists(path):
        with open(path) as f:
            payload = json.load(f)
    stamp = dict(date=time.strftime('%Y-%m-%d'), machine=machine())
    payload.update({k: dict(stamp, **v) for k, v in sections.items()})
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'\nsaved {path} ({", ".join(sections)})', flush=True)
    return payload


def versus(stats: Dict[str, dict], ref: str, metrics: Sequence[str],
           paired: bool = True) -> Dict[str, dict]:
    """:func:`compare` every row of a table of stats with its reference row.

    Args:
        stats (Dict[str, dict]): Row (method, scheme, ...) -> metric -> stat.
        ref (str): The reference row, e.g. ``'baseline'``.
        metrics (Sequence[str]): The metrics compared (missing ones are skipped).
        paired (bool): See :func:`compare`. Defaults to True.

    Returns:
        Dict[str, dict]: Row (but ``ref``) -> metric -> :func:`compare` result.
    """
    if ref not in stats:
        raise KeyError(f'versus: reference row {ref!r} is not in the table; rows: {list(stats)}')
    return {row: {m: compare(stats[ref][m], vals[m], paired=paired) for m in metrics
                  if m in vals and m in stats[ref]}
            for row, vals in stats.items() if row != ref}


MARKS = {'no difference': '=', 'higher': '+', 'lower': '-', 'one seed: untested': '?'}


def print_seed_table(title: str, stats: Dict[str, dict], metrics: Sequence[str],
                     ref: Optional[str] = None, key: str = 'method',
                     compared: Optional[Sequence[str]] = None, digits: int = 1) -> None:
    """Print a table of stats as ``m ± s``; with ``ref``, each other cell ends with its
    verdict against the reference row (:func:`compare`, paired): ``(=)`` no difference
    (inside 2 std), ``(+)`` / ``(-)`` higher / lower, ``(?)`` one seed.

    Args:
        title (str): Table title.
        stats (Dict[str, dict]): Row -> metric -> stat.
        metrics (Sequence[str]): Columns.
        ref (str, optional): The reference row. Defaults to None.
        key (str): Name of the row column. Defaults to ``'method'``.
        compared (Sequence[str], optional): The metrics given a verdict (e.g. not the
            iteration count). Defaults to all of ``metrics``.
        digits (int): Decimals of the cells (3 for fractions such as mAP in [0, 1]).
            Defaults to 1.
    """
    cmp = versus(stats, ref, metrics if compared is None else compared) if ref else {}
    rows = []
    for name, vals in stats.items():
        row = {key: name}
        for m in metrics:
            if m in vals:
                verdict = cmp.get(name, {}).get(m)
                row[m] = fmt_pm(vals[m], digits) + (f' ({MARKS[verdict["verdict"]]})' if verdict else '')
        rows.append(row)
    print_table(title + (f'; (=) inside 2 std of {ref!r}' if ref else ''), rows, [key, *metrics])


def stats_by_row(per_seed: Dict[str, Dict[str, dict]],
                 rows: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    """Aggregate a table measured row by row, where a row may lack some seeds (a run cut
    short, or rows added later): each row over the seeds that have it.

    Args:
        per_seed (Dict[str, Dict[str, dict]]): Seed (as a string, JSON keys) -> row -> values.
        rows (Sequence[str], optional): Row order. Defaults to the order of first appearance.

    Returns:
        Dict[str, dict]: Row -> :func:`aggregate` of its values, plus ``'seeds'``: the seeds
        it has (in ``per_seed`` order).
    """
    if rows is None:
        rows = list(dict.fromkeys(r for table in per_seed.values() for r in table))
    out = {}
    for row in rows:
        seeds = [s for s, table in per_seed.items() if row in table]
        if seeds:
            out[row] = dict(aggregate([per_seed[s][row] for s in seeds]),
                            seeds=[int(s) for s in seeds])
    return out


def paired_stats(per_seed: Dict[str, Dict[str, dict]], a: str, b: str,
                 metric: str) -> Optional[tuple]:
    """The stats of ``metric`` of rows ``a`` and ``b`` over the seeds that have both (for a
    paired :func:`compare`); ``None`` if no seed has both."""
    seeds = [s for s, t in per_seed.items() if metric in t.get(a, {}) and metric in t.get(b, {})]
    if not seeds:
        return None
    return (mean_std([per_seed[s][a][metric] for s in seeds]),
            mean_std([per_seed[s][b][metric] for s in seeds]))


def report_study(out: str, settings: dict, res: dict, t0: float, metrics: Sequence[str],
                 columns: Sequence[str], title: str, seeds: Sequence[int],
                 final: bool = True, ref: str = 'baseline', key: str = 'scheme') -> dict:
    """Write (and, when ``final``, print) a scheme-vs-reference study over seeds.

    Mean ± std per row, each row compared with ``ref`` on the paired per-seed
    differences (inside 2 std: no difference). Called after every seed with
    ``final=False`` (JSON only, ``complete: false``), so a cut-off run keeps its numbers.

    Args:
        out (str): Results JSON path.
        settings (dict): The study's settings, written as they are.
        res (dict): :func:`run_seeds` output (``seeds``, ``per_seed``, ``stats``).
        t0 (float): ``time.perf_counter()`` at the study's start (wall time).
        metrics (Sequence[str]): The compared metrics.
        columns (Sequence[str]): The printed columns (``metrics`` and budget columns).
        title (str): Table title.
        seeds (Sequence[int]): The seeds asked for (``complete`` when all ran).
        final (bool): Print the table too. Defaults to True.
        ref (str): The reference row. Defaults to ``'baseline'``.
        key (str): Name of the row column. Defaults to ``'scheme'``.

    Returns:
        dict: The payload written (without machine and date).
    """
    stats = res['stats']
    ref_row = ref if ref in stats else None
    payload = dict(settings=settings, complete=final and res['seeds'] == list(seeds),
                   seeds=res['seeds'], per_seed=res['per_seed'], stats=stats,
                   vs_baseline=versus(stats, ref_row, metrics) if ref_row else {},
                   wall_s=round(time.perf_counter() - t0, 1))
    if not final:
        with contextlib.redirect_stdout(io.StringIO()):
            save(out, payload)
        return payload
    print_seed_table(title, stats, list(columns), ref=ref_row, key=key, compared=metrics)
    print(f'wall time: {payload["wall_s"]} s')
    save(out, payload)
    return payload
