"""The bottom layer: what an item, a stream entry and an SSE frame are, and the rules
that need nothing but their inputs. No Redis, no HTTP, no I/O."""
