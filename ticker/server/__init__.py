"""`ticker serve`: start-up checks, uvicorn and its protocol, the embedded Redis, the
demo posts, and the ready message."""
