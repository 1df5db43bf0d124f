"""Count the non-layout lines of each Streamlit page: ``python scripts/page_logic.py [FILES]``.

A page should be layout and words; computation belongs in ``diffusion_core``. This counts the
physical lines of the statements that compute, by walking each page's syntax tree:

* not counted: blank lines, comments, docstrings and other bare strings, imports,
  ``st.set_page_config``;
* layout (not counted): a simple statement that calls Streamlit (``st.…``), calls something made
  by a Streamlit call (a column, container, placeholder, form, tab ...), or calls a helper
  imported from ``ui`` (shared widgets); a ``with`` whose items are such calls (its body is
  walked); a function decorated with ``st.…`` (fragment, cache) is walked like any other;
* logic (counted): every other simple statement (assignments of non-widget values, returns,
  library calls, ``ss[...] = ...``), and the header line of ``if``/``for``/``while``/``try``/
  ``def``/``match`` statements.

The result is deliberately strict: a branch that only chooses which text to show still
counts its ``if`` line.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


class _Counter:
    def __init__(self, tree: ast.Module):
        self.ui_names: set[str] = set()
        self.st_made: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ui":
                self.ui_names.update(a.asname or a.name for a in node.names)
            if isinstance(node, ast.Import):
                self.ui_names.update(a.asname or a.name for a in node.names
                                     if a.name.split(".")[0] == "ui")
        self.lines: set[int] = set()

    def _layout_root(self, name: str | None) -> bool:
        return name is not None and (name == "st" or name in self.ui_names or name in self.st_made)

    def _calls_layout(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.Call) and self._layout_root(_root_name(n.func))
                   for n in ast.walk(node))

    def _targets(self, node: ast.AST) -> list[str]:
        out = []
        for t in getattr(node, "targets", None) or [getattr(node, "target", None)]:
            for n in ast.walk(t) if t is not None else []:
                if isinstance(n, ast.Name):
                    out.append(n.id)
        return out

    def _count(self, node: ast.stmt, header_only: bool = False) -> None:
        end = node.lineno if header_only else (node.end_lineno or node.lineno)
        self.lines.update(range(node.lineno, end + 1))

    def body(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)):
            return
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            return  # docstring or bare string
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._count(s, header_only=True)
            self.body(s.body)
            return
        if isinstance(s, (ast.With, ast.AsyncWith)):
            if not all(self._calls_layout(item.context_expr) for item in s.items):
                self._count(s, header_only=True)
            for item in s.items:
                if item.optional_vars is not None:
                    self.st_made.update(n.id for n in ast.walk(item.optional_vars)
                                        if isinstance(n, ast.Name))
            self.body(s.body)
            return
        if isinstance(s, (ast.If, ast.For, ast.While, ast.Try, ast.Match)):
            self._count(s, header_only=True)
            for field in ("body", "orelse", "finalbody"):
                self.body(getattr(s, field, []) or [])
            for h in getattr(s, "handlers", []) or []:
                self.lines.add(h.lineno)
                self.body(h.body)
            for c in getattr(s, "cases", []) or []:
                self.body(c.body)
            return
        if self._calls_layout(s):
            if isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self.st_made.update(self._targets(s))
            return
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and \
                _root_name(s.value.func) == "st":
            return
        self._count(s)


def logic_lines(path: Path) -> int:
    tree = ast.parse(path.read_text(), filename=str(path))
    c = _Counter(tree)
    c.body(tree.body)
    return len(c.lines)


def page_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or page_files()
    print("| page | lines | non-layout lines |\n|---|---:|---:|")
    for f in files:
        print(f"| {f.relative_to(ROOT) if f.is_absolute() else f} | "
              f"{len(f.read_text().splitlines())} | {logic_lines(f)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
