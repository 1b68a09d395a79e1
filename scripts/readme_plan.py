#!/usr/bin/env python3
"""Write the README's "will it run" table from `benchkit plan` itself (between the
<!-- plan:start --> and <!-- plan:end --> marks); tests/test_readme.py checks it stays true.

    python scripts/readme_plan.py
"""
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MACHINES = ["--chip rtx4090 --ram 64 --cpu-bw 96", "--chip rtx3060 --ram 32 --cpu-bw 51",
            "--chip rtx4060 --ram 32 --cpu-bw 51"]
lines = ["| Machine | Placement | GPU GB | RAM GB | Decode tok/s | Prompt tok/s |",
         "|---|---|---|---|---|---|"]
for m in MACHINES:
    out = subprocess.run(["benchkit", "plan", "--preset", "qwen3-30b-a3b", "--quant", "Q4_K_M",
                          *m.split(), "--ctx", "16384"], capture_output=True, text=True,
                         check=True).stdout
    row = next(l for l in out.splitlines() if l.startswith("| Q4_K_M"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    lines.append(f"| `{m}` | " + " | ".join(cells[1:6]) + " |")
block = "\n".join(lines)
readme = open(README).read()
start = readme.index("<!-- plan:start -->") + len("<!-- plan:start -->\n")
end = readme.index("<!-- plan:end -->")
open(README, "w").write(readme[:start] + block + "\n" + readme[end:])
print(block)
