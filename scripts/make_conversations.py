"""Make benchkit/data/conversations/persuasion-dialogue.jsonl from the novel benchkit ships.

Each line is a conversation for the serve workload (`prompts:` with or without
`sessions:`): a system message, then five consecutive paragraphs of spoken dialogue from
Jane Austen's *Persuasion* (benchkit/data/texts/persuasion.txt, public domain) as
alternating user and assistant messages, ending with a user message (three user turns).
Deterministic: the same text gives the same file.

    python scripts/make_conversations.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = ROOT / "benchkit" / "data" / "texts" / "persuasion.txt"
OUT = ROOT / "benchkit" / "data" / "conversations" / "persuasion-dialogue.jsonl"
SYSTEM = "You are talking with a character of an English novel of 1818. Answer in kind."
RUN = 5              # paragraphs a conversation: user, assistant, user, assistant, user
COUNT = 40


def main() -> None:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", TEXT.read_text("ascii"))]
    speech = [p.startswith('"') and 20 <= len(p) <= 800 for p in paragraphs]
    lines, i = [], 0
    while i + RUN <= len(paragraphs) and len(lines) < COUNT:
        if all(speech[i:i + RUN]):
            messages = [{"role": "system", "content": SYSTEM}] + [
                {"role": "user" if k % 2 == 0 else "assistant", "content": paragraphs[i + k]}
                for k in range(RUN)]
            lines.append(json.dumps({"messages": messages}, ensure_ascii=True))
            i += RUN
        else:
            i += 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"{OUT.relative_to(ROOT)}: {len(lines)} conversations")


if __name__ == "__main__":
    main()
