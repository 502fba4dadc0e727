"""What a user copies from the README and docs/*.md works as written.

- Every Python example runs (with fewer iterations, and the files it saves written to a temp
  folder instead).
- Every command line in a code block names a real ``rtstyle`` subcommand, a real tool or a real
  ``make`` target, and only options that command has.
- Every ``--option`` the prose mentions exists in some command.
"""

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _blocks(path, languages):
    return [body for lang, body in FENCE.findall(path.read_text()) if lang in languages]


def _python_blocks(path):
    return _blocks(path, {"python"})


def _name(path):
    return str(path.relative_to(ROOT))


def _run_python_blocks(path, tmp_path):
    written = []

    def to_tmp(m):
        target = tmp_path / m.group(2)  # what the example saves, here instead of the repository
        written.append(target)
        return repr(str(target))

    for code in _python_blocks(path):
        code = code.replace("iterations=100", "iterations=2")
        code = re.sub(r"""(?<=save_audio\()(["'])(?:out/)?([\w.-]+)\1""", to_tmp, code)
        exec(compile(code, _name(path), "exec"), {})
    return written


def test_readme_python_examples_run(tmp_path, monkeypatch):
    assert len(_python_blocks(README)) >= 3, "README lost its python examples"
    monkeypatch.chdir(ROOT)
    written = _run_python_blocks(README, tmp_path)
    assert {p.name for p in written} >= {"speech_as_cello.wav", "speech_as_organ.wav"}
    for p in written:
        assert p.stat().st_size > 10_000, p


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_docs_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    for p in _run_python_blocks(page, tmp_path):
        assert p.stat().st_size > 10_000, p


# --- command lines ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _help(*command):
    """The --help text of ``rtstyle COMMAND`` or of ``python tools/X.py``."""
    if command[0] == "rtstyle":
        argv = [sys.executable, "-m", "rtstyle", *command[1:], "--help"]
    else:
        argv = [sys.executable, str(ROOT / command[0]), "--help"]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, f"{' '.join(command)} --help failed: {r.stderr[-2000:]}"
    return r.stdout


@functools.lru_cache(maxsize=None)
def _subcommands():
    text = _help("rtstyle")
    listed = re.search(r"\{([\w,-]+)\}", text)
    if listed:
        return frozenset(listed.group(1).split(","))
    # argparse's metavar hides the braces: the names are the indented first words of the list
    return frozenset(re.findall(r"^    ([a-z][a-z-]+)", text, flags=re.M))


def _options(text):
    return set(OPTION.findall(text))


def _command_lines(text):
    """Shell commands of a code block: continuation lines joined, prompts and comments dropped,
    ``&&``/``;``/``|`` chains split, redirections, environment assignments and wrappers removed."""
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        line = re.split(r"\s#", line, maxsplit=1)[0].strip()
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # not shell (an output line with an apostrophe)
            continue
        words = []
        for tok in [*tokens, ";"]:
            if tok in {";", "&&", "||", "|", "&"}:
                while words and re.fullmatch(r"[A-Z_]+=\S*|/usr/bin/time|time|-v", words[0]):
                    words = words[1:]
                if words:
                    yield words
                words = []
            elif words and words[-1] in {">", ">>", "<", "2>"}:
                words.pop()  # a redirection and its file
            else:
                words.append(tok)


def _check_options(words, help_text, where):
    known = _options(help_text)
    for w in words:
        w = w.strip("[]")
        if not w.startswith("--") or " " in w:  # a quoted value, e.g. --live-args "--margin 10"
            continue
        opt = w.split("=", 1)[0]
        assert opt in known, f"{where}: {opt} is not an option of it"


