"""docs/plugins.md cannot go stale: every code block in it is run, and every hook is documented.

Block kinds, by language and info string:

- ``python title="<project>/<path>.py"``: a file of an example project; the projects (each
  with a ``toml title="<project>/pyproject.toml"``) are installed with pip, and their
  ``test_*.py`` files run with pytest.
- ``python`` without a title: a script, run on its own with the projects installed.
- ``toml``: parsed; a pyproject must declare a build backend and ``entry-points.ccproxy``
  pointing at a package the guide shows; ``title="config.toml"`` is written out for the commands.
- ``sh``: each line is ``pip install [-e] ./<project>`` (checked against what was installed),
  ``pytest <project>`` (the project's tests are run) or a ``ccproxy`` command (run; must succeed).
- ``console``: ``$ <ccproxy command>`` then its expected output, compared line by line with
  whitespace collapsed; a ``...`` line stands for any number of lines.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ccproxy_core.plugin_host import hookspecs
from tests.plugin_install import install_beside_ccproxy

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
KINDS = ("python", "toml", "sh", "console")
ELLIPSIS = "..."


@dataclass
class Block:
    """One fenced code block of the guide."""

    language: str
    attributes: dict[str, str]
    text: str
    line: int

    @property
    def title(self) -> str | None:
        return self.attributes.get("title")

    @property
    def id(self) -> str:
        return f"{self.language}:{self.title or ''}@{self.line}"


def read_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    current = None
    body: list[str] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        if current is None:
            opening = re.match(r"^```(\S*)(.*)$", line)
            if opening:
                current, body = Block(opening[1], dict(re.findall(r'(\w+)="([^"]*)"', opening[2])), "", number), []
        elif line.strip() == "```":
            current.text = "\n".join(body) + "\n"
            blocks.append(current)
            current = None
        else:
            body.append(line)
    assert current is None, f"code block opened on line {current.line} of {GUIDE.name} is never closed"
    return blocks


BLOCKS = read_blocks(GUIDE.read_text())


def blocks_of(language: str, titled: bool | None = None) -> list[Block]:
    return [b for b in BLOCKS if b.language == language and (titled is None or (b.title is not None) == titled)]


def as_params(blocks: list[Block]) -> list:
    return [pytest.param(block, id=block.id) for block in blocks]


# --- the contract is documented -------------------------------------------------


def hookspec_functions() -> list:
    return [
        function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "ccproxy_spec")
    ]


def documented_signature(function) -> str:
    return f"{function.__name__}({', '.join(inspect.signature(function).parameters)})"


def test_the_contract_has_the_hooks_the_guide_expects():
    names = {function.__name__ for function in hookspec_functions()}
    assert {"register_routes", "on_startup", "on_request_start", "on_request_end", "on_shutdown"} <= names


@pytest.mark.parametrize("function", hookspec_functions(), ids=lambda f: f.__name__)
def test_every_hookspec_has_a_docstring_and_a_section_in_the_guide(function):
    assert inspect.getdoc(function), f"hookspec {function.__name__} has no docstring"
    assert len(inspect.getdoc(function).split()) >= 15, (
        f"hookspec {function.__name__}: say when it fires and what if it raises"
    )
    heading = f"### `{documented_signature(function)}`"
    assert heading in GUIDE.read_text(), f"docs/plugins.md has no section {heading!r}"


def test_every_block_is_of_a_kind_this_suite_runs():
    assert BLOCKS, "no code blocks found"
    assert [b.id for b in BLOCKS if b.language not in KINDS] == []
    titles = [b.title for b in BLOCKS if b.title]
    assert len(titles) == len(set(titles)), "two blocks with the same title"
    assert [b.id for b in BLOCKS if b.title and b.language not in ("python", "toml")] == []


# --- toml and python files ------------------------------------------------------------


def projects() -> dict[str, dict]:
    """Example projects of the guide: folder name -> parsed pyproject.toml."""
    pyprojects = [b for b in blocks_of("toml", titled=True) if b.title.endswith("/pyproject.toml")]
    return {b.title.split("/")[0]: tomllib.loads(b.text) for b in pyprojects}


def test_the_guide_has_example_projects():
    assert len(projects()) >= 2 and all(re.fullmatch(r"[\w-]+", name) for name in projects())


@pytest.mark.parametrize("block", as_params(blocks_of("toml")))
def test_toml_blocks_parse(block):
    document = tomllib.loads(block.text)
    if block.title and block.title.endswith("pyproject.toml"):
        project_folder = block.title.split("/")[0]
        assert document["build-system"]["build-backend"] and document["build-system"]["requires"]
        assert "ccproxy-observability" in document["project"]["dependencies"]
        entry_points = document["project"]["entry-points"]["ccproxy"]
        assert entry_points, "a plugin declares at least one entry point in group ccproxy"
        shown = {b.title for b in blocks_of("python", titled=True)}
        for module in entry_points.values():
            package = module.split(":")[0].replace(".", "/")
            assert {f"{project_folder}/{package}/__init__.py", f"{project_folder}/{package}.py"} & shown, module


@pytest.mark.parametrize("block", as_params(blocks_of("python")))
def test_python_blocks_compile(block):
    compile(block.text, block.title or block.id, "exec")


# --- the projects, installed -----------------------------------------------------


@dataclass
class Workspace:
    """The guide's files written out, and a site folder holding its projects as pip installed them."""

    root: Path
    site: Path
    installed: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        """The machine's environment without ccproxy settings, with the projects importable and ccproxy on PATH."""
        env = {k: v for k, v in os.environ.items() if "__" not in k and k not in ("PYTHONPATH", "CCPROXY_CONFIG")}
        env["PYTHONPATH"] = str(self.site)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["XDG_CONFIG_HOME"] = str(self.root / "no-config")
        return env

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=self.env(), cwd=self.root, timeout=timeout
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("guide")
    for block in BLOCKS:
        if block.title:
            path = root / block.title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
    site = install_beside_ccproxy([root / name for name in projects()], root.parent / f"{root.name}-env")
    space = Workspace(root=root, site=site)
    space.installed = set(projects())
    return space


