"""Durable timers (reminders, escalation, no-show, room opening) and the loop that fires them."""
