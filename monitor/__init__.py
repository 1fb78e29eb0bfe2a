"""The supervisor's Python half: the monitor loop, the child state machine, process identity,
stop, status. (`doctor` and `login`, run through `python -m monitor`, live in browser_tools/.)

`supervisor.sh` (bash) does the first-run setup, the `start` lock and the detaching; everything
that needs care with processes lives here, run as `python -m monitor <command>`.
"""
