"""Page controllers: each parses a form or query, calls one service function, renders."""
