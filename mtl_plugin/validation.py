"""Argument validation shared by every layer (datasets, models, engine, evaluation, analysis).

One error format: ``'<owner>: <what> must be <rule>, but got <value>'``, with a hint where
it helps. This module imports nothing from the package, so any module may import it.
"""
import difflib
import math
from numbers import Integral, Real
from typing import Any, Iterable, List, Optional, Type

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), bools excluded.

    Args:
        value (Any): The value.

    Returns:
        bool: True for ``3`` or ``np.int64(3)``, False for ``True`` or ``3.0``.
    """
    return isinstance(value, (Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (Python or numpy), bools excluded.

    Args:
        value (Any): The value.

    Returns:
        bool: True for ints and floats (NaN and inf included).
    """
    return isinstance(value, (Real, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


def is_finite_real(value: Any) -> bool:
    """Whether ``value`` is a finite real number, bools excluded.

    Args:
        value (Any): The value.

    Returns:
        bool: True for finite ints and floats.
    """
    return is_real(value) and math.isfinite(float(value))


def check_int(value: Any, what: str, owner: str = '', minimum: int = 0,
              optional: bool = False, error: Type[Exception] = ValueError) -> Optional[int]:
    """An int ``>= minimum`` (or None when ``optional``), as a Python int.

    Args:
        value (Any): The value to check.
        what (str): Its name in the error (``'batch_size'``).
        owner (str): The component, prefixed to the error. Defaults to '' (none).
        minimum (int): The lower bound. Defaults to 0.
        optional (bool): Whether None is allowed. Defaults to False.
        error (type): The exception raised. Defaults to ValueError.

    Returns:
        int | None: The value.
    """
    if optional and value is None:
        return None
    if not is_int(value) or value < minimum:
        where = f'{owner}: {what}' if owner else what
        raise error(f'{where} must be an int >= {minimum}{" or None" if optional else ""}, '
                    f'but got {value!r}')
    return int(value)


def check_finite(value: Any, what: str, owner: str, minimum: float = 0.0,
                 strict: bool = False, hint: str = '') -> float:
    """A finite real number ``>= minimum`` (``> minimum`` if ``strict``), as a float.

    Args:
        value (Any): The value to check.
        what (str): Its name in the error (``'l2_weight'``).
        owner (str): The component, prefixed to the error (``''`` for none).
        minimum (float): The lower bound. Defaults to 0.
        strict (bool): Whether the bound itself is excluded. Defaults to False.
        hint (str): Appended to the error. Defaults to ''.

    Returns:
        float: The value.

    Raises:
        TypeError: If ``value`` is not a number.
        ValueError: If it is not finite or below the bound.
    """
    rule = f"a finite float {'>' if strict else '>='} {minimum:g}"
    where = f'{owner}: {what}' if owner else what
    if not is_real(value):
        raise TypeError(f'{where} must be {rule}, but got {value!r} '
                        f'({type(value).__name__}){hint}')
    number = float(value)
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        raise ValueError(f'{where} must be {rule}, but got {number!r}{hint}')
    return number


def non_negative_property(name: str, label: str, doc: str) -> property:
    """A float attribute checked on every assignment (finite, >= 0), kept in ``_<name>``.

    Being a plain ``property``, it stays schedulable (``CurriculumLearningHook`` sets it
    by attribute) and is listed among an object's names in error messages.

    Args:
        name (str): The attribute's name (the value lives in ``self._<name>``).
        label (str): Its name in the error (``'DatasetClsHead.loss_weight'``).
        doc (str): The property's docstring.

    Returns:
        property: Assign it in the class body: ``lambd = non_negative_property(...)``.
    """
    private = f'_{name}'

    def fget(self) -> float:
        return getattr(self, private)

    def fset(self, value: Any) -> None:
        setattr(self, private, check_finite(value, label, owner=''))

    return property(fget, fset, doc=doc)


def check_positive_finite(value: Any, what: str, owner: str, hint: str = '') -> float:
    """A finite real number ``> 0``, as a float (see :func:`check_finite`).

    Args:
        value (Any): The value to check.
        what (str): Its name in the error.
        owner (str): The component, prefixed to the error.
        hint (str): Appended to the error. Defaults to ''.

    Returns:
        float: The value.
    """
    return check_finite(value, what, owner, minimum=0.0, strict=True, hint=hint)


def check_choice(value: Any, choices: Iterable[Any], what: str, owner: str) -> Any:
    """``value`` if it is one of ``choices``; else a ValueError naming the closest choice.

    Args:
        value (Any): The value to check.
        choices (Iterable): The allowed values.
        what (str): Its name in the error.
        owner (str): The component, prefixed to the error.

    Returns:
        Any: The value.
    """
    options = list(choices)
    if value not in options:
        raise ValueError(f'{owner}: {what} must be one of {options}, but got {value!r}'
                         f'{did_you_mean(value, options)}')
    return value


def suggest(name: Any, known: Iterable[Any], n: int = 1, cutoff: float = 0.6) -> List[str]:
    """The names in ``known`` closest to ``name`` (``difflib``), best first.

    Args:
        name (Any): The unknown name (converted with ``str``).
        known (Iterable): The known names (converted with ``str``).
        n (int): How many at most. Defaults to 1.
        cutoff (float): The similarity threshold in [0, 1]. Defaults to 0.6.

    Returns:
        list[str]: Up to ``n`` close names, maybe none.
    """
    return difflib.get_close_matches(str(name), [str(k) for k in known], n=n, cutoff=cutoff)


def did_you_mean(name: Any, known: Iterable[Any], cutoff: float = 0.6) -> str:
    """An error-message tail ``"; did you mean 'x'?"`` or ``''``.

    Args:
        name (Any): The unknown name.
        known (Iterable): The known names.
        cutoff (float): The similarity threshold. Defaults to 0.6.

    Returns:
        str: The hint, empty when no name is close.
    """
    close: Optional[List[str]] = suggest(name, known, n=1, cutoff=cutoff)
    return f'; did you mean {close[0]!r}?' if close else ''


__all__ = ['is_int', 'is_real', 'is_finite_real', 'check_int', 'check_finite', 'check_positive_finite',
           'check_choice', 'suggest', 'did_you_mean', 'non_negative_property']
