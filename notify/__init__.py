"""Notifications, off the trading path: used by the executor (fills, settlements, halts) and the
monitor (FATAL children). `notify.discord.Notifier` posts to a Discord webhook without blocking."""

from notify.discord import Notifier, summary_text

__all__ = ["Notifier", "summary_text"]
