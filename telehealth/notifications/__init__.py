"""Messages to people and systems: in-app, e-mail, webhooks; each one a row with its state."""
