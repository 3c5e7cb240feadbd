"""`python -m judgeforge` runs the judgeforge CLI."""

from judgeforge.cli import console_main

if __name__ == "__main__":
    console_main()
