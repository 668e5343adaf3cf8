"""Every repository path and README anchor that a reader is pointed at exists.

Sources read: every tracked Markdown file, comments and docstrings of every Python file,
comments of the config YAML files, the Makefile's comments and help text, and the `--help`
text of `python -m ops` (and each command) and `python -m image_build` (and each command).

What counts as a path: a token that starts with one of the repository's top-level folders
followed by `/` (`config/examples/foo.yaml`, `tests/data/...`) and is not part of a URL or an
absolute/relative path elsewhere (`/work/...`, `../shared/...`), a glob (`tests/test_*.py`) or
a placeholder (`ops/<name>.py`, `dist/manifests/$ENV`). Paths under git-ignored output folders
(`bench/results/`) are produced by commands and are not checked.

What counts as an anchor: a Markdown link `[text](#slug)` or `[text](file.md#slug)`,
`README.md#slug` anywhere, and a README section named in quotes (`README section "Delivery"`,
`README ("Inference graphs")`); each must match a heading of that file (GitHub's slugs).
"""

from __future__ import annotations

import argparse
import ast
import io
import posixpath
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Generated Python (cdk8s import output); this file's own examples are made up on purpose.
PYTHON_EXCLUDED = ("k8s_charts/imports/", "tests/test_docs_paths.py")
# Paths in other repositories, named where we cite our sources (path -> whose path it is).
UPSTREAM = {
    "docs/fern/pages/reference/kubernetes-api/dynamo-graph-deployment.mdx": "ai-dynamo/dynamo 1.6",
    "config/crds/bases/": "external-secrets/external-secrets",
}
# Output folders inside tracked top-level folders (git-ignored): created by commands.
GENERATED = ("bench/results/",)
# A path token: stops at whitespace, quotes, brackets, commas and the like; `:` (line numbers,
# `file: field`) and `#` (anchors) end it too.
TOKEN_CHARS = r"[^\s`'\"()\[\]{},;:|#!?]"
PLACEHOLDER = re.compile(r"[<>*$%…]|\.\.\.|\{|\}")


@dataclass(frozen=True)
class Reference:
    source: str  # where it was found, e.g. "README.md:12" or "ops --help"
    target: str

    def __str__(self) -> str:
        return f"{self.source}: {self.target}"


@cache
def tracked_files() -> tuple[str, ...]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(line for line in out.splitlines() if line and (REPO / line).exists())


@cache
def top_level_folders() -> frozenset[str]:
    return frozenset(path.split("/")[0] for path in tracked_files() if "/" in path)


