"""Citizens: identity (CCCD, phone, keyed hash), limits and erasure of personal data."""
