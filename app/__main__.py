"""``python -m sparecycles`` and the ``sparecycles`` console script."""

from __future__ import annotations


def main() -> None:
    from sparecycles.cli import run

    run()


if __name__ == "__main__":
    main()
