"""Collect the validation metrics of finished MMEngine runs into one ablation table.

MMEngine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/scalars.json``: one
JSON object per line, training lines (``loss``, ``lr``, ...) and validation lines (the
metric keys, e.g. ``person/coco/bbox_mAP``, ``mean/coco/bbox_mAP``, with ``step`` = the
epoch or iteration). :func:`read_run` takes the newest such file of a work dir and picks
the validation line with the best (or the last) value of a monitored key;
:func:`write_table` writes Markdown, CSV, JSON and a grouped bar chart of the per-dataset
columns.
"""
import csv
import glob
import io
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence
from ..io import atomic_write as _atomic_write

__all__ = ['AblationError', 'read_run', 'metric_columns', 'write_table']


class AblationError(ValueError):
    """A finished run cannot be read (no results, unknown key); the message says why."""


def _scalars_file(work_dir: str) -> str:
    """The newest ``vis_data/scalars.json`` under ``work_dir``."""
    if not osp.isdir(work_dir):
        raise AblationError(f'work dir {work_dir!r} does not exist: train it first (or give '
                            '--run)')
    found = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not found:
        raise AblationError(f'{work_dir!r} has no */vis_data/scalars.json: the run did not '
                            'log (did it finish an evaluation?)')
    return max(found, key=osp.getmtime)


def _val_lines(path: str) -> List[dict]:
    """Validation lines of a scalars.json: those without a training ``loss`` or ``lr``."""
    lines = []
    with open(path) as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            row = json.loads(raw)
            if not any(k == 'lr' or k.startswith('loss') or k.endswith('loss')
                       for k in row) and any('/' in k for k in row):
                lines.append(row)
    return lines


def read_run(work_dir: str, monitor: Optional[str] = None, rule: str = 'best') -> dict:
    """Metrics of one finished run.

    Args:
        work_dir (str): The run's work dir (``tools/train.py --work-dir``).
        monitor (str, optional): Key that picks the evaluation (e.g.
            ``'mean/coco/bbox_mAP'``). Defaults to the first ``mean/...`` key of the log,
            else its first metric key.
        rule (str): ``'best'`` (the evaluation with the highest monitored value, as
            ``EarlyStoppingHook`` / ``save_best`` would keep) or ``'last'``.
            Defaults to ``'best'``.

    Returns:
        dict: ``metrics`` (key -> value of the chosen evaluation), ``step``,
        ``monitor``, ``num_evals`` and ``scalars`` (the file read).
    """
    if rule not in ('best', 'last'):
        raise AblationError(f"rule must be 'best' or 'last', but got {rule!r}")
    path = _scalars_file(work_dir)
    lines = _val_lines(path)
    if not lines:
        raise AblationError(f'{path} has no validation results (val_interval longer than '
                            'the run?)')
    keys = [k for k in lines[-1] if '/' in k]
    if monitor is None:
        monitor = next((k for k in keys if k.startswith('mean/')), keys[0])
    scored = [r for r in lines if isinstance(r.get(monitor), (int, float))]
    if not scored:
        raise AblationError(f'{path}: no evaluation has the monitored key {monitor!r}; '
                            f'keys there: {sorted(keys)}')
    chosen = scored[-1] if rule == 'last' else max(scored, key=lambda r: r[monitor])
    metrics = {k: v for k, v in chosen.items() if k not in ('step', 'epoch', 'iter')}
    return dict(metrics=metrics, step=chosen.get('step'), monitor=monitor,
                num_evals=len(scored), scalars=path)


def metric_columns(runs: Dict[str, dict], monitor: str) -> List[str]:
    """Per-dataset columns sharing the monitor's metric name, then the monitor itself.

    For ``monitor='mean/coco/bbox_mAP'`` the columns are every ``<group>/coco/bbox_mAP``
    found in any run (sorted), then ``mean/coco/bbox_mAP``.
    """
    suffix = monitor.split('/', 1)[1] if '/' in monitor else monitor
    groups = sorted({k for r in runs.values() for k in r['metrics']
                     if k.endswith('/' + suffix) and k != monitor})
    return groups + [monitor]


def _fmt(v) -> str:
    return f'{v:.4f}' if isinstance(v, (int, float)) else '-'


def write_table(runs: Dict[str, dict], columns: Sequence[str], out_dir: str,
                title: str = 'ablation') -> Dict[str, str]:
    """Write ``ablation.{md,csv,json,png}`` (rows = runs in order, columns = metrics).

    Returns:
        dict[str, str]: Kind -> path written; ``'markdown'`` also holds the table text
        under the key ``'text'``.
    """
    header = ['run'] + list(columns)
    rows = [[name] + [r['metrics'].get(c) for c in columns] for name, r in runs.items()]
    md = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join([row[0]] + [_fmt(v) for v in row[1:]]) + ' |' for row in rows]
    text = '\n'.join(md) + '\n'
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([[row[0]] + ['' if v is None else v for v in row[1:]] for row in rows])
    paths = dict(markdown=osp.join(out_dir, f'{title}.md'), csv=osp.join(out_dir, f'{title}.csv'),
                 json=osp.join(out_dir, f'{title}.json'), png=osp.join(out_dir, f'{title}.png'))
    _atomic_write(paths['markdown'], text.encode())
    _atomic_write(paths['csv'], buf.getvalue().encode())
    _atomic_write(paths['json'], json.dumps(
        dict(columns=list(columns), runs=runs), indent=1).encode())
    _atomic_write(paths['png'], _bar_chart(rows, columns))
    return dict(paths, text=text)


def _bar_chart(rows: List[list], columns: Sequence[str]) -> bytes:
    """Grouped bars: one group per run, one bar per metric column (PNG bytes)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    n_runs, n_cols = len(rows), len(columns)
    width = 0.8 / max(n_cols, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * n_runs * max(n_cols, 1) * 0.5), 4.0))
    x = np.arange(n_runs)
    for j, col in enumerate(columns):
        vals = [row[1 + j] if isinstance(row[1 + j], (int, float)) else np.nan for row in rows]
        bars = ax.bar(x + (j - (n_cols - 1) / 2) * width, vals, width, label=col)
        ax.bar_label(bars, fmt='%.3f', fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, [row[0] for row in rows], rotation=20, ha='right', fontsize=8)
    ax.set_ylabel('metric')
    ax.legend(fontsize=7)
    ax.margins(y=0.2)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format='png', dpi=110)
    plt.close(fig)
    return out.getvalue()
