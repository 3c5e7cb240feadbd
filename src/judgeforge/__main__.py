"""`python -m judgeforge` runs the judgeforge CLI."""

from judgeforge.cli import main

if __name__ == "__main__":
    main()
