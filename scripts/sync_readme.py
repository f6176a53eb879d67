"""Rebuild the README's integration section from the plugins' own READMEs.

Each plugin README holds its coverage table (the one its tests match); the main README
shows them all. Run ``.venv/bin/python scripts/sync_readme.py`` after editing a plugin
README; ``tests/test_docs.py`` fails while the two disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- integrations -->", "<!-- /integrations -->"

PROVIDERS = [
    ("openai", "OpenAI", "openai",
     "`PaidOpenAI(OpenAI())` / `PaidAsyncOpenAI(AsyncOpenAI())`, or `paid_hooks.instrument(\"openai\")`"),
    ("anthropic", "Anthropic", "anthropic",
     "`PaidAnthropic(Anthropic())` / `PaidAsyncAnthropic(AsyncAnthropic())`, or `paid_hooks.instrument(\"anthropic\")`"),
    ("mistral", "Mistral", "mistral",
     "`PaidMistral(Mistral())`, or `paid_hooks.instrument(\"mistral\")`"),
    ("gemini", "Google Gemini", "gemini",
     "`PaidGemini(genai.Client())` (and its `.aio`), or `paid_hooks.instrument(\"gemini\")`"),
    ("bedrock", "AWS Bedrock", "bedrock",
     "`PaidBedrock(boto3.client(\"bedrock-runtime\"))`, or `paid_hooks.instrument(\"bedrock\")` (botocore events)"),
    ("httpx", "Any SDK or gateway over httpx / httpx2", "httpx",
     "`instrument_client(httpx.Client())` (or `httpx2`), a `PaidTransport`, or `paid_hooks.instrument(\"httpx\")`"),
]
FRAMEWORKS = ["langchain", "llamaindex", "openai_agents"]


def tables(text: str) -> list[list[str]]:
    """Every markdown table in ``text``, as lists of lines."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def table_with_header(path: Path, header: str) -> list[str]:
    for table in tables(path.read_text()):
        if re.match(rf"\|\s*{re.escape(header)}\s*\|", table[0]):
            return table
    raise SystemExit(f"{path}: no table whose first column is {header!r}")


def section() -> str:
    out = ["Each integration is a plugin in `plugins/`, installed with its extra and",
           "discovered through the `paid_hooks` entry-point group; `paid_hooks.instrument()`",
           "turns on every installed one (or `instrument(\"name\", ...)` the named ones) and",
           "`paid_hooks.uninstrument()` turns them off. Any number of layers may be active:",
           "each provider call is recorded once.", "",
           "### Frameworks", ""]
    rows: list[str] = []
    for name in FRAMEWORKS:
        table = table_with_header(ROOT / "plugins" / f"paid_hooks_{name}" / "README.md",
                                  "framework")
        if not rows:
            rows.extend(table[:2])
        rows.extend(table[2:])
    out.extend(rows)
    out.append("")
    out.append("Details, traps and per-method coverage: "
               + ", ".join(f"[{n}](plugins/paid_hooks_{n}/README.md)" for n in FRAMEWORKS) + ".")
    out.append("")
    out.append("### Providers")
    for name, title, extra, attach in PROVIDERS:
        readme = ROOT / "plugins" / f"paid_hooks_{name}" / "README.md"
        out += ["", f"#### {title} (`pip install \"paid-hooks[{extra}]\"`)", "",
                f"Attach: {attach}. Details: [plugins/paid_hooks_{name}/README.md]"
                f"(plugins/paid_hooks_{name}/README.md).", ""]
        out.extend(table_with_header(readme, "method"))
    return "\n".join(out) + "\n"


def rendered(readme_text: str) -> str:
    head, rest = readme_text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section()}{END}{tail}"


def main() -> int:
    text = README.read_text()
    new = rendered(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
