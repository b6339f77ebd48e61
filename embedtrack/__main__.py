"""``python -m embedtrack …``: the ``embedtrack`` command."""

from embedtrack.cli import main

if __name__ == "__main__":
    main(prog_name="embedtrack")
