"""Sphinx helpers of the mfntk documentation.

- :func:`figure_scraper`: a sphinx-gallery image scraper for the figures of :mod:`mfntk.plot`,
  which are :class:`matplotlib.figure.Figure` objects made without pyplot (so the built-in
  matplotlib scraper, which asks pyplot for its figures, never sees them).
- The ``mfntk --help`` texts: written at the start of each build to ``_generated/cli.md``,
  one section per command, so that the command-line page shows what the installed command
  prints.
- A check that the API page lists every public name of ``mfntk.__all__`` (a warning, hence an
  error under ``-W``, names a missing one).
- References: mfntk lists the works a module cites once, in the module's (or its package's)
  docstring or in one function's, and other functions cite them (``[CS09]_``); numpydoc makes
  citations local to one docstring, so :func:`add_cited_references` copies each cited
  definition into the References section of the docstring that cites it.
- Docstrings as reStructuredText: mfntk writes maths in plain text, norms ``|x - y|`` and
  names such as ``w_-`` or scikit-learn's ``intercept_``, which reStructuredText would read as
  substitutions and hyperlink references; :func:`escape_plain_text` escapes them in prose.
  Members that classes inherit from outside mfntk (scikit-learn's ``set_fit_request``, the
  methods of ``Exception``) are left out of the API pages.
"""
import argparse
import inspect
import os
import re
import sys
import textwrap
import weakref

from sphinx.util import logging

logger = logging.getLogger(__name__)

_HELP_COLUMNS = "96"       # argparse wraps help texts to $COLUMNS
_shown_figures = weakref.WeakSet()


# ---- gallery ---------------------------------------------------------------------------

def _figures_in(value):
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Figure)]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, Figure)]
    return []


def figure_scraper(block, block_vars, gallery_conf, **kwargs):
    """The Figures bound to names of the example (also in a list, tuple or dict) that no
    earlier code block showed and that pyplot does not manage (the matplotlib scraper shows
    those), saved as PNG and returned as reStructuredText."""
    from sphinx_gallery.scrapers import figure_rst

    figures = []
    for value in list(block_vars["example_globals"].values()):
        for fig in _figures_in(value):
            if fig.canvas.manager is not None:   # pyplot's: the matplotlib scraper shows (and closes) it
                _shown_figures.add(fig)
            elif fig not in _shown_figures and fig not in figures:
                figures.append(fig)
    paths = []
    for fig, path in zip(figures, block_vars["image_path_iterator"]):
        fig.savefig(path, dpi=110)
        _shown_figures.add(fig)
        paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


# ---- docstrings -------------------------------------------------------------------------

