"""docs/deploy.md's shell commands as a test runs them (tests/test_deploy_doc.py): every
```sh block's command lines, in the order of the page, with the heading they stand under;
and a sandbox that runs one line with bash after swapping the machine's paths for its own
folders. The swaps and the lines the sandbox cannot run are listed here, each with why."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy.md"
BIN = Path(sys.executable).parent  # this checkout's carebot stands for /opt/carebot's
EXAMPLE_FILES = sorted((ROOT / "examples").glob("carebot*.env"))

#: Lines the sandbox does not run, and why (each must still match a line of the page).
SKIPS: dict[str, str] = {
    r"^apt-get install ": "installs Debian packages (root, the network)",
    r"^useradd ": "adds a system user to this machine; the test's own user stands for carebot",
    r"^python3 -m venv /opt/carebot$": "a new virtual environment; this checkout's is used",
    r"^/opt/carebot/bin/pip install ": "installs carebot (and, from a wheel, its dependencies "
                                       "from the network); this checkout's carebot is used",
    r"^systemctl ": "needs systemd running as PID 1; the units are checked with "
                    "systemd-analyze verify (test_shipped_units_verify)",
    r"^journalctl ": "reads systemd's journal, which a sandbox has not",
    r"^curl -s http://127\.0\.0\.1:8080/healthz": "needs the service started by systemd; "
                                                   "/healthz is tested in tests/test_ops.py",
    r"^runuser -u postgres -- createuser --pwprompt ": "asks for a password at a terminal; "
                                                       "the test makes the role with SQL",
}


@dataclass(frozen=True)
class Line:
    """One command line of the page (continuations joined) and where it stands."""

    part: str  # the "## " heading
    section: str  # the "### " heading ("" when none yet)
    text: str

    def skipped(self) -> str | None:
        for pattern, why in SKIPS.items():
            if re.search(pattern, self.text):
                return why
        return None


def documented_lines(text: str | None = None) -> list[Line]:
    """The command lines of every ```sh block, in order; blocks that show a shipped
    environment file (tests/test_env_samples.py compares those) are contents, not commands."""
    text = DEPLOY.read_text(encoding="utf-8") if text is None else text
    samples = {f.read_text(encoding="utf-8") for f in EXAMPLE_FILES}
    lines: list[Line] = []
    part = section = ""
    for chunk in re.split(r"(```sh\n.*?```)", text, flags=re.DOTALL):
        if not chunk.startswith("```sh\n"):
            for heading in re.findall(r"^(##+) (.+)$", chunk, flags=re.MULTILINE):
                if heading[0] == "##":
                    part, section = heading[1], ""
                elif heading[0] == "###":
                    section = heading[1]
            continue
        body = chunk[len("```sh\n"):-3]
        if body in samples:
            continue
        for command in body.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                lines.append(Line(part, section, command))
    return lines


@dataclass
class Sandbox:
    """Folders standing for the machine's, and the environment the commands run with (what
    an operator fills into the environment file, given as variables: the environment wins)."""

    root: Path
    env: dict[str, str]
    swaps: list[tuple[str, str | Callable[[re.Match[str]], str]]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # everything every command printed
    stdin: str = ""  # what is typed at a prompt (``read -rsp … PASSWORD``)

    def __post_init__(self) -> None:
        # What a Debian with systemd, nginx and Prometheus installed already has.
        for folder in ("/etc/systemd/system", "/etc/nginx/sites-enabled", "/etc/prometheus"):
            self.path(folder).mkdir(parents=True, exist_ok=True)

    def path(self, machine_path: str) -> Path:
        """Where the sandbox keeps what the page puts at ``machine_path``."""
        return self.root / machine_path.lstrip("/")

    def command(self, line: Line) -> str:
        text = line.text
        for pattern, replacement in self.swaps:
            text = re.sub(pattern, replacement, text)
        for machine in ("/etc/systemd/system", "/etc/nginx", "/etc/prometheus", "/etc/carebot",
                        "/var/lib/carebot", "/var/backups/carebot"):
            text = text.replace(machine, str(self.path(machine)))
        return text

    async def run(self, line: Line) -> tuple[int, str]:
        """The line with bash (-e, pipefail) in the sandbox: (exit code, stdout + stderr)."""
        proc = await asyncio.create_subprocess_exec(
            "bash", "-e", "-o", "pipefail", "-c", self.command(line), cwd=self.root,
            env=self.env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(self.stdin.encode()), timeout=120)
        text = out.decode(errors="replace")
        self.said.append(text)
        return proc.returncode or 0, text


def base_swaps() -> list[tuple[str, str | Callable[[re.Match[str]], str]]]:
    """What every sandbox swaps: the user, the owners (the test's user owns everything),
    the installed carebot, the source tree."""
    return [
        (r"runuser -u carebot -- ", ""),
        (r"-o (root|carebot) -g carebot ", ""),
        (r"/opt/carebot/bin/", f"{BIN}/"),
        (r"/path/to/carebot\b", str(ROOT)),
    ]
