"""The supervisor's Python half: the monitor loop, process identity, stop, status, doctor, login.

`supervisor.sh` (bash) does the first-run setup, the `start` lock and the detaching; everything
that needs care with processes lives here, run as `python -m monitor <command>`.
"""
