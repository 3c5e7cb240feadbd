"""`python -m judgeforge` runs the judgeforge CLI."""

from judgeforge.command_line import console_main

if __name__ == "__main__":
    console_main()
