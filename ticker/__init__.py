"""ticker: a breaking-news ticker service. Redis Streams in, server-sent events out."""

__version__ = "0.1.0"