def path_pattern(folders: frozenset[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(name) for name in sorted(folders, key=len, reverse=True))
    # Not preceded by anything that makes it part of a longer path, a URL or an identifier.
    return re.compile(rf"(?<![\w./~@$-])(?:{names})/{TOKEN_CHARS}*")


def paths_in(text: str, folders: frozenset[str] | None = None) -> list[str]:
    """Repo-relative paths named in free text (placeholders, globs and generated output skipped)."""
    found = []
    for match in path_pattern(folders or top_level_folders()).finditer(text):
        token = match.group(0)
        end = match.end()
        if end < len(text) and PLACEHOLDER.match(text[end]):
            continue  # `ops/<name>.py`, `tests/test_*.py`, `tests/data/…`: a pattern, not a path
        if PLACEHOLDER.search(token):
            continue
        token = token.rstrip(".")
        if token.startswith(GENERATED) or token in UPSTREAM:
            continue
        found.append(token)
    return found


# --- headings and GitHub slugs -------------------------------------------------------------


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: rendered text, lower case, punctuation dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images -> their text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.append(match.group(1))
    return found


def slugs(markdown: str) -> set[str]:
    """Every anchor of a document, duplicates numbered the way GitHub does (`-1`, `-2`)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(markdown):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        result.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return result


def names_a_heading(title: str, markdown: str) -> bool:
    """A section named by its title, or by the part before its subtitle: "Delivery" names
    "Delivery: your own Dynamo images, ...", "Review a change" names "Review a change (...)"."""
    for heading in map(normalize_title, headings(markdown)):
        if heading == title or heading.startswith((f"{title}:", f"{title} (")):
            return True
    return False


def normalize_title(title: str) -> str:
    return re.sub(r"\s+", " ", title.replace("`", "")).strip().lower()


# --- text a reader sees, per kind of file -------------------------------------------------


def python_doc_text(source: str) -> list[tuple[int, str]]:
    """Comments and docstrings of a Python file, with their line numbers."""
    texts: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            texts.append((token.start[0], token.string))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                texts.append((node.body[0].lineno, docstring))
    return texts


def hash_comments(source: str) -> list[tuple[int, str]]:
    """`#` comments of YAML or a Makefile (whole-line or trailing after a space)."""
    texts = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"(?:^|\s)(#.*)$", line)
        if match:
            texts.append((number, match.group(1)))
    return texts


def makefile_text(source: str) -> list[tuple[int, str]]:
    texts = hash_comments(source)
    for number, line in enumerate(source.splitlines(), start=1):
        if match := re.match(r"\s*@?echo\s+(.*)$", line):
            texts.append((number, match.group(1)))
    return texts


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_help_texts() -> list[tuple[str, str]]:
    from image_build.cli import build_parser as image_build_parser
    from ops.cli import build_parser as ops_parser

    texts = []
    for name, build in (("python -m ops", ops_parser), ("python -m image_build", image_build_parser)):
        parser = build()
        texts.append((f"{name} --help", parser.format_help()))
        for command, sub in subcommand_parsers(parser).items():
            texts.append((f"{name} {command} --help", sub.format_help()))
    return texts


# --- collecting references ------------------------------------------------------------------


def references_in(text: str, source: str, markdown_file: str | None = None) -> list[Reference]:
    """Paths and README anchors in one piece of text. `markdown_file` (repo-relative) is the
    file whose relative links and `#anchors` the text's Markdown links resolve against."""
    refs = [Reference(source, path) for path in paths_in(text)]
    refs += [
        Reference(source, f"README.md#{slug}")
        for slug in re.findall(r"(?<![\w/.-])README\.md#([\w-]+)", text)
    ]
    for title in re.findall(r"README(?:\.md)?(?: section)?:?\s*\(?\s*[\"“']([^\"”']+)[\"”']", text):
        refs.append(Reference(source, f"README.md section {normalize_title(title)!r}"))
    if markdown_file is not None:
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            if file_part:
                file_part = posixpath.normpath(posixpath.join(posixpath.dirname(markdown_file), file_part))
            else:
                file_part = markdown_file
            if file_part == ".." or file_part.startswith("../"):
                refs.append(Reference(source, f"{target} (outside the repository)"))
            else:
                refs.append(Reference(source, file_part + (f"#{anchor}" if anchor else "")))
    return refs


def scanned_texts() -> list[tuple[str, str, str | None]]:
    """(where, text, Markdown file or None) for every piece of text a reader is shown."""
    texts: list[tuple[str, str, str | None]] = []
    for path in tracked_files():
        full = REPO / path
        if path.endswith(".md"):
            text = read(full)
            texts += [(f"{path}:{n}", line, path) for n, line in enumerate(text.splitlines(), start=1)]
            # Section names quoted across a line break ("What is verified ...\nand how").
            texts += [
                (path, f'README section "{title}"', None)
                for title in re.findall(r'README section\s+"([^"]+)"', text)
            ]
        elif path.endswith(".py") and not path.startswith(PYTHON_EXCLUDED):
            texts += [(f"{path}:{n}", text, None) for n, text in python_doc_text(read(full))]
        elif path.startswith("config/") and path.endswith((".yaml", ".yml")):
            texts += [(f"{path}:{n}", text, None) for n, text in hash_comments(read(full))]
        elif path == "Makefile":
            texts += [(f"{path}:{n}", text, None) for n, text in makefile_text(read(full))]
    texts += [(source, text, None) for source, text in cli_help_texts()]
    return texts


def collect_references() -> list[Reference]:
    refs: list[Reference] = []
    for source, text, markdown_file in scanned_texts():
        refs += references_in(text, source, markdown_file=markdown_file)
    return refs


def broken(refs: list[Reference], repo: Path = REPO) -> list[Reference]:
    """References whose file, folder, heading anchor or named section does not exist."""
    problems = []
    for ref in refs:
        target = ref.target
        if target.endswith("(outside the repository)"):
            problems.append(ref)
            continue
        section = re.match(r"README\.md section '(.*)'$", target)
        if section:
            if not names_a_heading(section.group(1), read(repo / "README.md")):
                problems.append(ref)
            continue
        file_part, _, anchor = target.partition("#")
        path = repo / file_part
        if not path.exists() or (anchor and (path.suffix != ".md" or anchor not in slugs(read(path)))):
            problems.append(ref)
    return problems


@cache
def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- tests ------------------------------------------------------------------------------------


def test_every_referenced_path_and_anchor_exists():
    refs = collect_references()
    # A sanity floor: the scan really reads the sources (a regex gone wrong finds nothing).
    assert len(refs) > 200, f"only {len(refs)} references found; is the scan broken?"
    problems = broken(refs)
    assert not problems, "references to things that do not exist:\n" + "\n".join(map(str, problems))


def test_scan_reads_each_kind_of_source():
    sources = {source.split(":")[0] for source, _, _ in scanned_texts()}
    expected = {
        "README.md",
        "DEVELOPERS.md",
        "docs/CONFIG.md",
        "Makefile",
        "config/default.yaml",
        "config/examples/graphs/vllm-agg.yaml",
        "stacks/karpenter.py",
        "python -m ops --help",
        "python -m ops smoke --help",
        "python -m image_build start --help",
    }
    assert expected <= sources, sorted(expected - sources)


FOLDERS = frozenset({"config", "tests", "docs", "k8s_charts", "ops"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see `config/examples/foo.yaml`.", ["config/examples/foo.yaml"]),
        ("(k8s_charts/x.py, tests/data/a.json)", ["k8s_charts/x.py", "tests/data/a.json"]),
        ("make plan CONFIG=config/examples/graphs/vllm-agg.yaml", ["config/examples/graphs/vllm-agg.yaml"]),
        ("config/default.yaml:2: graphs[0]: bad", ["config/default.yaml"]),
        ("https://github.com/ai-dynamo/dynamo/blob/v1.6.1/docs/guide.md", []),
        ("/work/main/tests/x.py and ../shared/reference/docs/y.md", []),
        ("globs tests/test_*.py, placeholders ops/<name>.py and tests/data/…", []),
        ("dist/manifests/<environment>/ and config/$(ENV).yaml", []),
        ("the dynamo_platform/config module, subtests/x", []),
    ],
)
def test_paths_in_matches_repo_paths_only(text, expected):
    assert paths_in(text, FOLDERS) == expected


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        (
            "Platform (Dynamo operator, model cache, Hugging Face token, monitoring)",
            "platform-dynamo-operator-model-cache-hugging-face-token-monitoring",
        ),
        ("What is verified against Dynamo 1.6.1, and how", "what-is-verified-against-dynamo-161-and-how"),
        ("Configuration (`karpenter:`)", "configuration-karpenter"),
        ("Examples (`config/examples/graphs/`)", "examples-configexamplesgraphs"),
        ("A & B", "a--b"),
        ("The [docs](x.md) page", "the-docs-page"),
    ],
)
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug


