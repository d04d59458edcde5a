"""The procedure catalogue: search with or without diacritics."""
