"""The centre floor: a ticket's life from issuing to calling and serving, counters, boards."""