def test_duplicate_headings_get_numbered_slugs():
    assert slugs("## Troubleshooting\n## Troubleshooting\n```\n# not a heading\n```\n") == {
        "troubleshooting",
        "troubleshooting-1",
    }


def test_planted_missing_references_fail(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "real.yaml").write_text("a: 1\n")
    (tmp_path / "README.md").write_text("# Project\n\n## Inference graphs\n")
    text = (
        'Real: config/real.yaml, README.md#inference-graphs, README "Inference graphs".\n'
        "Planted: config/examples/missing.yaml, README.md#no-such-section, "
        'see the README section "Configuration reference".\n'
    )
    refs = references_in(text, "planted:1") + references_in(
        "[ok](#inference-graphs) [gone](#gone) [file](config/nope.yaml) [up](../x.md)",
        "README.md:9",
        markdown_file="README.md",
    )
    problems = {ref.target for ref in broken(refs, repo=tmp_path)}
    assert problems == {
        "config/examples/missing.yaml",
        "README.md#no-such-section",
        "README.md section 'configuration reference'",
        "README.md#gone",
        "config/nope.yaml",
        "../x.md (outside the repository)",
    }


def test_planted_missing_path_fails_the_whole_check(monkeypatch):
    """End to end: one missing path in any scanned text turns the main check red."""
    planted = [("planted --help", "see config/examples/planted-missing.yaml and README.md#nowhere")]
    monkeypatch.setattr(sys.modules[__name__], "cli_help_texts", lambda: planted)
    with pytest.raises(AssertionError) as failure:
        test_every_referenced_path_and_anchor_exists()
    assert "planted --help: config/examples/planted-missing.yaml" in str(failure.value)
    assert "planted --help: README.md#nowhere" in str(failure.value)
