"""Domain core of xephang: models, booking rules, slots, queue, balancing and events.

Feature packages import from here; this package imports no feature package.
"""
