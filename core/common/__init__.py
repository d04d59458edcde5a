"""Building blocks every domain uses: errors, events, time, text, caches, codes."""