def sh_lines(block: Block) -> list[str]:
    return [line.strip() for line in block.text.splitlines() if line.strip() and not line.strip().startswith("#")]


def command_words(line: str) -> list[str]:
    """The command's words, without leading VAR=value assignments."""
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    return words


def project_argument(word: str) -> str:
    return word.removeprefix("./").rstrip("/")


def test_every_sh_line_is_a_command_this_suite_checks():
    for block in blocks_of("sh"):
        for line in sh_lines(block):
            words = command_words(line)
            if words[:2] == ["pip", "install"]:
                assert [w for w in words[2:] if w.startswith("-")] in ([], ["-e"]), line
                assert next(project_argument(w) for w in words[2:] if not w.startswith("-")) in projects(), line
            elif words[:1] == ["pytest"]:
                assert project_argument(words[1]) in projects(), line
            else:
                assert words[:1] == ["ccproxy"], f"{block.id}: {line!r} is not a command this test knows how to run"


def test_every_project_has_its_pip_install_line():
    named = {
        project_argument(w)
        for b in blocks_of("sh")
        for line in sh_lines(b)
        for w in command_words(line)[2:]
        if command_words(line)[:2] == ["pip", "install"] and not w.startswith("-")
    }
    assert named == set(projects())


def runs_ccproxy(line: str) -> bool:
    return command_words(line)[:1] == ["ccproxy"]


@pytest.mark.parametrize("block", as_params([b for b in blocks_of("sh") if any(map(runs_ccproxy, sh_lines(b)))]))
def test_sh_ccproxy_commands_succeed(workspace, block):
    for line in sh_lines(block):
        if runs_ccproxy(line):
            result = workspace.run(line)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"


def expected_and_commands(block: Block) -> list[tuple[str, list[str]]]:
    sessions: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        else:
            assert sessions, f"{block.id}: output before the first '$ ' command"
            sessions[-1][1].append(line)
    return sessions


def matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` lines (whitespace collapsed) cover ``actual``; a ``...`` line matches any run of lines."""
    pattern = "".join(
        ".*?" if line.strip() == ELLIPSIS else re.escape(" ".join(line.split())) + "\n" for line in expected
    )
    return re.fullmatch(pattern, "".join(" ".join(line.split()) + "\n" for line in actual), re.DOTALL) is not None


def test_the_console_matcher_can_fail():
    actual = ["NAME  VERSION", "a  1", "b  2", "c  3"]
    assert matches(["NAME VERSION", "...", "b 2", "..."], actual)
    assert not matches(["NAME VERSION", "b 2", "..."], actual)
    assert not matches(["NAME VERSION", "...", "b 3", "..."], actual)
    assert not matches(["...", "b 2"], actual)


@pytest.mark.parametrize("block", as_params(blocks_of("console")))
def test_console_blocks_show_what_the_command_prints(workspace, block):
    for command, expected in expected_and_commands(block):
        assert runs_ccproxy(command), f"{block.id}: only ccproxy commands belong in console blocks"
        result = workspace.run(command)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        shown = "\n".join(expected)
        assert matches(expected, result.stdout.splitlines()), f"$ {command}\nexpected:\n{shown}\ngot:\n{result.stdout}"


@pytest.mark.parametrize("block", as_params(blocks_of("python", titled=False)))
def test_python_scripts_run(workspace, block, tmp_path):
    script = tmp_path / "guide_script.py"
    script.write_text(block.text)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=workspace.env(),
        cwd=workspace.root,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"script from line {block.line} of {GUIDE.name} failed:\n{result.stdout}\n{result.stderr}"
    )


def guide_test_modules(project: str) -> list[Block]:
    in_project = [b for b in blocks_of("python", titled=True) if b.title.startswith(project + "/")]
    return [b for b in in_project if Path(b.title).name.startswith("test_")]


@pytest.mark.parametrize("project", [name for name in projects() if guide_test_modules(name)])
def test_project_test_suites_pass(workspace, project):
    blocks = guide_test_modules(project)
    expected = sum(len(re.findall(r"^def test_", b.text, re.MULTILINE)) for b in blocks)
    result = workspace.run(f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider {project}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"\b{expected} passed\b", result.stdout), result.stdout


def test_every_pytest_line_names_a_project_with_tests():
    for block in blocks_of("sh"):
        for line in sh_lines(block):
            if command_words(line)[:1] == ["pytest"]:
                assert guide_test_modules(project_argument(command_words(line)[1])), line
