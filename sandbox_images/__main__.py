"""`python -m sandbox_images build`: build the base sandbox image on the local engine (cached by recipe hash).

Start the engine first: `eval "$(bash sandbox_images/engine.sh)"`.
"""

from __future__ import annotations

import sys

from envs.cli_args import OneLineArgumentParser
from sandbox_images.base_image import BuildError, ensure_base_image, image_tag
from sandbox_images.engine import EngineUnavailable, connect


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m sandbox_images", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the base image unless it is cached")
    sub.add_parser("tag", help="print the base image's tag (no engine needed)")
    args = parser.parse_args(argv)
    if args.command == "tag":
        print(image_tag())
        return 0
    try:
        client = connect()
        print(ensure_base_image(client, log=sys.stderr))
    except (EngineUnavailable, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