# an underscore that ends a word (after a letter or digit, before a space, punctuation or the
# end of the line): reStructuredText reads "name_" as a hyperlink reference
_TRAILING_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])_(?=[\s\-.,:;!?/'\")\]}>+]|$)")
_LITERAL_DIRECTIVE = re.compile(r"^\s*\.\. (code-block|code|sourcecode|math|literalinclude|doctest|testcode)::")
_INLINE_LITERAL = re.compile(r"(``.+?``)")


def _indent(line):
    return len(line) - len(line.lstrip())


def _escape_prose(text):
    return _TRAILING_UNDERSCORE.sub(r"\\_", text.replace("|", "\\|"))


def escape_plain_text(lines):
    """``lines`` (reStructuredText) with every ``|`` and every underscore that ends a word
    escaped in prose (``\\|``, ``\\_``); literal blocks (after ``::``), code and maths
    directives, doctest blocks and inline literals are left as they are."""
    out = []
    literal_indent = None     # indentation of the paragraph that opened a literal block
    doctest = False           # inside a doctest block (from ">>>" to the next blank line)
    for line in lines:
        if literal_indent is not None:
            if line.strip() and _indent(line) <= literal_indent:
                literal_indent = None
            else:
                out.append(line)
                continue
        stripped = line.strip()
        doctest = stripped.startswith(">>>") or (doctest and bool(stripped))
        if doctest or ("|" not in line and "_" not in line):
            escaped = line
        else:
            escaped = "".join(part if part.startswith("``") else _escape_prose(part)
                              for part in _INLINE_LITERAL.split(line))
        out.append(escaped)
        if stripped.endswith("::") or _LITERAL_DIRECTIVE.match(line):
            literal_indent = _indent(line)
    return out


_CITATION = re.compile(r"\[([\w-]+)\]_")
_DEFINITION = re.compile(r"^(\s*)\.\. \[([\w-]+)\]")


def _definitions(lines):
    """label -> the lines of its ``.. [label] ...`` definition (continuation lines included)."""
    found = {}
    for i, line in enumerate(lines):
        match = _DEFINITION.match(line)
        if match:
            indent = len(match.group(1))
            block = [line.strip()]
            for more in lines[i + 1:]:
                if not more.strip() or _indent(more) <= indent:
                    break
                block.append("   " + more.strip())
            found[match.group(2)] = block
    return found


def _module_references(module_name):
    """The reference definitions of a module's docstring, of its parent packages' ones, then of
    the docstrings of the module's own functions and classes."""
    docs = []
    parts = module_name.split(".")
    for i in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        docs.append(inspect.getdoc(module) if module is not None else None)
    module = sys.modules.get(module_name)
    for obj in vars(module).values() if module is not None else ():
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module_name:
            docs.append(inspect.getdoc(obj))
    found = {}
    for doc in docs:
        for label, block in _definitions((doc or "").splitlines()).items():
            found.setdefault(label, block)
    return found


def _section_header(lines, i):
    return i + 1 < len(lines) and lines[i].strip() and set(lines[i + 1].strip()) == {"-"} \
        and len(lines[i + 1].strip()) >= len(lines[i].strip())


def add_cited_references(lines, module_name):
    """``lines`` (a numpydoc docstring) with the definitions of the references it cites but
    does not define, taken from its module's docstring, added to its References section."""
    cited = list(dict.fromkeys(_CITATION.findall("\n".join(lines))))
    defined = _definitions(lines)
    missing = [label for label in cited if label not in defined]
    if not missing or not module_name:
        return lines
    known = _module_references(module_name)
    blocks = [known[label] for label in missing if label in known]
    if not blocks:
        return lines
    new = [line for block in blocks for line in block]
    lines = list(lines)
    headers = [i for i in range(len(lines)) if _section_header(lines, i)]
    refs = [i for i in headers if lines[i].strip() == "References"]
    if refs:
        later = [i for i in headers if i > refs[0]]
        end = later[0] if later else len(lines)
        while end > refs[0] + 2 and not lines[end - 1].strip():
            end -= 1
        return lines[:end] + [""] + new + lines[end:]
    examples = [i for i in headers if lines[i].strip() == "Examples"]
    at = examples[0] if examples else len(lines)
    section = ["", "References", "----------"] + new + [""]
    return lines[:at] + section + lines[at:]


def list_uncited_references(lines):
    """``lines`` with each reference definition that the text does not cite turned into a
    list item (a module's bibliography: its functions cite the works, not the module's own
    text; Sphinx reports an uncited citation)."""
    cited = set(_CITATION.findall("\n".join(lines)))
    out = []
    block_indent = None       # indentation of the definition being turned into an item
    for line in lines:
        if block_indent is not None and line.strip() and _indent(line) > block_indent:
            out.append(" " * (block_indent + 2) + line.strip())
            continue
        block_indent = None
        match = _DEFINITION.match(line)
        if match and match.group(2) not in cited:
            block_indent = len(match.group(1))
            line = " " * block_indent + "- " + line.strip()[3:]
        out.append(line)
    return out


def _on_docstring_before_numpydoc(app, what, name, obj, options, lines):
    if what == "module":
        lines[:] = list_uncited_references(add_cited_references(lines, name))
    else:
        lines[:] = add_cited_references(lines, getattr(obj, "__module__", None))


def _on_docstring(app, what, name, obj, options, lines):
    lines[:] = escape_plain_text(lines)


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Leave out what a class inherits from outside mfntk (a method of Exception, scikit-learn's
    metadata-routing methods); mfntk's own members keep autodoc's decision."""
    if what == "class" and callable(obj):
        module = getattr(obj, "__module__", None) or ""
        if not module.startswith("mfntk"):
            return True
    return None


# ---- the command line ------------------------------------------------------------------

def _command_parsers(parser):
    """(name, parser) of the command and of each sub-command."""
    yield "mfntk", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"mfntk {name}", sub


def _wrap(text):
    """Lines of a help text longer than the page, wrapped at their own indentation (argparse
    keeps the descriptions of sub-commands as written; a terminal wraps them itself)."""
    width = int(_HELP_COLUMNS)
    out = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * _indent(line)
        out.extend(textwrap.wrap(line.strip(), width=width, initial_indent=indent, subsequent_indent=indent,
                                 break_on_hyphens=False, break_long_words=False))
    return "\n".join(out)


def _help_page():
    from mfntk.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _HELP_COLUMNS
    try:
        parts = []
        for name, parser in _command_parsers(build_parser()):
            text = parser.format_help()
            parts.append(f"## `{name}`\n\n```text\n$ {name} --help\n{_wrap(text).rstrip()}\n```\n")
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def _write_if_changed(path, text):
    """Rewrite ``path`` only when its text changes (an unchanged file does not rebuild its page)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ---- the API page ----------------------------------------------------------------------

def _check_api_page(srcdir):
    import mfntk

    with open(os.path.join(srcdir, "api.rst"), encoding="utf-8") as f:
        page = f.read()
    for name in mfntk.__all__:
        if name.startswith("__"):
            continue
        # an autosummary entry ("   NAME") or a directive (".. data:: NAME")
        if not re.search(rf"^(\s+|\.\. [a-z]+:: )(mfntk\.)?{re.escape(name)}\s*$", page, flags=re.MULTILINE):
            logger.warning(f"mfntk.{name} is public (mfntk.__all__) but docs/api.rst does not list it")


def _on_builder_inited(app):
    _write_if_changed(os.path.join(app.srcdir, "_generated", "cli.md"), _help_page())
    _check_api_page(app.srcdir)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_docstring_before_numpydoc, priority=400)
    app.connect("autodoc-process-docstring", _on_docstring, priority=900)   # after numpydoc's
    app.connect("autodoc-skip-member", _skip_foreign_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
