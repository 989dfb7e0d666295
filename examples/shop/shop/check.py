"""A smoke test of the installed release: imports everything and renders a greeting."""

import greeting

import shop.app  # noqa: F401  (fails here, not in production, if an import is broken)


def main():
    print(greeting.greet("corner shop"))


if __name__ == "__main__":
    main()
