"""`make lint`: cfn-lint every template of every config (default + examples)."""

from __future__ import annotations

import sys

from plan import load_config
from tests.tools.cfn_lint import lint
from tests.tools.configs import all_configs
from tests.tools.synth import synth


def main() -> int:
    problems: list[str] = []
    for path in all_configs():
        region = load_config(path).region
        result = synth(path)
        for file in result.template_files.values():
            problems.extend(lint(file, [region]))
        print(f"{path.name}: {len(result.template_files)} templates linted")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} cfn-lint findings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
