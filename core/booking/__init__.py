"""Booking: slots, availability and appointments (book, cancel, reschedule)."""
