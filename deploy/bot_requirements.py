"""Print dreamloop's dependencies less the GPU stack, for the bot's image.

The bot process (commands, dispatch, delivery, the reconciler, `dreamloop migrate`) never
imports torch or diffusers (tests/test_deploy.py checks it), so its image leaves out the
gigabytes they weigh; pyproject.toml stays the one list of dependencies.
"""

import re
import sys
import tomllib
from pathlib import Path

GPU_ONLY = {"torch", "diffusers", "transformers", "accelerate", "safetensors"}


def bot_requirements(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d for d in dependencies
            if re.match(r"[A-Za-z0-9._-]+", d).group().lower() not in GPU_ONLY]


if __name__ == "__main__":
    print("\n".join(bot_requirements(Path(sys.argv[1]))))
