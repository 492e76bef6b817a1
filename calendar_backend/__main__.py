"""`python -m calendar_backend ...`: the Calendar Service and its admin commands (see admin.py)."""

import sys

from calendar_backend.admin import main

if __name__ == "__main__":
    sys.exit(main())
