"""Implementation size of a backend: non-blank, non-comment source lines of its ``.sources``.

A rough but uniform measure of how much code each stack needed. Python and Mojo files are read
with Python's tokenizer (Mojo's syntax is close enough), so comments and docstrings (string
statements) are not counted; C and C++ files drop ``//`` and ``/* */`` comments (string
literals are not parsed, an approximation that only matters for comment markers inside
strings); other files (CMake, shell) drop ``#`` comment lines. The paths in ``.sources`` are
relative to the repository, found next to the installed package (a wheel ships the C++ and Mojo
sources under gradi/native_src and gradi/mojo_src) or in the working directory; when a file is
not there the size is unknown.
"""

import io
import re
import tokenize
from pathlib import Path

import gradi

PYTHON_LIKE = {".py", ".mojo", ".🔥"}
C_LIKE = {".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".cu"}
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                   tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


# Where an installed wheel keeps the non-Python sources (native/CMakeLists.txt installs them).
INSTALLED_SOURCES = {"native/src/": "gradi/native_src/", "mojo/": "gradi/mojo_src/"}


def repository_roots():
    """Where ``.sources`` paths may be rooted: the package's parent directory, then the cwd."""
    return [Path(gradi.__file__).resolve().parent.parent, Path.cwd()]


def _candidates(root, source):
    """The file ``source`` (a repository path) as a checkout has it, then as a wheel installs it."""
    yield root / source
    for prefix, installed in INSTALLED_SOURCES.items():
        if source.startswith(prefix):
            yield root / (installed + source[len(prefix):])


def count_backend_lines(sources):
    """Total code lines of the repo-relative ``sources``, or None if any file is not found."""
    if not sources:
        return None
    for root in repository_roots():
        paths = [next((path for path in _candidates(root, source) if path.is_file()), None)
                 for source in sources]
        if all(paths):
            return sum(count_code_lines(path) for path in paths)
    return None


def count_code_lines(path):
    """Non-blank, non-comment lines of one file (see the module docstring for the rules)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    suffix = Path(path).suffix
    if suffix in PYTHON_LIKE:
        try:
            return _python_code_lines(text)
        except (tokenize.TokenError, SyntaxError):
            return _hash_code_lines(text)
    if suffix in C_LIKE:
        without_blocks = _BLOCK_COMMENT.sub(lambda match: "\n" * match.group().count("\n"), text)
        return sum(1 for line in without_blocks.splitlines() if line.split("//", 1)[0].strip())
    return _hash_code_lines(text)


def _hash_code_lines(text):
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _python_code_lines(text):
    lines, statement = set(), []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if not (len(statement) == 1 and statement[0].type == tokenize.STRING):
                for kept in statement:
                    lines.update(range(kept.start[0], kept.end[0] + 1))
            statement = []
        elif token.type not in _SKIPPED_TOKENS:
            statement.append(token)
    return len(lines)
