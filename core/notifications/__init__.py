"""Messages to citizens through an outbox."""
