"""The Telegram bot (`python -m telegram_bot`): commands and notifications over the Bot API.

The Bot API over `requests` with long polling, not python-telegram-bot: no new dependency (requests
is already pinned), synchronous code like the rest of the agent, full control of every timeout and
of 429 `retry_after`, and no library logging request URLs, which carry the token. See bot.py (the
loop), commands.py (what each command answers), events.py (what is notified), outbox.py (the
bounded, non-blocking sender).
"""
