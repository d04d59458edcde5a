"""The web layer the features share: extensions, API plumbing, problems, messages, settings."""
