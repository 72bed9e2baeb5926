"""User presence: seconds since the last input, a locked session, a fullscreen window."""
