"""Copy the benchmark tables from bench/results/ into README.md, between markers.

README.md holds ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` blocks; each is replaced
by ``bench/results/NAME.md`` (and its PNG when there is one).

    python -m bench.readme
"""

from __future__ import annotations

import re

from bench.common import BENCH_DIR, RESULTS

README = BENCH_DIR.parent / "README.md"


def render(name: str) -> str:
    body = (RESULTS / f"{name}.md").read_text().strip()
    if (RESULTS / f"{name}.png").exists():
        body += f"\n\n![{name}](bench/results/{name}.png)"
    return body


def main() -> None:
    text = README.read_text()

    def replace(match: re.Match) -> str:
        name = match[1]
        if not (RESULTS / f"{name}.md").exists():
            return match[0]
        return f"<!-- bench:{name} -->\n{render(name)}\n<!-- /bench:{name} -->"

    README.write_text(
        re.sub(r"<!-- bench:(\w+) -->.*?<!-- /bench:\1 -->", replace, text, flags=re.S)
    )


if __name__ == "__main__":
    main()
