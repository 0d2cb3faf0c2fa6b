"""The newsroom: the desk's writes (``desk.Desk`` and its siblings, one action each)."""
