"""Dockerfile parsing: instructions with their line numbers, flags and arguments, and
the variable expansion Docker applies (``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR:+alt}``) to the instructions that take it. Errors name the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from engine.errors import InvalidArgument

INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
    "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}
# Instructions whose arguments get ${VAR} expansion (Docker's list).
EXPANDED = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ONBUILD"}
FLAGS = {
    "FROM": {"platform"}, "COPY": {"from", "chown", "chmod", "link"}, "ADD": {"chown", "chmod", "link", "checksum"},
    "RUN": {"network", "mount", "security"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}


class DockerfileError(InvalidArgument):
    pass


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str  # the raw arguments (continuations joined)
    flags: dict[str, str] = field(default_factory=dict)
    original: str = ""

    def error(self, message: str) -> DockerfileError:
        return DockerfileError(f"Dockerfile:{self.line}: {self.keyword}: {message}")

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
        return None


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile; unknown instructions and malformed lines are errors."""
    escape = "\\"
    lines = text.splitlines()
    # parser directives: only at the very top, as "# escape=`"
    for raw in lines:
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", raw)
        if not m:
            break
        if m.group(1).lower() == "escape":
            if m.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token {m.group(2)!r}: must be ` or \\")
            escape = m.group(2)
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [raw.rstrip()]
        while parts[-1].endswith(escape) and i <= len(lines):
            parts[-1] = parts[-1][:-1]
            # comment and empty lines inside a continuation are skipped
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            parts.append(lines[i].rstrip())
            i += 1
        joined = "".join(p.lstrip() for p in parts)
        keyword, _, rest = joined.strip().partition(" ")
        upper = keyword.upper()
        if upper not in INSTRUCTIONS:
            raise DockerfileError(f"Dockerfile:{start}: unknown instruction: {keyword}")
        instruction = Instruction(start, upper, rest.strip(), {}, joined.strip())
        _take_flags(instruction)
        if not instruction.args and upper not in ("HEALTHCHECK",):
            raise instruction.error("needs at least one argument")
        out.append(instruction)
    if not out:
        raise DockerfileError("the Dockerfile is empty (no instructions)")
    first = next((ins for ins in out if ins.keyword not in ("ARG",)), None)
    if first is None or first.keyword != "FROM":
        raise DockerfileError(f"Dockerfile:{(first or out[0]).line}: the first instruction must be FROM "
                              "(only ARG may come before it)")
    return out


def _take_flags(ins: Instruction) -> None:
    allowed = FLAGS.get(ins.keyword, set())
    rest = ins.args
    while rest.startswith("--"):
        token, _, tail = rest.partition(" ")
        name, eq, value = token[2:].partition("=")
        if name not in allowed:
            raise ins.error(f"unknown flag: --{name}")
        if not eq and name != "link":
            raise ins.error(f"flag --{name} needs a value (--{name}=...)")
        ins.flags[name] = value
        rest = tail.lstrip()
    ins.args = rest


_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+?])(?P<word>[^}]*))?\}"
                  r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, env: dict[str, str], ins: Instruction | None = None) -> str:
    """``$VAR`` expansion as the Dockerfile does it; ``\\$`` stays a literal ``$``."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if ch == "$":
            m = _VAR.match(text, i)
            if m:
                name = m.group("braced") or m.group("plain")
                value = env.get(name)
                op, word = m.group("op"), m.group("word")
                if op == ":-":
                    value = value if value else expand(word or "", env, ins)
                elif op == ":+":
                    value = expand(word or "", env, ins) if value else ""
                elif op == ":?" and not value:
                    message = f"{name}: {word or 'parameter not set'}"
                    raise ins.error(message) if ins else DockerfileError(message)
                out.append(value or "")
                i = m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, with quotes ("a b", 'c d') and backslash escapes."""
    words, cur, quote, have = [], [], None, False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in '"\\$':
                i += 1
                cur.append(text[i])
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote, have = ch, True
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            have = True
        elif ch.isspace():
            if cur or have:
                words.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(ch)
            have = True
        i += 1
    if quote:
        raise DockerfileError(f"unterminated quote in {text!r}")
    if cur or have:
        words.append("".join(cur))
    return words


def key_values(ins: Instruction, text: str) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` (quotes allowed) or the legacy ``KEY VALUE WITH SPACES``."""
    words = split_words(text)
    if not words:
        raise ins.error("needs KEY=VALUE")
    if "=" not in words[0]:
        if ins.keyword in ("ENV", "LABEL") and len(words) >= 2:
            key, _, value = text.strip().partition(" ")
            return [(key, " ".join(split_words(value.strip())))]
        if ins.keyword == "ARG" and len(words) == 1:
            return [(words[0], None)]  # type: ignore[list-item]
        raise ins.error(f"{words[0]!r} is not KEY=VALUE")
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ins.error(f"{word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs
