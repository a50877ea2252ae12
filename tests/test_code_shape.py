"""Code-shape guard: no function over 60 lines, no file over 450 lines."""
import ast
from pathlib import Path
from typing import List

PACKAGE = Path(__file__).resolve().parents[1] / 'mtl_plugin'
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 450


def _offenders() -> List[str]:
    """Lists every over-long function and file in the package.

    Returns:
        list[str]: ``path:line name (N lines)`` for each offender.
    """
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        text = path.read_text(encoding='utf-8')
        rel = path.relative_to(PACKAGE.parent)
        n_lines = len(text.splitlines())
        if n_lines > MAX_FILE_LINES:
            found.append(f'{rel} file ({n_lines} lines)')
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f'{rel}:{node.lineno} {node.name} ({length} lines)')
    return found


def test_code_shape():
    offenders = _offenders()
    assert not offenders, 'too long:\n' + '\n'.join(offenders)


if __name__ == '__main__':
    print('\n'.join(_offenders()) or 'ok')
