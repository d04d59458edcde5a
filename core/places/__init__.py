"""Centres: finding them, their opening days and hours, their load, importing them."""