def _check(words, where):
    prog = words[0]
    if prog in {"rtstyle", ".venv/bin/rtstyle", "$(VENV)/bin/rtstyle"} or words[:3] in (
            ["python", "-m", "rtstyle"], ["python3", "-m", "rtstyle"]):
        args = words[3:] if words[1:2] == ["-m"] else words[1:]
        while args and args[0].startswith("-") and args[0] in {"-q", "-v", "--quiet", "--verbose"}:
            args = args[1:]
        if not args or args[0] in {"--version", "--help", "-h"}:
            return "rtstyle"
        sub = args[0]
        assert sub in _subcommands(), f"{where}: rtstyle has no command {sub!r}"
        _check_options(args[1:], _help("rtstyle", sub), f"{where}: rtstyle {sub}")
        return "rtstyle " + sub
    if re.fullmatch(r"(\S*/)?python3?", prog) and len(words) > 1 and words[1].startswith(("tools/", "tests/")):
        tool = words[1]
        assert (ROOT / tool).is_file(), f"{where}: no such tool {tool}"
        _check_options(words[2:], _help(tool), f"{where}: {tool}")
        return tool
    if prog == "make" and len(words) > 1:
        makefile = (ROOT / "Makefile").read_text()
        for target in words[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), \
                f"{where}: the Makefile has no target {target!r}"
        return "make"
    return None


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_command_lines_name_real_commands_and_options(page):
    checked = []
    for block in _blocks(page, {"", "sh", "bash", "console", "shell"}):
        for words in _command_lines(block):
            what = _check(words, f"{_name(page)}: {' '.join(words)[:80]}")
            if what:
                checked.append(what)
    if page == README:
        # the guide shows both main commands and the tour of the others
        for needed in ("rtstyle render", "rtstyle live", "rtstyle train", "rtstyle transfer",
                       "rtstyle styles", "rtstyle latency-test", "make"):
            assert needed in checked, f"README lost its {needed} example"


#: Options of other programs the prose mentions (pip's, jackd's).
OTHER_PROGRAMS_OPTIONS = {"--find-links", "--no-realtime"}


def test_options_in_the_prose_exist():
    known = set()
    for sub in _subcommands():
        known |= _options(_help("rtstyle", sub))
    known |= _options(_help("rtstyle"))
    tools = set()
    for page in PAGES:
        tools |= set(re.findall(r"tools/\w+\.py", page.read_text()))
    for tool in sorted(tools):
        if tool != "tools/judge_tagger.py":  # runs in the tagger's own environment, no --help
            known |= _options(_help(tool))
    known |= OTHER_PROGRAMS_OPTIONS
    unknown = []
    for page in PAGES:
        prose = FENCE.sub("", page.read_text())
        for span in re.findall(r"`([^`\n]+)`", prose):
            unknown += [f"{_name(page)}: `{span}`" for opt in OPTION.findall(span) if opt not in known]
    assert not unknown, "options no command has:\n" + "\n".join(unknown)


def _anchors(path):
    """GitHub's anchors of a page's headings."""
    heads = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_links_between_readme_and_docs_resolve():
    text = README.read_text()
    for page in ("quality.md", "benchmarks.md"):
        assert (ROOT / "docs" / page).is_file()
    for page in DOCS:
        assert f"docs/{page.name}" in text, f"README does not link docs/{page.name}"
    broken = []
    for page in PAGES:
        for link, anchor in re.findall(r"\]\(([^)#:\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            target = (page.parent / link).resolve() if link else page
            if not target.exists():
                broken.append(f"{_name(page)}: {link}")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{_name(page)}: {link}#{anchor}")
    assert not broken, f"broken links: {broken}"


def test_layout_lists_every_module():
    """The README's layout table names every committed module of rtstyle (a package's modules in
    its row, by file name)."""
    r = subprocess.run(["git", "ls-files", "rtstyle"], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    text = README.read_text()
    layout = text[text.index("## Layout"):]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(rtstyle/\w+/)` \|.*$", layout, flags=re.M)}
    missing = []
    for path in r.stdout.split():
        if not path.endswith(".py") or not (ROOT / path).exists():
            continue
        folder, name = path.rsplit("/", 1)
        if f"`{path}`" in layout:
            continue
        row = rows.get(folder + "/")
        if row is not None and (name == "__init__.py" or f"`{name}`" in row):
            continue
        missing.append(path)
    assert not missing, f"README's layout table does not name {missing}"
